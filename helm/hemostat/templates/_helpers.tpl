{{/*
Names, labels and the pieces of hemostat.yaml and RBAC that several templates share.
*/}}

{{- define "hemostat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, prefixed with the chart name unless it already contains it,
so `helm install hemostat` gives Service `hemostat` (the URL docs/install.md shows).
*/}}
{{- define "hemostat.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hemostat.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hemostat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hemostat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hemostat.labels" -}}
helm.sh/chart: {{ include "hemostat.chart" . }}
{{ include "hemostat.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: responder
app.kubernetes.io/part-of: hemostat
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "hemostat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hemostat.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hemostat.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The namespaces that get a Role, as a YAML list (default: the release namespace). */}}
{{- define "hemostat.watchNamespaces" -}}
{{- $namespaces := .Values.watchNamespaces | default (list .Release.Namespace) }}
{{- toYaml (uniq $namespaces) }}
{{- end }}

{{/* values key -> the action's name in the policy and the ledger. */}}
{{- define "hemostat.actionNames" -}}
rollback: rollback
scaleUp: scale-up
featureFlagOff: feature-flag-off
failover: failover
killQueries: kill-queries
circuitBreak: circuit-break
investigate: investigate
{{- end }}

{{/* Mount points shared by the ConfigMap (paths inside hemostat.yaml) and the Deployment. */}}
{{- define "hemostat.configDir" -}}/etc/hemostat{{- end }}
{{- define "hemostat.secretsDir" -}}/var/run/secrets/hemostat{{- end }}
{{- define "hemostat.ledgerDir" -}}/var/lib/hemostat{{- end }}

{{/*
The policy file: the bundled or custom policy, with every action switched off in
`actions` forced to `allowed: false` (so the gate, not a 403, says no).
*/}}
{{- define "hemostat.policy" -}}
{{- $policy := dict }}
{{- if eq .Values.policy.name "custom" }}
{{- $policy = deepCopy .Values.policy.custom }}
{{- else }}
{{- $policy = .Files.Get (printf "policies/%s.yaml" .Values.policy.name) | fromYaml }}
{{- end }}
{{- $rules := $policy.actions | default dict }}
{{- range $key, $name := include "hemostat.actionNames" . | fromYaml }}
{{- if not (index $.Values.actions $key).enabled }}
{{- $rule := index $rules $name | default dict }}
{{- $_ := set $rules $name (merge (dict "allowed" false) $rule) }}
{{- end }}
{{- end }}
{{- $_ := set $policy "actions" $rules }}
{{- toYaml $policy }}
{{- end }}

{{/*
hemostat.yaml. The chart owns store, intake and policy (they must match the mounts and the
Secrets below); the rest comes from targets, notifiers and config.
*/}}
{{- define "hemostat.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $targets := list }}
{{- range .Values.targets }}
{{- $target := deepCopy . }}
{{- if not (hasKey $target "namespace") }}
{{- $_ := set $target "namespace" $.Release.Namespace }}
{{- end }}
{{- $targets = append $targets $target }}
{{- end }}
{{- $_ := set $config "targets" $targets }}
{{- $notifiers := deepCopy .Values.notifiers }}
{{- if .Values.slack.existingSecret }}
{{- $notifiers = append $notifiers (dict "type" "slack" "url" (dict "file" (printf "%s/slack-url" (include "hemostat.secretsDir" .)))) }}
{{- end }}
{{- $_ = set $config "notifiers" $notifiers }}
{{- if .Values.slack.users }}
{{- $_ = set $config "slack" (dict "signing_secret" (dict "file" (printf "%s/slack-signing-secret" (include "hemostat.secretsDir" .))) "users" .Values.slack.users) }}
{{- if .Values.slack.port }}
{{- $_ = set $config.slack "listen" (printf "0.0.0.0:%d" (int .Values.slack.port)) }}
{{- end }}
{{- end }}
{{- if eq .Values.store.backend "postgres" }}
{{- $_ = set $config "store" (dict "backend" "postgres" "dsn" (dict "file" (printf "%s/ledger-dsn" (include "hemostat.secretsDir" .)))) }}
{{- else }}
{{- $_ = set $config "store" (dict "backend" "sqlite" "path" (printf "%s/ledger.db" (include "hemostat.ledgerDir" .))) }}
{{- end }}
{{- if .Values.store.sealKey.existingSecret }}
{{- $_ = set $config.store "seal_key" (dict "file" (printf "%s/seal-key" (include "hemostat.secretsDir" .))) }}
{{- end }}
{{- $intake := dict "listen" (printf "0.0.0.0:%d" (int .Values.intake.port)) }}
{{- if not .Values.intake.webhook }}
{{- $_ = set $intake "webhook" false }}
{{- end }}
{{- if .Values.intake.existingSecret }}
{{- $_ = set $intake "token" (dict "file" (printf "%s/webhook-token" (include "hemostat.secretsDir" .))) }}
{{- end }}
{{- $_ = set $config "intake" $intake }}
{{- $_ = set $config "approval_api" (dict "enabled" .Values.approvals.api) }}
{{- $_ = set $config "policy" (printf "%s/policy/policy.yaml" (include "hemostat.configDir" .)) }}
{{- toYaml $config }}
{{- end }}

{{/* Does the pod mount any Secret as a file? */}}
{{- define "hemostat.hasSecretFiles" -}}
{{- if or .Values.intake.existingSecret .Values.slack.existingSecret .Values.store.sealKey.existingSecret (eq .Values.store.backend "postgres") }}true{{ end }}
{{- end }}
