{{/*
Checks that values.schema.json cannot express (they relate several values). Each failure
says which value is wrong, why, and what to set instead. Included from configmap.yaml, which
every render has, so `helm template`, `helm install` and `helm upgrade` all stop here.
*/}}
{{- define "hemostat.validate" -}}
{{- $v := .Values }}
{{- if and (gt (int $v.replicas) 1) (ne $v.store.backend "postgres") }}
{{- fail (printf "replicas: %d needs store.backend: postgres. The SQLite ledger lives inside one pod, so a second replica would keep its own ledger and could run an approved action twice; PostgreSQL gives the replicas one ledger and a leader lock." (int $v.replicas)) }}
{{- end }}
{{- if and (eq $v.store.backend "postgres") (not $v.store.postgres.existingSecret) }}
{{- fail "store.backend: postgres needs store.postgres.existingSecret: the name of a Secret whose key store.postgres.key holds the ledger DSN (the chart never takes a DSN as a value)." }}
{{- end }}
{{- if and (eq $v.policy.name "custom") (empty $v.policy.custom) }}
{{- fail "policy.name: custom needs your policy under policy.custom (the same YAML as a policy file)." }}
{{- end }}
{{- if and (ne $v.policy.name "custom") (not (empty $v.policy.custom)) }}
{{- fail (printf "policy.custom is set but policy.name is %q: set policy.name: custom to use it, or remove policy.custom." $v.policy.name) }}
{{- end }}
{{- range $key := list "featureFlagOff" "failover" }}
{{- $action := index $v.actions $key }}
{{- if and $action.enabled (empty $action.configMaps) }}
{{- fail (printf "actions.%s.enabled needs actions.%s.configMaps: the ConfigMaps it may patch. An empty list would grant patch on every ConfigMap." $key $key) }}
{{- end }}
{{- end }}
{{- range $owned := list "store" "intake" "policy" }}
{{- if hasKey $v.config $owned }}
{{- fail (printf "config.%s is set by the chart (it must match the mounts and Secrets); use the chart's `%s` values instead." $owned $owned) }}
{{- end }}
{{- end }}
{{- if and $v.intake.webhook (not $v.intake.existingSecret) }}
{{- fail "intake.existingSecret is empty: the Alertmanager webhook would take unauthenticated calls. Create a Secret holding a random token (kubectl create secret generic hemostat-webhook --from-literal=token=$(openssl rand -hex 32)) and set intake.existingSecret, or set intake.webhook: false to install without the webhook." }}
{{- end }}
{{- if and $v.slack.users (not $v.slack.existingSecret) }}
{{- fail "slack.users needs slack.existingSecret: the Secret holding the Slack webhook URL (key slack.key) and the app's signing secret (key slack.signingSecretKey), without which no button press can be verified." }}
{{- end }}
{{- $np := $v.networkPolicy }}
{{- if and $np.enabled (not $np.alertmanager.namespaces) (not $np.prometheus.namespaces) (not $np.ingressFrom) }}
{{- fail "networkPolicy admits no peer: set networkPolicy.alertmanager.namespaces (where Alertmanager runs), networkPolicy.prometheus.namespaces or networkPolicy.ingressFrom, or set networkPolicy.enabled: false." }}
{{- end }}
{{- if and $v.rbac.clusterWide $v.watchNamespaces }}
{{- fail "watchNamespaces has no effect with rbac.clusterWide: true (the ClusterRole covers every namespace); leave it empty or turn clusterWide off." }}
{{- end }}
{{- if not $v.rbac.clusterWide }}
{{- $watched := include "hemostat.watchNamespaces" . | fromYamlArray }}
{{- range $v.targets }}
{{- $namespace := .namespace | default $.Release.Namespace }}
{{- if not (has $namespace $watched) }}
{{- fail (printf "target %q is in namespace %q, which is not in watchNamespaces %v: Hemostat would have no permission there. Add it to watchNamespaces or set rbac.clusterWide: true." (toString .name) $namespace $watched) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
