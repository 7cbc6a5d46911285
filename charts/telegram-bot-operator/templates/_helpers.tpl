{{/* Chart name, truncated to a label value. */}}
{{- define "tgbot-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or the release name when it contains the chart name. */}}
{{- define "tgbot-operator.fullname" -}}
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

{{/*
Name of cluster-scoped objects (ClusterRoles, ClusterRoleBindings): they are shared by every
namespace, so the release namespace is part of the name and two releases of the same name in
different namespaces do not collide.
*/}}
{{- define "tgbot-operator.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "tgbot-operator.fullname" .) | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "tgbot-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tgbot-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tgbot-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tgbot-operator.labels" -}}
helm.sh/chart: {{ include "tgbot-operator.chart" . }}
{{ include "tgbot-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: telegram-bot-operator
{{- end }}

{{- define "tgbot-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tgbot-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tgbot-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when kopf peering is on: asked for, or more than one replica. */}}
{{- define "tgbot-operator.peering" -}}
{{- if or .Values.peering.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "tgbot-operator.peeringName" -}}
{{- default (include "tgbot-operator.fullname" .) .Values.peering.name }}
{{- end }}

{{/*
The permissions the operator needs in every namespace it serves. Kept minimal on purpose:
- telegrambots: kopf lists/watches them and patches finalizers and its annotations.
- telegrambots/status: the operator writes status (kopf patches it; update for replace calls).
- secrets: read the token Secret and the certificate Secret by name, write <name>-webhook.
  No list/watch (no Secret is watched) and no delete (the generated Secret is owned by its
  TelegramBot and garbage-collected).
- events (core and events.k8s.io): kopf and the operator post Events.
- kopfpeerings: only with peering in namespaced mode.
*/}}
{{- define "tgbot-operator.namespacedRules" -}}
- apiGroups: [tgbot.dev]
  resources: [telegrambots]
  verbs: [get, list, watch, patch]
- apiGroups: [tgbot.dev]
  resources: [telegrambots/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch, update]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- if and (include "tgbot-operator.peering" .) .Values.watchNamespaces }}
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end }}
