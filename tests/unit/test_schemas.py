"""schemas/: the committed files are what the models generate; every example validates against
its model, its JSON Schema and the AsyncAPI document; the JSON Schemas are as strict as the
models wherever JSON Schema can say it (and the models alone hold the line where it cannot)."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel, ValidationError

from streams.contracts.events import EVENT_MODELS, TOPIC_OF_TYPE
from streams.contracts.examples import EVENT_EXAMPLES, KPI_UPDATE_EXAMPLE, REFERENCE_EXAMPLES
from streams.contracts.export import (
    BASE_ID,
    DEFAULT_PARTITIONS,
    drift,
    generate,
    run_schemas,
    schemas_dir,
    write,
)
from streams.contracts.kpi import KpiUpdate
from streams.contracts.reference import REFERENCE_MODELS
from streams.engine.failures import STAGE_ERROR
from streams.ingest.validate import DeadLetterReason
from streams.topics import INPUT_TOPICS, INTERNAL_TOPICS, OUTPUT_TOPICS, REFERENCE_TOPICS

ROOT = schemas_dir()
PUBLIC_TOPICS = INPUT_TOPICS + REFERENCE_TOPICS + OUTPUT_TOPICS
FORMATS = FormatChecker()

# (schemas/ file, model, example) of every published record.
RECORDS: list[tuple[str, type[BaseModel], dict[str, Any]]] = [
    *((f"events/{t}.json", EVENT_MODELS[t], EVENT_EXAMPLES[t]) for t in sorted(EVENT_MODELS)),
    *((f"reference/{kind}.json", model, REFERENCE_EXAMPLES[kind])
      for kind, (_topic, model) in sorted(REFERENCE_MODELS.items())),
    ("kpi-update.json", KpiUpdate, KPI_UPDATE_EXAMPLE),
]  # fmt: skip


def load_schema(relative: str) -> dict[str, Any]:
    schema: dict[str, Any] = orjson.loads((ROOT / relative).read_bytes())
    return schema


def validator(relative: str) -> Draft202012Validator:
    schema = load_schema(relative)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    return document


def pointer(document: dict[str, Any], ref: str) -> Any:
    """The node of ``document`` at a local ``#/a/b`` reference (RFC 6901 escapes)."""
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_date_times_are_format_checked() -> None:
    # "date-time" is only asserted when rfc3339-validator is installed (a dev dependency);
    # without it a naive timestamp would pass the JSON Schemas silently.
    assert "date-time" in FORMATS.checkers, "pip install rfc3339-validator"
    assert not FORMATS.conforms("2026-03-16T10:20:00", "date-time")
    assert FORMATS.conforms("2026-03-16T10:20:00+01:00", "date-time")


# --- (a) the committed files are the generated ones ---


def test_committed_schemas_match_the_models() -> None:
    problems = drift(ROOT)
    assert not problems, (
        "schemas/ drifted from streams/contracts: "
        + "; ".join(f"schemas/{p}" for p in problems)
        + ". Run `salespulse schemas` and commit schemas/."
    )


def test_generation_is_deterministic() -> None:
    first, second = generate(), generate()
    assert first == second
    for relative, text in first.items():
        assert text.endswith("\n"), relative
        assert not text.endswith("\n\n"), relative
        if relative.endswith(".json"):
            again = orjson.dumps(
                orjson.loads(text), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
            )
            assert text == again.decode() + "\n", f"{relative}: keys are not sorted"


def test_drift_names_missing_changed_and_stale_files(tmp_path: Path) -> None:
    write(tmp_path)
    assert drift(tmp_path) == []
    (tmp_path / "events" / "order.placed.json").write_text("{}\n")
    (tmp_path / "reference" / "regions.json").write_text("{}\n")
    (tmp_path / "kpi-update.json").unlink()
    assert drift(tmp_path) == [
        "events/order.placed.json: differs",
        "kpi-update.json: missing",
        "reference/regions.json: not generated (stale)",
    ]
    write(tmp_path)
    assert drift(tmp_path) == []
    assert not (tmp_path / "reference" / "regions.json").exists()


def test_run_schemas_checks_then_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "schemas"
    assert run_schemas(check=True, root=root) == 1
    out = capsys.readouterr().out
    assert "schemas/events/order.placed.json: missing" in out
    assert "run `salespulse schemas`" in out

    assert run_schemas(check=False, root=root) == 0
    out = capsys.readouterr().out
    assert "wrote schemas/asyncapi.yaml" in out
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*")) == sorted(generate())

    assert run_schemas(check=True, root=root) == 0
    assert "matches" in capsys.readouterr().out


