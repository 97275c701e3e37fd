{{/* Names, labels and checks shared by the templates. */}}

{{- define "modelyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name: the release name, plus the chart name unless the
release name contains it. */}}
{{- define "modelyard.fullname" -}}
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

{{- define "modelyard.operatorName" -}}
{{- printf "%s-operator" (include "modelyard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on everything the chart installs. */}}
{{- define "modelyard.labels" -}}
helm.sh/chart: {{ include "modelyard.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelyard
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The operator's selector labels (immutable: name and instance). */}}
{{- define "modelyard.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "modelyard.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "modelyard.operatorLabels" -}}
{{ include "modelyard.labels" . }}
{{ include "modelyard.operatorSelectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "modelyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelyard.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modelyard.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "modelyard.runtimeImage" -}}
{{- printf "%s:%s" .Values.runtimeImage.repository (default .Chart.AppVersion .Values.runtimeImage.tag) }}
{{- end }}

{{/* Cross-value rules the schema cannot say clearly. */}}
{{- define "modelyard.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicas > 1 needs leaderElection.enabled=true: without a Lease every replica would act on every ModelDeployment" }}
{{- end }}
{{- $le := .Values.leaderElection }}
{{- if and $le.enabled (not (and (lt (float64 $le.retryPeriod) (float64 $le.renewDeadline)) (lt (float64 $le.renewDeadline) (float64 $le.leaseDuration)))) }}
{{- fail (printf "leaderElection needs retryPeriod < renewDeadline < leaseDuration, got %v, %v, %v" $le.retryPeriod $le.renewDeadline $le.leaseDuration) }}
{{- end }}
{{- range $key := list "defaultRuntimeImage" "metricsPort" "healthPort" "leaderElection" "leaderElectionNamespace" "leaderElectionLeaseName" "leaderElectionLeaseDurationSeconds" "leaderElectionRenewDeadlineSeconds" "leaderElectionRetryPeriodSeconds" }}
{{- if hasKey $.Values.config $key }}
{{- fail (printf "config.%s is set by the chart from other values (runtimeImage, metrics.port, health.port, leaderElection): set those instead" $key) }}
{{- end }}
{{- end }}
{{- end }}

{{/* A config value as an env string: lists comma-joined, everything else as text. */}}
{{- define "modelyard.envValue" -}}
{{- if kindIs "slice" . }}{{ join "," . }}{{ else }}{{ . }}{{ end }}
{{- end }}
