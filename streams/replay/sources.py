"""Stream rows out of CSV and JSONL exports, with their position for error messages."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from streams.replay.mapping import MappingError


def detect_format(path: Path, declared: str | None) -> str:
    if declared:
        return declared
    suffix = path.suffix.lower()
    if suffix in (".csv", ".jsonl", ".ndjson"):
        return "csv" if suffix == ".csv" else "jsonl"
    raise MappingError(f"{path}: say `format: csv` or `format: jsonl` in the mapping")


def read_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for every data row of ``path``."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        if fmt == "csv":
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, dict(row)
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise MappingError(f"{path} line {number}: not JSON: {exc}") from exc
            if not isinstance(value, dict):
                raise MappingError(f"{path} line {number}: expected a JSON object per line")
            yield number, value


def count_rows(path: Path, fmt: str) -> int:
    """Data rows in ``path`` (for the progress percentage)."""
    return sum(1 for _ in read_rows(path, fmt))
