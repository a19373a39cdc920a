"""Generate ``schemas/``: JSON Schemas of every event, reference record and KPI update, and
an AsyncAPI 3 document of every topic. ``salespulse schemas`` writes them; ``--check`` (and a
test) fails when the committed files drift from the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel

from streams.contracts.events import EVENT_MODELS, TOPIC_OF_TYPE
from streams.contracts.examples import EVENT_EXAMPLES, KPI_UPDATE_EXAMPLE, REFERENCE_EXAMPLES
from streams.contracts.kpi import KpiUpdate
from streams.contracts.reference import REFERENCE_MODELS
from streams.ingest.validate import DeadLetterReason
from streams.topics import INPUT_TOPICS, OUTPUT_TOPICS, REFERENCE_TOPICS, TopicSpec

BASE_ID = "https://salespulse.dev/schemas/"
DEFAULT_PARTITIONS = 4
_KAFKA_BINDING = "0.5.0"


def _json_schema(model: type[BaseModel], path: str, example: dict[str, Any]) -> str:
    schema = model.model_json_schema(mode="serialization")
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": BASE_ID + path,
        **schema,
        "examples": [example],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def _message_id(name: str) -> str:
    return name.replace(".", "_")


def _channel(spec: TopicSpec, messages: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": spec.name,
        "title": spec.name,
        "description": f"{spec.description}. Key: {spec.key}. Partitions are set by "
        f"SALESPULSE_TOPIC_PARTITIONS (default {DEFAULT_PARTITIONS}); names take the optional "
        "SALESPULSE_TOPIC_PREFIX.",
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
        "bindings": {
            "kafka": {
                "partitions": DEFAULT_PARTITIONS,
                "replicas": 1,
                "topicConfiguration": {
                    "cleanup.policy": ["compact" if spec.compacted else "delete"]
                },
                "bindingVersion": _KAFKA_BINDING,
            }
        },
    }


def _asyncapi() -> str:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def add(spec: TopicSpec, channel_messages: dict[str, dict[str, Any]], action: str) -> None:
        channels[spec.name] = _channel(spec, channel_messages)
        messages.update(channel_messages)
        verb = "receive" if action == "receive" else "send"
        operations[f"{verb}_{spec.name.replace('.', '_')}"] = {
            "action": verb,
            "channel": {"$ref": f"#/channels/{spec.name}"},
            "summary": ("The worker consumes " if verb == "receive" else "The worker publishes ")
            + spec.name,
            "messages": [
                {"$ref": f"#/channels/{spec.name}/messages/{m}"} for m in channel_messages
            ],
        }

    def key(description: str) -> dict[str, Any]:
        return {"kafka": {"key": {"type": "string", "description": description},
                          "bindingVersion": _KAFKA_BINDING}}  # fmt: skip

    for spec in INPUT_TOPICS:
        add(spec, {
            _message_id(event_type): {
                "name": event_type,
                "title": event_type,
                "contentType": "application/json",
                "payload": {"$ref": f"./events/{event_type}.json"},
                "bindings": key(spec.key),
            }
            for event_type, topic in TOPIC_OF_TYPE.items() if topic == spec.name
        }, "receive")  # fmt: skip
    for spec in REFERENCE_TOPICS:
        kind = spec.name.removeprefix("ref.")
        add(spec, {
            f"ref_{kind}": {
                "name": f"ref.{kind}",
                "title": f"{kind} reference record (a null value deletes the key)",
                "contentType": "application/json",
                "payload": {"$ref": f"./reference/{kind}.json"},
                "bindings": key(spec.key),
            }
        }, "receive")  # fmt: skip
    for spec in OUTPUT_TOPICS:
        if spec.name == "kpi.updates":
            body = {
                "name": "kpi.update", "title": "KPI update", "contentType": "application/json",
                "payload": {"$ref": "./kpi-update.json"}, "bindings": key(spec.key),
            }  # fmt: skip
            add(spec, {"kpi_update": body}, "send")
        else:
            body = {
                "name": "dead.letter",
                "title": "An input message that could not be counted",
                "summary": "The value is the original message, byte for byte (often JSON, not "
                "always); why it was refused is in the headers.",
                "payload": {"description": "the original bytes, unchanged"},
                "headers": {
                    "type": "object",
                    "required": ["reason", "detail", "source_topic", "source_partition",
                                 "source_offset"],
                    "properties": {
                        "reason": {"type": "string", "enum": [r.value for r in DeadLetterReason]},
                        "detail": {"type": "string", "description": "what to fix, by field"},
                        "source_topic": {"type": "string"},
                        "source_partition": {"type": "string", "pattern": "^[0-9]+$"},
                        "source_offset": {"type": "string", "pattern": "^[0-9]+$"},
                    },
                },
                "bindings": key(spec.key),
            }  # fmt: skip
            add(spec, {"dead_letter": body}, "send")
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "salespulse",
            "version": "0.1.0",
            "description": "Topics read and written by salespulse workers. Payload schemas are "
            "the JSON Schemas beside this file, generated from streams/contracts by "
            "`salespulse schemas`.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "a local broker (salespulse stack up picks a free port)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
    header = "# Generated by `salespulse schemas` from streams/contracts: do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


def generate() -> dict[str, str]:
    """Relative path under schemas/ -> file text."""
    files = {
        f"events/{event_type}.json": _json_schema(
            model, f"events/{event_type}.json", EVENT_EXAMPLES[event_type]
        )
        for event_type, model in sorted(EVENT_MODELS.items())
    }
    for kind, (_topic, model) in sorted(REFERENCE_MODELS.items()):
        files[f"reference/{kind}.json"] = _json_schema(
            model, f"reference/{kind}.json", REFERENCE_EXAMPLES[kind]
        )
    files["kpi-update.json"] = _json_schema(KpiUpdate, "kpi-update.json", KPI_UPDATE_EXAMPLE)
    files["asyncapi.yaml"] = _asyncapi()
    return files


def schemas_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "schemas"


def write(root: Path) -> list[Path]:
    """Write every generated file under ``root`` and delete stale generated ones."""
    files = generate()
    written = []
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    for stale in _generated_on_disk(root) - set(files):
        (root / stale).unlink()
    return written


def _generated_on_disk(root: Path) -> set[str]:
    found = {
        str(path.relative_to(root))
        for folder in ("events", "reference")
        for path in (root / folder).glob("*.json")
    }
    found |= {name for name in ("kpi-update.json", "asyncapi.yaml") if (root / name).exists()}
    return found


def drift(root: Path) -> list[str]:
    """Files under ``root`` that are missing, different from the models, or no longer made."""
    files = generate()
    problems = [
        f"{relative}: missing" if not (root / relative).exists() else f"{relative}: differs"
        for relative, text in files.items()
        if not (root / relative).exists() or (root / relative).read_text() != text
    ]
    problems += [f"{stale}: no longer generated" for stale in _generated_on_disk(root) - set(files)]
    return sorted(problems)


def run_schemas(check: bool) -> int:
    """``salespulse schemas [--check]``."""
    root = schemas_dir()
    if check:
        problems = drift(root)
        for problem in problems:
            print(f"schemas/{problem}")
        if problems:
            print("the committed schemas drifted from the models: run `salespulse schemas`")
            return 1
        print("schemas/ matches the models")
        return 0
    for path in write(root):
        print(f"wrote {path.relative_to(root.parent)}")
    return 0
