"""The knowledge base for API clients: POST /embeddings (OpenAI's shape) and POST /retrieve."""
