{{- define "nodewarden.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
