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
The permissions the operator needs in every namespace it serves: exactly the calls it makes
(tests/charts/test_rbac.py runs the operator with them and checks each verb is needed).
- telegrambots list/watch: kopf lists and watches them (it never GETs one by name).
- telegrambots patch: kopf patches finalizers and its progress annotations.
- telegrambots/status patch: the operator's only status write (a merge patch); kopf writes
  status through the same patch.
- secrets get/create/update: read the token Secret and the certificate Secret by name, create
  <name>-webhook and replace it (PUT); with operator.secretReads=watch (the default) also list/watch:
  one metadata-only watch per namespace, so a Secret is read again only when it changed (list adds
  only names: get on any Secret of the namespace is granted already, RBAC cannot name them). No
  patch, no delete (the generated Secret is owned by its TelegramBot and garbage-collected).
- events create (core v1): kopf posts every Event with a POST to /api/v1/.../events, also the
  operator's own (kopf.event) and the log records it turns into Events; it never patches one
  and never uses events.k8s.io.
- kopfpeerings list/watch/patch: only with peering in namespaced mode.
*/}}
{{- define "tgbot-operator.namespacedRules" -}}
- apiGroups: [tgbot.dev]
  resources: [telegrambots]
  verbs: [list, watch, patch]
- apiGroups: [tgbot.dev]
  resources: [telegrambots/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: {{ if eq .Values.operator.secretReads "poll" }}[get, create, update]{{ else }}[get, list, watch, create, update]{{ end }}
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if and (include "tgbot-operator.peering" .) .Values.watchNamespaces }}
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [list, watch, patch]
{{- end }}
{{- end }}
