"""Ingest: validate input messages, route the invalid ones to the dead letters, dedup."""
