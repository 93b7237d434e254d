"""Quality gates that run over synthesized templates and deployments: the IAM scan and the checkov gate."""
