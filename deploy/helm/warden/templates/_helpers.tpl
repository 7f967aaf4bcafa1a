{{/*
Names, labels, and the Warden config the chart renders from values: the one place that merges `config` with the
settings the chart owns, and checks that the drain fits in the grace period.
*/}}

{{- define "warden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warden.fullname" -}}
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

{{- define "warden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "warden.labels" -}}
helm.sh/chart: {{ include "warden.chart" . }}
{{ include "warden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: warden
{{- end }}

{{- define "warden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "warden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "warden.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Where the files of Secrets and the config land in the pod. */}}
{{- define "warden.configDir" -}}/etc/warden/config{{- end }}
{{- define "warden.secretsDir" -}}/etc/warden/secrets{{- end }}

{{/*
A Warden duration (milliseconds, or N followed by ms, s or m) in whole seconds, rounded up: the grace period
must cover all of it.
*/}}
{{- define "warden.durationSeconds" -}}
{{- $d := toString . }}
{{- if regexMatch "^[0-9]+ms$" $d }}
{{- div (add (trimSuffix "ms" $d | atoi) 999) 1000 }}
{{- else if regexMatch "^[0-9]+s$" $d }}
{{- trimSuffix "s" $d | atoi }}
{{- else if regexMatch "^[0-9]+m$" $d }}
{{- mul (trimSuffix "m" $d | atoi) 60 }}
{{- else if regexMatch "^[0-9]+$" $d }}
{{- div (add (atoi $d) 999) 1000 }}
{{- else }}
{{- fail (printf "warden.drainTimeout %q is not a duration (milliseconds, or a number followed by ms, s or m)" $d) }}
{{- end }}
{{- end }}

{{/*
SIGTERM comes after the preStop sleep, and Warden exits at most drainTimeout + 2 s after it (the last audit
writes): a grace period that is not longer would have the kubelet SIGKILL a draining pod.
*/}}
{{- define "warden.checkGrace" -}}
{{- $drain := include "warden.durationSeconds" .Values.warden.drainTimeout | atoi }}
{{- $pre := int .Values.lifecycle.preStopSleepSeconds }}
{{- $need := add $pre $drain 2 }}
{{- $grace := int .Values.terminationGracePeriodSeconds }}
{{- if le $grace $need }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be longer than lifecycle.preStopSleepSeconds (%d) + warden.drainTimeout (%s = %ds) + 2s for the last audit writes: set it to at least %d" $grace $pre (toString .Values.warden.drainTimeout) $drain (add $need 1)) }}
{{- end }}
{{- end }}

{{/* Keys of `config` the chart sets itself: refused with the value to use instead. */}}
{{- define "warden.checkConfig" -}}
{{- $c := .Values.config | default dict }}
{{- if hasKey $c "listen" }}
{{- fail "config.listen is set by the chart: use warden.port" }}
{{- end }}
{{- if and (hasKey $c "limits") (hasKey (get $c "limits" | default dict) "drain_timeout") }}
{{- fail "config.limits.drain_timeout is set by the chart: use warden.drainTimeout" }}
{{- end }}
{{- if and (hasKey $c "telemetry") (hasKey (get $c "telemetry" | default dict) "metrics") }}
{{- fail "config.telemetry.metrics is set by the chart: use warden.metrics.enabled and warden.metrics.port" }}
{{- end }}
{{- $a := get $c "audit" | default dict }}
{{- range $k := list "database" "spool" "mode" "content" }}
{{- if hasKey $a $k }}
{{- fail (printf "config.audit.%s is set by the chart: use audit.enabled, audit.mode, audit.content and database.existingSecret (the spool is under warden.stateDir)" $k) }}
{{- end }}
{{- end }}
{{- if and (hasKey $a "checkpoints") (hasKey (get $a "checkpoints" | default dict) "signing_key") }}
{{- fail "config.audit.checkpoints.signing_key is set by the chart: use audit.signingKey.existingSecret" }}
{{- end }}
{{- if and $a (not .Values.audit.enabled) }}
{{- fail "config.audit is set but audit.enabled is false: turn it on with audit.enabled" }}
{{- end }}
{{- $g := get $c "governance" | default dict }}
{{- range $k := list "database" "mode" }}
{{- if hasKey $g $k }}
{{- fail (printf "config.governance.%s is set by the chart: use governance.enabled, governance.mode and database.existingSecret" $k) }}
{{- end }}
{{- end }}
{{- if and $g (not .Values.governance.enabled) }}
{{- fail "config.governance is set but governance.enabled is false: turn it on with governance.enabled" }}
{{- end }}
{{- if and (or .Values.audit.enabled .Values.governance.enabled) (not .Values.database.existingSecret) }}
{{- fail "audit.enabled and governance.enabled need database.existingSecret (a Secret with the runtime postgresql:// URL)" }}
{{- end }}
{{- if and .Values.migrate.enabled (or .Values.audit.enabled .Values.governance.enabled) (not .Values.migrate.existingSecret) }}
{{- fail "migrate.enabled needs migrate.existingSecret (a Secret with the privileged postgresql:// URL), or set migrate.enabled: false" }}
{{- end }}
{{- $seen := dict }}
{{- range .Values.secretFiles }}
{{- if has .name (list "database" "audit-signing-key") }}
{{- fail (printf "secretFiles: the name %q is the chart's own mount (database.existingSecret, audit.signingKey): choose another" .name) }}
{{- end }}
{{- if hasKey $seen .name }}
{{- fail (printf "secretFiles: the name %q is given twice" .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- end }}
{{- if and .Values.vault.enabled (not .Values.vault.address) }}
{{- fail "vault.enabled needs vault.address" }}
{{- end }}
{{- end }}

{{/* Whether the migrate Job runs: only when there is a database to migrate. */}}
{{- define "warden.migrateEnabled" -}}
{{- if and .Values.migrate.enabled (or .Values.audit.enabled .Values.governance.enabled) }}true{{ end }}
{{- end }}

{{/* The Warden config file: `config` with the chart-owned settings laid over it. */}}
{{- define "warden.config" -}}
{{- include "warden.checkConfig" . }}
{{- $c := deepCopy (.Values.config | default dict) }}
{{- $sec := include "warden.secretsDir" . }}
{{- $_ := set $c "listen" (printf "0.0.0.0:%d" (int .Values.warden.port)) }}
{{- $limits := get $c "limits" | default dict }}
{{- $_ = set $limits "drain_timeout" (toString .Values.warden.drainTimeout) }}
{{- $_ = set $c "limits" $limits }}
{{- $tel := get $c "telemetry" | default dict }}
{{- if .Values.warden.metrics.enabled }}
{{- $_ = set $tel "metrics" (dict "listen" (printf "0.0.0.0:%d" (int .Values.warden.metrics.port))) }}
{{- else }}
{{- $_ = set $tel "metrics" (dict "listen" "off") }}
{{- end }}
{{- if .Values.otel.endpoint }}
{{- $otlp := dict "endpoint" .Values.otel.endpoint "protocol" .Values.otel.protocol "sampling_ratio" .Values.otel.samplingRatio "compression" .Values.otel.compression }}
{{- if .Values.otel.headers }}
{{- $_ = set $otlp "headers" .Values.otel.headers }}
{{- end }}
{{- $_ = set $tel "otlp" $otlp }}
{{- end }}
{{- $_ = set $c "telemetry" $tel }}
{{- $migrating := eq (include "warden.migrateEnabled" .) "true" }}
{{- $dsn := printf "file://%s/database/%s" $sec .Values.database.key }}
{{- if .Values.audit.enabled }}
{{- $audit := get $c "audit" | default dict }}
{{- $_ = set $audit "database" $dsn }}
{{- $_ = set $audit "mode" .Values.audit.mode }}
{{- $_ = set $audit "content" .Values.audit.content }}
{{- $_ = set $audit "spool" (printf "%s/audit-spool" .Values.warden.stateDir) }}
{{- if $migrating }}
{{- $_ = set $audit "migrate" false }}
{{- end }}
{{- if .Values.audit.signingKey.existingSecret }}
{{- $cp := get $audit "checkpoints" | default dict }}
{{- $_ = set $cp "signing_key" (printf "file://%s/audit-signing-key/%s" $sec .Values.audit.signingKey.key) }}
{{- $_ = set $audit "checkpoints" $cp }}
{{- end }}
{{- $_ = set $c "audit" $audit }}
{{- end }}
{{- if .Values.governance.enabled }}
{{- $gov := get $c "governance" | default dict }}
{{- $_ = set $gov "database" $dsn }}
{{- $_ = set $gov "mode" .Values.governance.mode }}
{{- if $migrating }}
{{- $_ = set $gov "migrate" false }}
{{- end }}
{{- $_ = set $c "governance" $gov }}
{{- end }}
{{- $secrets := get $c "secrets" | default dict }}
{{- if .Values.vault.enabled }}
{{- $v := get $secrets "vault" | default dict }}
{{- $_ = set $v "address" .Values.vault.address }}
{{- $_ = set $v "auth" "kubernetes" }}
{{- $_ = set $v "role" .Values.vault.role }}
{{- $_ = set $v "auth_mount" .Values.vault.authMount }}
{{- if .Values.vault.namespace }}
{{- $_ = set $v "namespace" .Values.vault.namespace }}
{{- end }}
{{- if .Values.vault.caSecret }}
{{- $_ = set $v "tls_ca" (printf "/etc/warden/vault-ca/%s" .Values.vault.caKey) }}
{{- end }}
{{- $_ = set $secrets "vault" $v }}
{{- end }}
{{- if .Values.cloud.aws.roleArn }}
{{- $a := get $secrets "aws" | default dict }}
{{- $_ = set $a "credentials" "web_identity" }}
{{- if .Values.cloud.aws.region }}
{{- $_ = set $a "region" .Values.cloud.aws.region }}
{{- end }}
{{- $_ = set $secrets "aws" $a }}
{{- end }}
{{- if .Values.cloud.gcp.serviceAccount }}
{{- $g := get $secrets "gcp" | default dict }}
{{- $_ = set $g "credentials" "metadata" }}
{{- $_ = set $secrets "gcp" $g }}
{{- end }}
{{- if .Values.cloud.azure.clientId }}
{{- $z := get $secrets "azure" | default dict }}
{{- $_ = set $z "credentials" "workload_identity" }}
{{- $_ = set $secrets "azure" $z }}
{{- end }}
{{- if $secrets }}
{{- $_ = set $c "secrets" $secrets }}
{{- end }}
{{- toYaml $c }}
{{- end }}
