"""The inference API: OpenAI-compatible routes over Amazon Bedrock or an OpenAI-compatible upstream."""
