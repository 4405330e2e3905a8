{{/*
Object names are fixed, not derived from the release name: the operator binds every tenant
namespace to the ServiceAccount coachops-system/coachops-runtime and admits traffic from
coachops-system only (coachops_crds.constants), so a second, renamed copy could not work.
*/}}

{{/*
Checks across values that values.schema.json cannot express, each failing with what to
change: the namespace the operator's tenants trust, and values the pods would refuse.
*/}}
{{- define "coachops.validate" -}}
{{- if ne .Release.Namespace "coachops-system" -}}
{{- fail (printf "coachops must be installed in the namespace coachops-system (got %q): tenant namespaces admit traffic from coachops-system and bind its ServiceAccount coachops-system/coachops-runtime. Use: helm install coachops charts/coachops --namespace coachops-system" .Release.Namespace) -}}
{{- end -}}
{{- $scaling := .Values.runtime.autoscaling -}}
{{- if and $scaling.enabled (lt (int $scaling.maxReplicas) (int $scaling.minReplicas)) -}}
{{- fail (printf "runtime.autoscaling.maxReplicas (%d) must be at least runtime.autoscaling.minReplicas (%d)" (int $scaling.maxReplicas) (int $scaling.minReplicas)) -}}
{{- end -}}
{{- if and .Values.smtp.existingSecret (eq .Values.smtp.tls "none") -}}
{{- fail "smtp.existingSecret is set but smtp.tls is none: the password would travel in clear and the runtime refuses to start; set smtp.tls to starttls or tls" -}}
{{- end -}}
{{- $op := .Values.operator -}}
{{- if and $op.pdb.enabled (not (kindIs "string" $op.pdb.minAvailable)) (ge (int $op.pdb.minAvailable) (int $op.replicas)) -}}
{{- fail (printf "operator.pdb.minAvailable (%d) must be below operator.replicas (%d), or no node running the operator could ever be drained" (int $op.pdb.minAvailable) (int $op.replicas)) -}}
{{- end -}}
{{- $rt := .Values.runtime -}}
{{- $fewest := ternary $scaling.minReplicas $rt.replicas $scaling.enabled -}}
{{- if and $rt.pdb.enabled (not (kindIs "string" $rt.pdb.minAvailable)) (ge (int $rt.pdb.minAvailable) (int $fewest)) -}}
{{- fail (printf "runtime.pdb.minAvailable (%d) must be below the runtime's replicas (%d), or no node running the runtime could ever be drained" (int $rt.pdb.minAvailable) (int $fewest)) -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "coachops.labels" -}}
app.kubernetes.io/part-of: coachops
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component: (dict "root" $ "name" "coachops-runtime" "component" "runtime") */}}
{{- define "coachops.componentLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/component: {{ .component }}
{{ include "coachops.labels" .root }}
{{- end -}}

{{/* The selector of one component (never changes between versions). */}}
{{- define "coachops.selector" -}}
app.kubernetes.io/name: {{ . }}
app.kubernetes.io/part-of: coachops
{{- end -}}

{{/* The image reference: registry/repository, then @digest if given, else :tag. */}}
{{- define "coachops.image" -}}
{{- $image := .Values.image -}}
{{- $name := $image.repository -}}
{{- if $image.registry -}}
{{- $name = printf "%s/%s" $image.registry $image.repository -}}
{{- end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $name $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $name (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context: the restricted Pod Security profile, uid/gid of the image. */}}
{{- define "coachops.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context: restricted, read-only root filesystem. */}}
{{- define "coachops.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* imagePullSecrets, when any are given. */}}
{{- define "coachops.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Spreads a component's pods across nodes and zones; ScheduleAnyway, so a single-node cluster
still runs every replica. (dict "root" $ "name" "coachops-runtime" "values" .Values.runtime)
*/}}
{{- define "coachops.topologySpread" -}}
{{- if .values.topologySpreadConstraints }}
topologySpreadConstraints:
{{ toYaml .values.topologySpreadConstraints | indent 2 }}
{{- else if .root.Values.topologySpread.enabled }}
topologySpreadConstraints:
{{- range .root.Values.topologySpread.topologyKeys }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "coachops.selector" $.name | nindent 8 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* nodeSelector, tolerations and affinity of one component's values. */}}
{{- define "coachops.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
{{ toYaml . | indent 2 }}
{{- end }}
{{- end -}}

{{/* An environment variable read from a Secret key. (list "NAME" "secret" "key") */}}
{{- define "coachops.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ index . 1 }}
      key: {{ index . 2 }}
{{- end -}}

{{/*
The settings the shared runtime and the worker both read (COACHOPS_*). Store credentials
come from the Secrets the values name; nothing secret is rendered into the chart.
*/}}
{{- define "coachops.runtimeEnv" -}}
- name: COACHOPS_ENVIRONMENT
  value: production
{{ include "coachops.secretEnv" (list "COACHOPS_DATABASE_URL" .Values.database.existingSecret .Values.database.runtimeUrlKey) }}
{{ include "coachops.secretEnv" (list "COACHOPS_REDIS_URL" .Values.redis.existingSecret .Values.redis.runtimeUrlKey) }}
- name: COACHOPS_CHROMA_URL
  value: {{ .Values.chroma.url | quote }}
- name: COACHOPS_OLLAMA_URL
  value: {{ .Values.ollama.url | quote }}
- name: COACHOPS_MODEL_REGISTRY
  value: {{ .Values.ollama.modelRegistry | quote }}
- name: COACHOPS_JWT_KEYS_DIR
  value: /var/run/secrets/coachops/jwt
- name: COACHOPS_JWT_ISSUER
  value: {{ .Values.jwt.issuer | quote }}
- name: COACHOPS_PUBLIC_BASE_URL
  value: {{ .Values.publicBaseUrl | quote }}
- name: COACHOPS_SMTP_HOST
  value: {{ .Values.smtp.host | quote }}
- name: COACHOPS_SMTP_PORT
  value: {{ .Values.smtp.port | quote }}
- name: COACHOPS_SMTP_TLS
  value: {{ .Values.smtp.tls | quote }}
- name: COACHOPS_SMTP_USERNAME
  value: {{ .Values.smtp.username | quote }}
{{- if .Values.smtp.existingSecret }}
{{ include "coachops.secretEnv" (list "COACHOPS_SMTP_PASSWORD" .Values.smtp.existingSecret .Values.smtp.passwordKey) }}
{{- end }}
- name: COACHOPS_MAIL_FROM
  value: {{ .Values.smtp.from | quote }}
{{- if .Values.channels.existingSecret }}
{{ include "coachops.secretEnv" (list "COACHOPS_CHANNEL_KEY" .Values.channels.existingSecret .Values.channels.keyKey) }}
{{- end }}
- name: COACHOPS_CHANNEL_WEBHOOK_BASE_URL
  value: {{ .Values.channels.webhookBaseUrl | quote }}
- name: COACHOPS_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/* The JWT key Secret as a read-only volume (mounted at the runtime's key directory). */}}
{{- define "coachops.jwtVolume" -}}
- name: jwt-keys
  secret:
    secretName: {{ .Values.jwt.existingSecret }}
    defaultMode: 288  # 0440: read by the owner and the group (fsGroup 10001)
{{- end -}}

{{/* An emptyDir for /tmp: the root filesystem is read-only. */}}
{{- define "coachops.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end -}}
