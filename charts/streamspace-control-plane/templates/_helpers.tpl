{{/* Name of everything this chart creates. */}}
{{- define "streamspace-control-plane.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "streamspace-control-plane.labels" -}}
app.kubernetes.io/name: streamspace-control-plane
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Labels the Service selects on. */}}
{{- define "streamspace-control-plane.selectorLabels" -}}
app.kubernetes.io/name: streamspace-control-plane
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "streamspace-control-plane.secretName" -}}
{{ include "streamspace-control-plane.fullname" . }}
{{- end -}}
