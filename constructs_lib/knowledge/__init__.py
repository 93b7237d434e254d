"""The knowledge capability: the vector index, the manifest, the weekly ingestion pipeline."""
