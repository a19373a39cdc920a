"""Rows -> records, pure: what ``salespulse replay`` would send, and what it skips and why.

Event ids are uuid5 of (mapping name, event type, row identity), so a second replay of the
same export produces the same ids and the worker's dedup makes it add nothing. A naive date
or datetime is a local time in the business time zone (a date alone: local midnight).
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError

from streams.contracts.events import EVENT_MODELS, TOPIC_OF_TYPE
from streams.contracts.reference import REFERENCE_MODELS, reference_key
from streams.ingest.validate import InvalidEvent, Limits, validate
from streams.replay.expressions import Row, first_present, render, render_template
from streams.replay.mapping import Mapping, MappingError, RecordRule, Source
from streams.replay.sources import detect_format, read_rows

_NAMESPACE = uuid.UUID("0b5e7c1e-58f4-4a43-9d1e-2f9c0b1d3a77")


@dataclass(frozen=True)
class Output:
    """One record to send: logical topic, key, JSON value; ``label`` is its type or ref kind."""

    topic: str
    key: str
    value: dict[str, Any]
    label: str


@dataclass(frozen=True)
class Skip:
    """A record a row could not give, and why."""

    where: str
    label: str
    reason: str


def local_time(text: str, zone: ZoneInfo) -> datetime:
    """An aware datetime from an export value; naive values are local times in ``zone``."""
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=zone)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        return moment
    # Through UTC: a time that does not exist (the spring-forward gap) becomes the real one.
    return moment.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def files_of(mapping: Mapping, inputs: list[Path]) -> list[tuple[Source, Path]]:
    """Each source of the mapping with the input files it reads, in mapping order."""
    planned: list[tuple[Source, Path]] = []
    for source in mapping.sources:
        matches: list[Path] = []
        for given in inputs:
            if given.is_dir():
                matches += sorted(given.glob(source.file))
            elif fnmatch.fnmatch(given.name, source.file):
                matches.append(given)
        planned += [(source, path) for path in matches]
    if not planned:
        wanted = ", ".join(source.file for source in mapping.sources)
        raise MappingError(f"no input file matches the mapping's sources ({wanted})")
    return planned


def transform_file(
    mapping: Mapping, source: Source, path: Path, zone: ZoneInfo, limits: Limits
) -> Iterator[tuple[int, Output | Skip]]:
    """(line number, record) for the records of every row of one export file."""
    fmt = detect_format(path, source.format)
    for line, values in read_rows(path, fmt):
        for column, table in source.normalise.items():
            if column in values and values[column] in table:
                values[column] = table[values[column]]
        row = Row(values, mapping.constants, f"{path.name} line {line}")
        for rule in source.records:
            if _applies(rule, row):
                yield line, _record(mapping, rule, row, zone, limits)


def _applies(rule: RecordRule, row: Row) -> bool:
    for column, wanted in rule.when.items():
        allowed = [wanted] if isinstance(wanted, str) else wanted
        if row.column(column) not in allowed:
            return False
    return True


def _record(
    mapping: Mapping, rule: RecordRule, row: Row, zone: ZoneInfo, limits: Limits
) -> Output | Skip:
    for column in rule.require:
        if row.column(column) == "":
            return Skip(row.where, rule.label, f"{column} is empty")
    fields = render(rule.fields, row)
    if rule.reference is not None:
        topic, model = REFERENCE_MODELS[rule.reference]
        try:
            record = model.model_validate(fields)
        except ValidationError as exc:
            return Skip(row.where, rule.label, _errors(exc))
        key = first_present(rule.key, row) if rule.key else reference_key(record)
        return Output(topic, key or reference_key(record), record.model_dump(mode="json"),
                      rule.label)  # fmt: skip
    # Checked by RecordRule's validator; restated for the type checker.
    assert rule.event is not None
    assert rule.id is not None
    assert rule.occurred_at is not None
    assert rule.key is not None
    identity = render_template(rule.id, row)
    when = render_template(rule.occurred_at, row)
    key = first_present(rule.key, row)
    if identity is None or when is None or key is None:
        return Skip(row.where, rule.label, "id, occurred_at or key is empty")
    try:
        occurred_at = local_time(when, zone)
    except ValueError:
        return Skip(row.where, rule.label, f"occurred_at {when!r} is not a date or datetime")
    event = {
        "event_id": str(uuid.uuid5(_NAMESPACE, f"{mapping.name}/{rule.event}/{identity}")),
        "type": rule.event,
        "occurred_at": occurred_at.isoformat(),
        "source": mapping.constants.get("source", "replay"),
        "schema_version": 1,
        **fields,
    }
    topic = TOPIC_OF_TYPE[rule.event]
    try:
        validate(orjson.dumps(event), topic, limits)  # what the worker would say of it
    except InvalidEvent as exc:
        return Skip(row.where, rule.label, f"{exc.reason}: {exc.detail}")
    # Sent as the export says it (original currency; the worker converts), typed and tidy.
    typed = EVENT_MODELS[rule.event].model_validate(event)
    return Output(topic, key, typed.model_dump(mode="json", exclude_none=True), rule.label)


def in_replay_order(items: Iterable[Output | Skip]) -> list[Output | Skip]:
    """Reference records first (as read), then events by event time (stable).

    An export is ordered by row, not by event time (an opportunity's close is dated months
    after its row): sending by event time makes stream time advance as it did live.
    """
    listed = list(items)

    def order(item: Output | Skip) -> tuple[int, str]:
        if isinstance(item, Output) and "occurred_at" in item.value:
            instant = datetime.fromisoformat(item.value["occurred_at"]).astimezone(UTC)
            return 1, instant.isoformat()
        return 0, ""

    return sorted(listed, key=order)


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