# --- (b) every example validates against its model and its JSON Schema, both ways ---


@pytest.mark.parametrize(("relative", "model", "example"), RECORDS, ids=[r[0] for r in RECORDS])
def test_example_validates_everywhere(
    relative: str, model: type[BaseModel], example: dict[str, Any]
) -> None:
    record = model.model_validate(example)
    check = validator(relative)
    check.validate(example)
    check.validate(record.model_dump(mode="json"))  # what a producer in Python would send
    assert model.model_validate(record.model_dump(mode="json")) == record


@pytest.mark.parametrize(("relative", "model", "example"), RECORDS, ids=[r[0] for r in RECORDS])
def test_json_schema_is_published_with_its_id_and_example(
    relative: str, model: type[BaseModel], example: dict[str, Any]
) -> None:
    schema = load_schema(relative)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == BASE_ID + relative
    assert schema["title"] == model.__name__
    assert schema["examples"] == [example]


def test_every_event_type_has_an_example() -> None:
    assert set(EVENT_EXAMPLES) == set(EVENT_MODELS)
    assert set(REFERENCE_EXAMPLES) == set(REFERENCE_MODELS)
    for event_type, example in EVENT_EXAMPLES.items():
        assert example["type"] == event_type


@pytest.mark.parametrize("amount", ["1E+3", "-0.00"])
def test_round_trip_of_odd_amounts_matches_the_schema(amount: str) -> None:
    event = {**EVENT_EXAMPLES["quote.sent"], "amount": amount}
    record = EVENT_MODELS["quote.sent"].model_validate(event)
    validator("events/quote.sent.json").validate(record.model_dump(mode="json"))


# --- (c) the AsyncAPI document ---


def test_asyncapi_document_header() -> None:
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "salespulse"
    pyproject = tomllib.loads((schemas_dir().parent / "pyproject.toml").read_text())
    assert document["info"]["version"] == pyproject["project"]["version"]
    assert {"host": "127.0.0.1:9092", "protocol": "kafka"}.items() <= (
        document["servers"]["local"].items()
    )


def test_asyncapi_has_a_channel_per_public_topic() -> None:
    document = asyncapi()
    channels = document["channels"]
    assert set(channels) == {spec.name for spec in PUBLIC_TOPICS}
    assert not {spec.name for spec in INTERNAL_TOPICS} & set(channels)
    for spec in PUBLIC_TOPICS:
        channel = channels[spec.name]
        assert channel["address"] == spec.name
        kafka = channel["bindings"]["kafka"]
        assert kafka["topicConfiguration"]["cleanup.policy"] == (
            ["compact"] if spec.compacted else ["delete"]
        ), spec.name
        assert kafka["partitions"] == DEFAULT_PARTITIONS
        assert "SALESPULSE_TOPIC_PARTITIONS" in channel["description"]
        for ref in channel["messages"].values():
            message = pointer(document, ref["$ref"])
            assert spec.key in message["bindings"]["kafka"]["key"]["description"], spec.name


def test_asyncapi_operations_say_what_the_worker_consumes_and_publishes() -> None:
    document = asyncapi()
    actions: dict[str, list[str]] = {}
    for operation in document["operations"].values():
        channel = pointer(document, operation["channel"]["$ref"])
        actions.setdefault(channel["address"], []).append(operation["action"])
        for ref in operation["messages"]:
            assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
    expected = {spec.name: ["receive"] for spec in INPUT_TOPICS + REFERENCE_TOPICS}
    expected |= {spec.name: ["send"] for spec in OUTPUT_TOPICS}
    assert actions == expected


def test_every_event_type_is_a_message_of_its_topic() -> None:
    document = asyncapi()
    on: dict[str, set[str]] = {}
    for name, channel in document["channels"].items():
        for ref in channel["messages"].values():
            on.setdefault(pointer(document, ref["$ref"])["name"], set()).add(name)
    for event_type, topic in TOPIC_OF_TYPE.items():
        assert on.get(event_type) == {topic}, f"{event_type} belongs on {topic}, not {on}"


