"""The configuration capability: model settings and secrets in SSM Parameter Store."""
