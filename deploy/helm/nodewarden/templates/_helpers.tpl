{{- define "nodewarden.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{/*
Read-only mounts of the transport Secrets (Kafka SASL credentials and CA, Redis
password and CA), 0400. Call with (dict "root" $ "kafkaSecret" <name> "redis" <bool>)
once under volumeMounts with "part" "mounts", once under volumes with "part" "volumes".
*/}}
{{- define "nodewarden.transportSecrets" -}}
{{- $v := .root.Values -}}
{{- $items := list -}}
{{- if $v.kafka.sasl.enabled }}{{ $items = append $items (list "kafka-credentials" "/var/run/secrets/nodewarden/kafka" .kafkaSecret) }}{{ end -}}
{{- if and $v.kafka.tls.enabled $v.kafka.tls.caSecret }}{{ $items = append $items (list "kafka-ca" "/var/run/secrets/nodewarden/kafka-ca" $v.kafka.tls.caSecret) }}{{ end -}}
{{- if and .redis $v.redis.passwordSecret }}{{ $items = append $items (list "redis-password" "/var/run/secrets/nodewarden/redis" $v.redis.passwordSecret) }}{{ end -}}
{{- if and .redis $v.redis.tls.caSecret }}{{ $items = append $items (list "redis-ca" "/var/run/secrets/nodewarden/redis-ca" $v.redis.tls.caSecret) }}{{ end -}}
{{- range $items }}
{{- if eq $.part "mounts" }}
- name: {{ index . 0 }}
  mountPath: {{ index . 1 }}
  readOnly: true
{{- else }}
- name: {{ index . 0 }}
  secret:
    secretName: {{ index . 2 }}
    defaultMode: 256 # = 0400, owner read-only
{{- end }}
{{- end }}
{{- end -}}
