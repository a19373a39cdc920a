"""The engine's output records held to the published contracts in schemas/.

Reads what a worker put on ``kpi.updates``, ``sales.late`` and ``sales.deadletter`` (kcat's
JSON envelopes) and returns every way a record breaks its contract: the JSON Schema of its
payload (format assertion on), the headers the AsyncAPI document requires, and what the
schemas cannot say (the money unit is the configured currency, a late event is sent once).
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Any

import orjson
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from streams.contracts.export import schemas_dir
from streams.kpi.catalog import KPIS, unit_of
from streams.kpi.windows import CELL_KINDS
from streams.settings import Settings

SCHEMAS = schemas_dir()


@cache
def _validator(relative: str) -> Draft202012Validator:
    schema = orjson.loads((SCHEMAS / relative).read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


@cache
def _headers_schema(message: str) -> dict[str, Any]:
    document = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    headers: dict[str, Any] = document["components"]["messages"][message]["headers"]
    return headers


def _headers(envelope: dict[str, Any]) -> dict[str, str]:
    flat = envelope.get("headers") or []
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _schema_errors(relative: str, value: Any, where: str) -> list[str]:
    return [f"{where}: {e.message}" for e in _validator(relative).iter_errors(value)]


def _header_errors(message: str, headers: dict[str, str], where: str) -> list[str]:
    errors = [f"{where}: header {h} missing" for h in _headers_schema(message)["required"]
              if h not in headers]  # fmt: skip
    header_schema = Draft202012Validator(_headers_schema(message))
    errors += [f"{where}: headers: {e.message}" for e in header_schema.iter_errors(headers)]
    return errors


def kpi_update_errors(envelopes: list[dict[str, Any]], settings: Settings) -> list[str]:
    errors: list[str] = []
    for n, envelope in enumerate(envelopes):
        where = f"kpi.updates #{n} ({envelope.get('key')})"
        record = orjson.loads(str(envelope["payload"]))
        errors += _schema_errors("kpi-update.json", record, where)
        if record.get("kpi") in KPIS and record.get("unit") != unit_of(
            record["kpi"], settings.currency
        ):
            errors.append(f"{where}: unit {record.get('unit')!r}, expected "
                          f"{unit_of(record['kpi'], settings.currency)!r}")  # fmt: skip
    return errors


def late_errors(envelopes: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    for n, envelope in enumerate(envelopes):
        where = f"sales.late #{n} ({envelope.get('key')})"
        headers = _headers(envelope)
        errors += _header_errors("late_event", headers, where)
        kinds = headers.get("late_kinds", "").split(",")
        if not set(kinds) <= set(CELL_KINDS):
            errors.append(f"{where}: late_kinds {kinds} not among {CELL_KINDS}")
        event = orjson.loads(str(envelope["payload"]))
        errors += _schema_errors(f"events/{event.get('type')}.json", event, where)
    ids = Counter(orjson.loads(str(e["payload"])).get("event_id") for e in envelopes)
    errors += [f"sales.late: event {i} sent {k} times (once per event)" for i, k in ids.items()
               if k > 1]  # fmt: skip
    return errors


def dead_letter_errors(envelopes: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    for n, envelope in enumerate(envelopes):
        where = f"sales.deadletter #{n} ({envelope.get('key')})"
        errors += _header_errors("dead_letter", _headers(envelope), where)
    return errors
