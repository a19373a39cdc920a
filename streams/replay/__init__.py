"""Replay and backfill: CRM exports (CSV, JSONL) turned into events and reference records.

``mapping`` reads the YAML mapping file, ``sources`` the export's files, ``transform`` turns
rows into records (pure, deterministic ids), ``plan`` matches files to the mapping and
collects the records in event-time order, ``produce`` sends them, ``command`` is
``salespulse replay`` and ``salespulse ref load``.
"""
