{{/* Names and labels. */}}
{{- define "otp.name" -}}otp-orchestrator{{- end -}}

{{- define "otp.fullname" -}}
{{- if contains "otp-orchestrator" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-otp-orchestrator" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "otp.labels" -}}
app.kubernetes.io/name: {{ include "otp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: serve, worker-<group>, migrate. Usage: include "otp.selector" (list . "serve") */}}
{{- define "otp.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "otp.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "otp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "otp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "otp.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Pod Security "restricted": non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp, read-only root. */}}
{{- define "otp.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "otp.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment every role shares: the database, the keys, NATS, the configuration file, logs, telemetry. */}}
{{- define "otp.commonEnv" -}}
- name: OTP_DATABASE_URL
  valueFrom:
    secretKeyRef: { name: {{ .Values.database.existingSecret | quote }}, key: {{ .Values.database.urlKey | quote }} }
- name: OTP_DB_POOL_MAX
  value: {{ .Values.database.poolMax | quote }}
- name: OTP_CODE_HASH_KEY
  valueFrom:
    secretKeyRef: { name: {{ .Values.keys.existingSecret | quote }}, key: {{ .Values.keys.codeHashKey | quote }} }
- name: OTP_CODE_SEAL_KEY
  valueFrom:
    secretKeyRef: { name: {{ .Values.keys.existingSecret | quote }}, key: {{ .Values.keys.codeSealKey | quote }} }
{{- if .Values.nats.existingSecret }}
- name: OTP_NATS_URL
  valueFrom:
    secretKeyRef: { name: {{ .Values.nats.existingSecret | quote }}, key: {{ .Values.nats.urlKey | quote }} }
{{- else }}
- name: OTP_NATS_URL
  value: {{ .Values.nats.url | quote }}
{{- end }}
- name: OTP_NATS_STREAM_REPLICAS
  value: {{ .Values.nats.streamReplicas | quote }}
- name: OTP_CONFIG
  value: /etc/otp/config/otp.yaml
- name: OTP_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- range $name, $value := .Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- range $name, $value := .Values.otel }}
{{- if ne $name "OTEL_SERVICE_NAME" }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* OTEL_SERVICE_NAME of a role, unless the values name one. Usage: include "otp.serviceNameEnv" (list . "otp-serve") */}}
{{- define "otp.serviceNameEnv" -}}
{{- $root := index . 0 -}}
- name: OTEL_SERVICE_NAME
  value: {{ default (index . 1) (index $root.Values.otel "OTEL_SERVICE_NAME") | quote }}
{{- end -}}

{{/* The configuration file, the secret files it names, and a writable /tmp (the root filesystem is read-only). */}}
{{- define "otp.volumeMounts" -}}
- name: config
  mountPath: /etc/otp/config
  readOnly: true
{{- if .Values.config.secretFiles }}
- name: secret-files
  mountPath: /etc/otp/secrets
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "otp.volumes" -}}
- name: config
  configMap:
    name: {{ include "otp.fullname" . }}-config
{{- if .Values.config.secretFiles }}
- name: secret-files
  secret:
    secretName: {{ .Values.config.secretFiles | quote }}
    # 0440: readable by the pod's group only (decimal here: YAML readers disagree on leading-zero octal).
    defaultMode: 288
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}

{{/* Spread a component's pods over zones and nodes. Usage: include "otp.topologySpread" (list . "serve") */}}
{{- define "otp.topologySpread" -}}
{{- $root := index . 0 -}}
{{- if $root.Values.topologySpread.enabled }}
topologySpreadConstraints:
{{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: {{ $root.Values.topologySpread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "otp.selector" (list $root (index $ 1)) | nindent 8 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Scheduling and pod metadata every Deployment shares. */}}
{{- define "otp.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A change of the configuration file rolls every pod that reads it. */}}
{{- define "otp.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
