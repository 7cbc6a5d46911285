{{- define "telegram-bot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or the release name when it contains the chart name. */}}
{{- define "telegram-bot.fullname" -}}
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

{{- define "telegram-bot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "telegram-bot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "telegram-bot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "telegram-bot.labels" -}}
helm.sh/chart: {{ include "telegram-bot.chart" . }}
{{ include "telegram-bot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: telegram-bot-operator
{{- end }}

{{- define "telegram-bot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "telegram-bot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the TelegramBot, and of the Secret the operator generates for it. */}}
{{- define "telegram-bot.botName" -}}
{{- default (include "telegram-bot.fullname" .) .Values.telegramBot.name }}
{{- end }}

{{- define "telegram-bot.webhookSecretName" -}}
{{- printf "%s-webhook" (include "telegram-bot.botName" .) }}
{{- end }}

{{- define "telegram-bot.tokenSecretName" -}}
{{- if .Values.token.create }}
{{- default (printf "%s-token" (include "telegram-bot.fullname" .)) .Values.token.secretName }}
{{- else }}
{{- required "token.secretName is required: the Secret holding the bot token (or token.create=true with token.value)" .Values.token.secretName }}
{{- end }}
{{- end }}

{{/* The webhook URL: given, or https://<ingress.host><webhook.path>. */}}
{{- define "telegram-bot.webhookURL" -}}
{{- if .Values.telegramBot.webhook.url }}
{{- .Values.telegramBot.webhook.url }}
{{- else if and .Values.ingress.enabled .Values.ingress.host }}
{{- printf "https://%s%s" .Values.ingress.host .Values.telegramBot.webhook.path }}
{{- else }}
{{- fail "telegramBot.webhook.url is required unless ingress.enabled with ingress.host (the URL is then https://<host><path>)" }}
{{- end }}
{{- end }}

{{/* The path the sidecar serves: sidecar.path, else the path of the webhook URL. */}}
{{- define "telegram-bot.sidecarPath" -}}
{{- if .Values.sidecar.path }}
{{- .Values.sidecar.path }}
{{- else }}
{{- default "/" (urlParse (include "telegram-bot.webhookURL" .)).path }}
{{- end }}
{{- end }}

{{- define "telegram-bot.image" -}}
{{- $image := .image }}
{{- $repository := required (printf "%s.repository is required: the image you built and loaded or pushed (e.g. echo-bot from examples/echo-bot/Dockerfile; docs/helm.md, \"Images\")" .what) $image.repository }}
{{- if $image.digest }}
{{- printf "%s@%s" $repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (toString (required (printf "%s.tag (or digest) is required" .what) (default .default $image.tag))) }}
{{- end }}
{{- end }}

{{/* certificate.mode Secret: the kubernetes.io/tls Secret uploaded to Telegram and served by the sidecar. */}}
{{- define "telegram-bot.certificateSecretName" -}}
{{- $cert := .Values.telegramBot.webhook.certificate }}
{{- if eq $cert.mode "Secret" }}
{{- required "telegramBot.webhook.certificate.secretName is required in Secret mode" $cert.secretName }}
{{- end }}
{{- end }}

{{/*
A NetworkPolicyPeer from {namespaceSelector, podSelector}: one peer, so both must match (the
pods of podSelector in the namespaces of namespaceSelector). A selector set to null is left out;
{} matches everything.
*/}}
{{- define "telegram-bot.selectorPeer" -}}
{{- $peer := dict }}
{{- range $key := list "namespaceSelector" "podSelector" }}
{{- if and (hasKey $.peer $key) (not (kindIs "invalid" (index $.peer $key))) }}
{{- $_ := set $peer $key (index $.peer $key) }}
{{- end }}
{{- end }}
{{- if not $peer }}
{{- fail (printf "%s needs namespaceSelector and/or podSelector (or set it to null to leave it out)" .what) }}
{{- end }}
{{- toYaml $peer }}
{{- end }}
