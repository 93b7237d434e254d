"""The audit capability: every inference recorded, queryable with Athena."""
