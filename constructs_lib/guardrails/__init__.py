"""The guardrails capability: the stage's Bedrock Guardrail (content filters, sensitive information, denied topics,
words) and the numbered version the API applies."""