def test_every_asyncapi_reference_resolves() -> None:
    document = asyncapi()
    found = list(refs(document))
    assert found
    for ref in found:
        if ref.startswith("#/"):
            pointer(document, ref)  # KeyError if it does not resolve
            continue
        path = (ROOT / ref).resolve()
        assert path.is_file(), f"{ref} (from asyncapi.yaml) is not a file of schemas/"
        assert load_schema(path.relative_to(ROOT).as_posix())["$id"] == BASE_ID + ref.removeprefix(
            "./"
        )


def test_examples_validate_through_the_asyncapi_document() -> None:
    document = asyncapi()
    canonical = {
        **EVENT_EXAMPLES,
        **{f"ref.{kind}": example for kind, example in REFERENCE_EXAMPLES.items()},
        "kpi.update": KPI_UPDATE_EXAMPLE,
    }
    validated = set()
    for channel in document["channels"].values():
        for ref in channel["messages"].values():
            message = pointer(document, ref["$ref"])
            if message["name"] == "dead.letter":
                continue  # raw bytes: described, no schema (see the next test)
            if message["name"] == "late.event":  # any input event: its own type's schema
                for example in message["examples"]:
                    schema = ROOT / "events" / f"{example['payload']['type']}.json"
                    Draft202012Validator(
                        orjson.loads(schema.read_bytes()), format_checker=FORMATS
                    ).validate(example["payload"])
                continue
            target = message["payload"]["$ref"]
            check = Draft202012Validator(
                orjson.loads((ROOT / target).read_bytes()), format_checker=FORMATS
            )
            check.validate(canonical[message["name"]])
            assert message["examples"], message["name"]
            for example in message["examples"]:
                check.validate(example["payload"])
            validated.add(message["name"])
    assert validated == set(canonical)


def test_dead_letter_message_documents_its_headers() -> None:
    document = asyncapi()
    (ref,) = document["channels"]["sales.deadletter"]["messages"].values()
    message = pointer(document, ref["$ref"])
    headers = message["headers"]
    assert set(headers["required"]) == {
        "reason", "detail", "source_topic", "source_partition", "source_offset",
    }  # fmt: skip
    assert headers["properties"]["reason"]["enum"] == [
        *(r.value for r in DeadLetterReason), STAGE_ERROR,
    ]  # fmt: skip
    assert "$ref" not in message["payload"]
    assert "original" in message["payload"]["description"]
    check = Draft202012Validator(headers, format_checker=FORMATS)
    for example in message["examples"]:
        check.validate(example["headers"])
    assert not check.is_valid({**message["examples"][0]["headers"], "reason": "bad_mood"})
    # A stage's dead letter: the same headers (backward compatible), and three more.
    stage_error = {**message["examples"][0]["headers"], "reason": STAGE_ERROR}
    check.validate(
        {**stage_error, "stage": "entity-stage", "error": "KeyError: 'x'", "role": "lead"}
    )
    assert not check.is_valid({**stage_error, "stage": "ingest"})


# --- (d) the JSON Schemas are as strict as the models ---


