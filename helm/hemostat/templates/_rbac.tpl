{{/*
The RBAC rules, built from the enabled actions: what every probe reads, plus exactly what each
switched-on action writes. No secrets, no wildcards. Shared by the per-namespace Roles and the
ClusterRole so both grant the same thing.
*/}}
{{- define "hemostat.rules" -}}
{{- $a := .Values.actions -}}
# Probes: pods and their logs, rollouts, autoscalers, events.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: ["apps"]
  resources: ["deployments", "replicasets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
# Probes: CPU and memory from metrics-server.
- apiGroups: ["metrics.k8s.io"]
  resources: ["pods"]
  verbs: ["get", "list"]
# Every executed action records a Kubernetes Event on what it touched.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- if $a.rollback.enabled }}
# rollback: put the previous ReplicaSet's pod template back on the Deployment.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["patch"]
{{- end }}
{{- if $a.scaleUp.enabled }}
# scale-up: raise replicas through the scale subresource, or an HPA's minReplicas.
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["patch"]
{{- end }}
{{- if $a.featureFlagOff.enabled }}
# feature-flag-off: only the named flag ConfigMaps (resourceNames; never all ConfigMaps).
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames: {{ toJson (uniq $a.featureFlagOff.configMaps) }}
  verbs: ["get", "patch"]
{{- end }}
{{- if $a.failover.enabled }}
# failover (configmap backend): only the named endpoint ConfigMaps.
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames: {{ toJson (uniq $a.failover.configMaps) }}
  verbs: ["get", "patch"]
{{- end }}
{{- end }}
