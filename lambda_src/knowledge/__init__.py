"""The knowledge pipeline: discover, ingest and report steps of the weekly state machine."""
