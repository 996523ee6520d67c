{{/* Name of everything this chart creates. */}}
{{- define "streamspace-k8s-agent.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "streamspace-k8s-agent.labels" -}}
app.kubernetes.io/name: streamspace-k8s-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "streamspace-k8s-agent.selectorLabels" -}}
app.kubernetes.io/name: streamspace-k8s-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "streamspace-k8s-agent.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "streamspace-k8s-agent.fullname" .) -}}
{{- end -}}

{{- define "streamspace-k8s-agent.sessionNamespace" -}}
{{- .Values.sessionNamespace | default .Release.Namespace -}}
{{- end -}}
