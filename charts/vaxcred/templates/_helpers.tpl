{{/* Chart name. */}}
{{- define "vaxcred.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full release name, used as the prefix of every resource. */}}
{{- define "vaxcred.fullname" -}}
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

{{/* Labels common to every resource. */}}
{{- define "vaxcred.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "vaxcred.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "component" name). */}}
{{- define "vaxcred.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vaxcred.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Names of the components to deploy: ["serve"] or the enabled split services. */}}
{{- define "vaxcred.components" -}}
{{- $out := list }}
{{- if eq .Values.mode "serve" }}
{{- $out = list "serve" }}
{{- else if eq .Values.mode "split" }}
{{- range $name, $c := .Values.components }}
{{- if $c.enabled }}{{ $out = append $out $name }}{{ end }}
{{- end }}
{{- else }}
{{- fail (printf "mode must be \"serve\" or \"split\", not %q" .Values.mode) }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Settings of one component (serve or a split service). */}}
{{- define "vaxcred.component" -}}
{{- if eq .component "serve" }}
{{- toJson (dict "replicas" .root.Values.serve.replicas "resources" .root.Values.serve.resources "autoscaling" (dict "enabled" false)) }}
{{- else }}
{{- toJson (get .root.Values.components .component) }}
{{- end }}
{{- end }}

{{/* Name of the Secret with URLs and tokens. */}}
{{- define "vaxcred.secretName" -}}
{{- if .Values.secrets.create }}{{ include "vaxcred.fullname" . }}-env{{ else }}{{ required "secrets.existingSecret is required when secrets.create is false" .Values.secrets.existingSecret }}{{ end }}
{{- end }}

{{/* Name of the Secret with signing-key files, or "" when keys stay on the data volume. */}}
{{- define "vaxcred.keysSecretName" -}}
{{- if and .Values.secrets.create .Values.secrets.signingKeys }}{{ include "vaxcred.fullname" . }}-keys{{ else if .Values.secrets.existingKeysSecret }}{{ .Values.secrets.existingKeysSecret }}{{ end }}
{{- end }}

{{/* Service account name. */}}
{{- define "vaxcred.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ default (include "vaxcred.fullname" .) .Values.serviceAccount.name }}{{ else }}{{ default "default" .Values.serviceAccount.name }}{{ end }}
{{- end }}

{{/* Image reference. */}}
{{- define "vaxcred.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}
