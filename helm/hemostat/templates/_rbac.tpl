{{/*
The RBAC rules, derived from the `kube_rules` table each probe and action declares next to its
code (agent/model/rbac.py; tests/test_kube_rules.py checks each table against the calls the code
really makes, tests/helm/test_chart.py checks these rules equal the tables of the enabled
actions). Two kinds:

- "hemostat.rules.namespace": rights over any object of a namespace (lists cannot be cut by
  name): what the probes read, and creating the Event an action leaves on what it changed.
- "hemostat.rules.named": rights over named objects only (resourceNames): the targets'
  Deployments (and their HPAs), the ConfigMaps the flag and failover actions were given.
  A name list that would be empty is left out: an empty resourceNames means every object.

No secrets, no wildcards, no watch, no delete.
*/}}
{{- define "hemostat.rules.namespace" -}}
{{- $a := .Values.actions -}}
# Probes (k8s-workload, k8s-logs): the target's pods, their logs, rollout history, HPAs, usage.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: ["apps"]
  resources: ["replicasets", "controllerrevisions"]
  verbs: ["list"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list"]
- apiGroups: ["metrics.k8s.io"]
  resources: ["pods"]
  verbs: ["list"]
# app-metrics with `service` (the pods behind the Service) and k8s-cluster (where a Service
# routes) list EndpointSlices.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list"]
# k8s-cluster: what the fault rules compare (verdicts in events, Services vs pods, quotas, claims).
- apiGroups: [""]
  resources: ["events", "services", "serviceaccounts", "resourcequotas", "persistentvolumeclaims"]
  verbs: ["list"]
{{- if or $a.rollback.enabled $a.scaleUp.enabled $a.featureFlagOff.enabled }}
# rollback, scale-up and feature-flag-off record a core/v1 Event on what they changed.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
{{- with .Values.rbac.pluginRules }}
# What the installed plugins declare (`hemostat plugins --rbac`, docs/plugins.md).
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* k8s-cluster's cluster-scoped reads (rbac.clusterReads): nodes (allocatable, taints,
cordons, heartbeats), PersistentVolumes and StorageClasses (what a claim could bind). List only. */}}
{{- define "hemostat.rules.cluster" -}}
- apiGroups: [""]
  resources: ["nodes", "persistentvolumes"]
  verbs: ["list"]
- apiGroups: ["storage.k8s.io"]
  resources: ["storageclasses"]
  verbs: ["list"]
{{- end }}

{{/* k8s-cluster in kube-system (rbac.clusterReads): its pods — is kube-proxy, is the scheduler up. */}}
{{- define "hemostat.rules.system" -}}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
{{- end }}

{{/* The target Deployments in one namespace, as a YAML list. Arg: (dict "root" $ "namespace" NS). */}}
{{- define "hemostat.targetDeployments" -}}
{{- $names := list }}
{{- range .root.Values.targets }}
{{- if and .deployment (eq (.namespace | default $.root.Release.Namespace) $.namespace) }}
{{- $names = append $names .deployment }}
{{- end }}
{{- end }}
{{- toYaml (uniq $names) }}
{{- end }}

{{/* Rights over named objects in one namespace. Arg: (dict "root" $ "namespace" NS). */}}
{{- define "hemostat.rules.named" -}}
{{- $a := .root.Values.actions -}}
{{- $deployments := include "hemostat.targetDeployments" . | fromYamlArray }}
{{- if $deployments }}
# The target workloads only (a target's `deployment` names its Deployment, StatefulSet,
# DaemonSet or Argo Rollout): probes read them{{ if $a.rollback.enabled }}; rollback patches their template{{ end }}.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  resourceNames: {{ toJson $deployments }}
  verbs: {{ toJson (ternary (list "get" "patch") (list "get") $a.rollback.enabled) }}
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  resourceNames: {{ toJson $deployments }}
  verbs: {{ toJson (ternary (list "get" "patch") (list "get") $a.rollback.enabled) }}
{{- if $a.rollback.enabled }}
- apiGroups: ["argoproj.io"]
  resources: ["rollouts/status"]
  resourceNames: {{ toJson $deployments }}
  verbs: ["patch"]
{{- end }}
{{- if $a.scaleUp.enabled }}
# scale-up: their scale subresource, and the HPAs named after them (or listed in actions.scaleUp.hpas).
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  resourceNames: {{ toJson $deployments }}
  verbs: ["get", "patch"]
# and the KEDA ScaledObjects named after them (KEDA puts back edits of the HPAs it made).
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  resourceNames: {{ toJson $deployments }}
  verbs: ["get", "patch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  resourceNames: {{ toJson (concat $deployments $a.scaleUp.hpas | uniq) }}
  verbs: ["get", "patch"]
{{- end }}
{{- end }}
{{- if $a.featureFlagOff.enabled }}
# feature-flag-off: only the named flag ConfigMaps (never all ConfigMaps).
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

{{/* The GitOps controllers' objects, in each of gitops.namespaces: probes read who owns a
workload; rollback (its argocd and live strategies) suspends and restores auto-sync. */}}
{{- define "hemostat.rules.gitops" -}}
- apiGroups: ["argoproj.io"]
  resources: ["applications"]
  verbs: {{ toJson (ternary (list "get" "patch") (list "get") .Values.actions.rollback.enabled) }}
- apiGroups: ["kustomize.toolkit.fluxcd.io"]
  resources: ["kustomizations"]
  verbs: {{ toJson (ternary (list "get" "patch") (list "get") .Values.actions.rollback.enabled) }}
- apiGroups: ["helm.toolkit.fluxcd.io"]
  resources: ["helmreleases"]
  verbs: {{ toJson (ternary (list "get" "patch") (list "get") .Values.actions.rollback.enabled) }}
{{- end }}

{{/* A Role and its RoleBinding in one namespace. Arg: (dict "root" $ "namespace" NS "rules" TEXT
["suffix" "-gitops"]); the suffix keeps a second Role in a namespace apart. */}}
{{- define "hemostat.role" -}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "hemostat.fullname" .root }}{{ .suffix | default "" }}
  namespace: {{ .namespace }}
  labels:
    {{- include "hemostat.labels" .root | nindent 4 }}
rules:
  {{- .rules | trim | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "hemostat.fullname" .root }}{{ .suffix | default "" }}
  namespace: {{ .namespace }}
  labels:
    {{- include "hemostat.labels" .root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "hemostat.fullname" .root }}{{ .suffix | default "" }}
subjects:
  - kind: ServiceAccount
    name: {{ include "hemostat.serviceAccountName" .root }}
    namespace: {{ .root.Release.Namespace }}
{{- end }}
