"""Dumps of salespulse's own topics: JSONL, one Kafka message a line, replayed as they are.

A line is ``{"topic": "sales.orders", "key": "acc-1", "value": {...}}``: the logical topic
(an input or reference topic, without the deployment's prefix), the key (a string; ``null``
or absent: no key; ``key_b64`` for bytes that are not UTF-8) and the value, a JSON object.
A value that is not a JSON object, or whose bytes are not exactly those the object serialises
to (the simulator's deliberately invalid messages), is ``value_b64``: the bytes in base64, so
the bytes sent are exactly the original ones.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.replay.mapping import MappingError
from streams.topics import INPUT_TOPICS, REFERENCE_TOPICS

DUMP_TOPICS = tuple(spec.name for spec in INPUT_TOPICS + REFERENCE_TOPICS)
_FIELDS = {"topic", "key", "key_b64", "value", "value_b64"}
_EXAMPLE = '{"topic": "sales.orders", "key": "acc-1", "value": {...}}'


class DumpError(MappingError):
    """A dump line that cannot be replayed; the message names the file, the line and why."""


@dataclass(frozen=True)
class Raw:
    """One message of a dump, sent as it is: logical topic, key and value bytes."""

    topic: str
    key: bytes | None
    value: bytes
    label: str  # the event type, the reference topic, or "raw bytes"


def dump_line(topic: str, key: bytes | None, value: bytes) -> bytes:
    """The dump line (without its newline) of one message; ``read_dump`` gives it back."""
    line: dict[str, Any] = {"topic": topic}
    if key is not None:
        try:
            line["key"] = key.decode()
        except UnicodeDecodeError:
            line["key_b64"] = base64.b64encode(key).decode()
    parsed = _json_object(value)
    if parsed is not None and orjson.dumps(parsed) == value:
        line["value"] = parsed
    else:
        line["value_b64"] = base64.b64encode(value).decode()
    return orjson.dumps(line)


def dump_files(paths: list[Path]) -> list[Path]:
    """The dump files of ``paths``: files as given, a folder's ``*.jsonl`` in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.jsonl"))
            if not found:
                raise DumpError(f"{path}: no *.jsonl dump in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DumpError(f"{path}: no such file")
    return files


def read_dump(path: Path) -> Iterator[Raw]:
    """The messages of one dump file, in file order; DumpError at the first bad line."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield parse_line(line, f"{path} line {number}")


def parse_line(line: bytes, where: str) -> Raw:
    """One dump line as a message; ``where`` (file and line) starts the error messages."""
    try:
        fields = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DumpError(f"{where}: not JSON ({exc}); a line is one message: {_EXAMPLE}") from exc
    if not isinstance(fields, dict):
        raise DumpError(f"{where}: expected a JSON object per line: {_EXAMPLE}")
    if unknown := sorted(set(fields) - _FIELDS):
        raise DumpError(f"{where}: unknown fields {unknown}; a line has {sorted(_FIELDS)}")
    topic = _topic(fields.get("topic"), where)
    value, parsed = _value(fields, where)
    return Raw(topic, _key(fields, where), value, _label(topic, parsed))


def _topic(topic: Any, where: str) -> str:
    if topic in DUMP_TOPICS:
        return str(topic)
    if not isinstance(topic, str):
        raise DumpError(f'{where}: no "topic" (one of {", ".join(DUMP_TOPICS)})')
    prefixed = [name for name in DUMP_TOPICS if topic.endswith(f".{name}")]
    hint = f" (without the deployment's prefix: {prefixed[0]!r})" if prefixed else ""
    raise DumpError(
        f"{where}: unknown topic {topic!r}{hint}; a dump holds the input and reference "
        f"topics: {', '.join(DUMP_TOPICS)}"
    )


def _key(fields: dict[str, Any], where: str) -> bytes | None:
    if "key" in fields and "key_b64" in fields:
        raise DumpError(f'{where}: both "key" and "key_b64"; keep one')
    if "key_b64" in fields:
        return _b64(fields["key_b64"], "key_b64", where)
    key = fields.get("key")
    if key is None:
        return None
    if not isinstance(key, str):
        raise DumpError(f'{where}: "key" must be a string or null, not {key!r}')
    return key.encode()


def _value(fields: dict[str, Any], where: str) -> tuple[bytes, dict[str, Any] | None]:
    """The value's bytes, and the JSON object they hold (None: they hold none)."""
    if "value" in fields and "value_b64" in fields:
        raise DumpError(f'{where}: both "value" and "value_b64"; keep one')
    if "value_b64" in fields:
        raw = _b64(fields["value_b64"], "value_b64", where)
        return raw, _json_object(raw)
    if "value" not in fields:
        raise DumpError(
            f'{where}: no "value": give the message as "value" (a JSON object) '
            'or its bytes as "value_b64" (base64)'
        )
    if not isinstance(fields["value"], dict):
        raise DumpError(f'{where}: "value" must be a JSON object; carry other bytes as "value_b64"')
    return orjson.dumps(fields["value"]), fields["value"]


def _b64(text: Any, name: str, where: str) -> bytes:
    if not isinstance(text, str):
        raise DumpError(f'{where}: "{name}" must be a base64 string, not {text!r}')
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DumpError(f'{where}: "{name}" is not base64 ({exc})') from exc


def _json_object(value: bytes) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _label(topic: str, parsed: dict[str, Any] | None) -> str:
    if topic.startswith("ref."):
        return topic
    kind = parsed.get("type") if parsed is not None else None
    return kind if isinstance(kind, str) and len(kind) <= 40 else "raw bytes"
