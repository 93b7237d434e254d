"""The chat: signed-in users' conversations, answered from the knowledge base with citations, streamed."""
