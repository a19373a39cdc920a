"""Replay and backfill: CRM exports (CSV, JSONL) replayed as events and reference records."""