def changed(event_type: str, drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(EVENT_EXAMPLES[event_type])
    for name in drop:
        del event[name]
    event.update(changes)
    return event


def line(**changes: Any) -> list[dict[str, Any]]:
    return [{"product_id": "PLS-PRO", "quantity": 4, "unit_price": "1150.00", **changes}]


# Rejected by the model AND by the JSON Schema. A naive time fails the schema's "date-time"
# format only when the validator asserts formats (as here, and as it should for producers).
STRICT_BOTH: list[tuple[str, str, type[BaseModel], dict[str, Any]]] = [
    ("naive occurred_at", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", occurred_at="2026-03-16T10:20:00")),
    ("date-only occurred_at", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", occurred_at="2026-03-16")),
    ("lowercase currency", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", currency="eur")),
    ("amount with 3 decimals", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", amount="4600.001")),
    ("negative amount", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", amount="-1.00")),
    ("amount over 18 digits", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", amount="12345678901234567.00")),
    ("missing rep", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", drop=("rep_id",))),
    ("other type", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", type="order.won")),
    ("id with spaces around", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", order_id=" order-1201")),
    ("empty id", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", account_id="")),
    ("zero quantity", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", lines=line(quantity=0))),
    ("unit price with 5 decimals", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", lines=line(unit_price="1.00001"))),
    ("future schema version", "events/order.placed.json", EVENT_MODELS["order.placed"], changed("order.placed", schema_version=2)),
    ("unknown channel", "events/lead.created.json", EVENT_MODELS["lead.created"], changed("lead.created", channel="tv")),
    ("unknown call outcome", "events/call.logged.json", EVENT_MODELS["call.logged"], changed("call.logged", outcome="busy")),
    ("call over a day", "events/call.logged.json", EVENT_MODELS["call.logged"], changed("call.logged", duration_s=86_401)),
    ("nps score 11", "events/nps.answered.json", EVENT_MODELS["nps.answered"], changed("nps.answered", score=11)),
    ("spend period not a date", "events/spend.recorded.json", EVENT_MODELS["spend.recorded"], changed("spend.recorded", period={"start": "2026-03-02", "end": "March 8"})),
    ("target month 13", "reference/targets.json", REFERENCE_MODELS["targets"][1], {**REFERENCE_EXAMPLES["targets"], "period": "2026-13"}),
    ("target scope region", "reference/targets.json", REFERENCE_MODELS["targets"][1], {**REFERENCE_EXAMPLES["targets"], "scope": "region"}),
    ("negative list price", "reference/products.json", REFERENCE_MODELS["products"][1], {**REFERENCE_EXAMPLES["products"], "list_price": "-5.00"}),
    ("naive computed_at", "kpi-update.json", KpiUpdate, {**KPI_UPDATE_EXAMPLE, "computed_at": "2026-03-16T10:20:01"}),
    ("negative revision", "kpi-update.json", KpiUpdate, {**KPI_UPDATE_EXAMPLE, "revision": -1}),
    ("unknown window kind", "kpi-update.json", KpiUpdate, {**KPI_UPDATE_EXAMPLE, "window": {**KPI_UPDATE_EXAMPLE["window"], "kind": "year"}}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "relative", "model", "record"), STRICT_BOTH, ids=[c[0] for c in STRICT_BOTH]
)
def test_json_schema_is_as_strict_as_the_model(
    label: str, relative: str, model: type[BaseModel], record: dict[str, Any]
) -> None:
    assert not validator(relative).is_valid(record), f"the JSON Schema accepted a {label}"
    with pytest.raises(ValidationError):
        model.model_validate(record)


# Rejected by the model only: rules between fields (model validators) and the ISO 4217 list
# are not in the generated JSON Schemas, so a producer that validates against schemas/ can still
# be dead-lettered for these (reason invalid_value). JSON Schema could say the first four
# (anyOf/required, dependentRequired, an enum of codes) if the models declared them; "end not
# before start" between two dates it cannot say at all.
MODEL_ONLY: list[tuple[str, str, dict[str, Any]]] = [
    ("call without lead or account", "call.logged", changed("call.logged", drop=("lead_id", "account_id"))),
    ("meeting without lead or account", "meeting.held", changed("meeting.held", drop=("account_id",))),
    ("opportunity amount without currency", "opportunity.opened", changed("opportunity.opened", drop=("currency",))),
    ("cancellation without order or account", "order.cancelled", changed("order.cancelled", drop=("order_id", "account_id"))),
    ("currency not in ISO 4217", "order.placed", changed("order.placed", currency="XYZ")),
    ("spend period ending before it starts", "spend.recorded", changed("spend.recorded", period={"start": "2026-03-08", "end": "2026-03-02"})),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "event_type", "event"), MODEL_ONLY, ids=[c[0] for c in MODEL_ONLY]
)
def test_the_model_rejects_what_the_json_schema_cannot_say(
    label: str, event_type: str, event: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        EVENT_MODELS[event_type].model_validate(event)


def test_the_worker_also_accepts_json_numbers_for_amounts() -> None:
    # The published (serialization) form of money is a decimal string; the worker is lenient
    # and also takes a JSON number, as schemas/README.md says.
    event = changed("quote.sent", amount=4600.5)
    assert not validator("events/quote.sent.json").is_valid(event)
    record = EVENT_MODELS["quote.sent"].model_validate(event)
    validator("events/quote.sent.json").validate(record.model_dump(mode="json"))


def test_readme_names_every_dead_letter_reason() -> None:
    # schemas/README.md is written by hand: keep its list of reasons complete.
    readme = (ROOT / "README.md").read_text()
    missing = [r.value for r in DeadLetterReason if f"`{r.value}`" not in readme]
    assert not missing, f"schemas/README.md does not name the dead-letter reasons {missing}"
