"""The inference capability: the authenticated OpenAI-compatible REST API, its key registry and firewall."""
