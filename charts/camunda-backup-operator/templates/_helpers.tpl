{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "c8b.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, prefixed with the chart name unless it already contains it. */}}
{{- define "c8b.fullname" -}}
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

{{- define "c8b.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "c8b.selectorLabels" -}}
app.kubernetes.io/name: {{ include "c8b.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "c8b.labels" -}}
helm.sh/chart: {{ include "c8b.chart" . }}
{{ include "c8b.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "c8b.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "c8b.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "c8b.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The step Jobs' image: the operator image unless stepJob.image is set. */}}
{{- define "c8b.stepImage" -}}
{{- $repo := default .Values.image.repository .Values.stepJob.image.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.stepJob.image.tag }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{- define "c8b.leaseName" -}}
{{- default (include "c8b.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The watched namespace, validated; empty means all namespaces. */}}
{{- define "c8b.watchNamespace" -}}
{{- $ns := .Values.watchNamespace | default "" }}
{{- if not (kindIs "string" $ns) }}
{{- fail "watchNamespace must be one namespace name (install one release per namespace to watch several)" }}
{{- end }}
{{- if and $ns (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $ns)) }}
{{- fail (printf "watchNamespace %q is not a valid namespace name" $ns) }}
{{- end }}
{{- $ns }}
{{- end }}

{{/*
The operator's permissions in the namespaces it watches: a ClusterRole's rules in cluster-wide mode,
a Role's rules in namespaced mode. Exactly the API calls the operator makes, each with its reason.
*/}}
{{- define "c8b.rules" -}}
# Watches the three kinds (informers: list + watch) and reads single objects fresh before acting
# (get): a CamundaCluster for its endpoints and limits, a BackupSchedule for its spec.
- apiGroups: ["c8backup.dev"]
  resources: ["camundaclusters", "clusterbackups", "backupschedules", "clusterrestores"]
  verbs: ["get", "list", "watch"]
# ClusterRestores: patch/update only to add and remove the operator's finalizer, which gives the
# cluster back when a restore is deleted before it ended. Restores are the user's: no create or delete.
- apiGroups: ["c8backup.dev"]
  resources: ["clusterrestores"]
  verbs: ["patch", "update"]
# ClusterBackups: patch/update to add and remove the operator's finalizer and to mark a backup deleted
# by retention; create because a BackupSchedule creates a ClusterBackup per slot; delete for retention
# (maxRetained, failedRetained), schedule history limits and onClusterDelete=Delete.
- apiGroups: ["c8backup.dev"]
  resources: ["clusterbackups"]
  verbs: ["create", "patch", "update", "delete"]
# CamundaClusters: patch only to add and remove the operator's finalizer (held while a cluster with
# onClusterDelete=Delete still has backups). The operator never changes a cluster's spec (its limits
# are the admin's); no create, update or delete.
- apiGroups: ["c8backup.dev"]
  resources: ["camundaclusters"]
  verbs: ["patch"]
# BackupSchedules: deleting a CamundaCluster with onClusterDelete=Delete deletes its schedules.
# No create, patch or update: schedules are the user's.
- apiGroups: ["c8backup.dev"]
  resources: ["backupschedules"]
  verbs: ["delete"]
# Status of all three kinds: a backup's phase and steps; a cluster's backup lock, last backup ID,
# retained backups and rate-limit refunds; a schedule's last/next slot.
- apiGroups: ["c8backup.dev"]
  resources: ["camundaclusters/status", "clusterbackups/status", "backupschedules/status", "clusterrestores/status"]
  verbs: ["get", "patch", "update"]
# Step Jobs of a ClusterBackup and broker restore Jobs of a ClusterRestore carry an ownerReference with
# blockOwnerDeletion to it; clusters with the OwnerReferencesPermissionEnforcement admission plugin
# require update on the owner's finalizers.
- apiGroups: ["c8backup.dev"]
  resources: ["clusterbackups/finalizers", "clusterrestores/finalizers"]
  verbs: ["update"]
# A restore stops the cluster's workloads and starts them again: it reads the StatefulSets and
# Deployments its cluster's selector names (and the broker StatefulSet's Pod template, which its
# restore Jobs copy) and changes only their replicas, through the scale subresource.
- apiGroups: ["apps"]
  resources: ["statefulsets", "deployments"]
  verbs: ["get", "list"]
- apiGroups: ["apps"]
  resources: ["statefulsets/scale", "deployments/scale"]
  verbs: ["patch"]
# The broker's partition count, from the ConfigMap its application.yaml comes from. Read only.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
# One Job per snapshot step: create it, watch it to the end (informer: list + watch; get after a
# restart), delete it when the backup is deleted or the step is retried.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# The termination message of a failed step Pod is the step's error, copied into the backup's status;
# a restore waits until no Pod of its cluster's stopped workloads is left (list of metadata).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list"]
# Elasticsearch credentials referenced by a CamundaCluster (spec.elasticsearch), read by the operator
# only to delete a backup's snapshot when the backup is deleted. Read only, never listed or watched.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Events on every transition a user would want to see (events.k8s.io/v1; patch updates the series
# of a repeated Event).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# The same through the core API, for clients that write core/v1 Events.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* The Console API endpoint: its own name label, so that neither Deployment's selector matches the
other's Pods, and neither Service sends traffic to the wrong Pods. */}}
{{- define "c8b.api.fullname" -}}
{{- printf "%s-api" (include "c8b.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "c8b.api.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-api" (include "c8b.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "c8b.api.labels" -}}
helm.sh/chart: {{ include "c8b.chart" . }}
{{ include "c8b.api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: console-api
{{- end }}

{{/* The admission webhook's Service, Secret and (cluster-scoped) ValidatingWebhookConfiguration. */}}
{{- define "c8b.webhookService" -}}
{{- printf "%s-webhook" (include "c8b.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "c8b.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "c8b.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Cluster-scoped: the release namespace is part of the name, so two releases never share one. */}}
{{- define "c8b.webhookConfiguration" -}}
{{- printf "%s-%s" (include "c8b.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Who issues the webhook's certificates, validated: "operator" or "cert-manager". */}}
{{- define "c8b.webhookCertSource" -}}
{{- $source := .Values.webhook.certificates.source }}
{{- if not (has $source (list "operator" "cert-manager")) }}
{{- fail (printf "webhook.certificates.source must be operator or cert-manager, not %q" $source) }}
{{- end }}
{{- $source }}
{{- end }}

{{/* The DNS names of a Service (dict "svc" name "ns" namespace), comma-separated: what a serving certificate is for. */}}
{{- define "c8b.serviceHosts" -}}
{{- $svc := .svc }}
{{- $ns := .ns }}
{{- printf "%s,%s.%s,%s.%s.svc,%s.%s.svc.cluster.local" $svc $svc $ns $svc $ns $svc $ns }}
{{- end }}

{{/* The DNS names the API server may use for the webhook Service (it checks <service>.<namespace>.svc). */}}
{{- define "c8b.webhookHosts" -}}
{{- include "c8b.serviceHosts" (dict "svc" (include "c8b.webhookService" .) "ns" .Release.Namespace) }}
{{- end }}

{{/* The Console API's certificate Secret: the user's (consoleApi.tls.secretName, only read), else the
one the chart creates empty and the api fills and renews. */}}
{{- define "c8b.api.tlsSecret" -}}
{{- if .Values.consoleApi.tls.secretName }}
{{- .Values.consoleApi.tls.secretName }}
{{- else }}
{{- printf "%s-api-tls" (include "c8b.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The DNS names clients use for the Console API Service. */}}
{{- define "c8b.api.hosts" -}}
{{- include "c8b.serviceHosts" (dict "svc" (include "c8b.api.fullname" .) "ns" .Release.Namespace) }}
{{- end }}
