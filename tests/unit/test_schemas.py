"""schemas/: committed files match the models; examples validate against model, JSON Schema
and the AsyncAPI document; the schemas are as strict as the models where JSON Schema can be."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from streams.contracts.events import EVENT_MODELS, TOPIC_OF_TYPE
from streams.contracts.examples import EVENT_EXAMPLES, KPI_UPDATE_EXAMPLE, REFERENCE_EXAMPLES
from streams.contracts.export import drift, generate, schemas_dir
from streams.contracts.kpi import KpiUpdate
from streams.contracts.reference import REFERENCE_MODELS
from streams.topics import INPUT_TOPICS, INTERNAL_TOPICS, OUTPUT_TOPICS, REFERENCE_TOPICS

ROOT = schemas_dir()
FORMATS = FormatChecker()


def validator(relative: str) -> Draft202012Validator:
    schema = orjson.loads((ROOT / relative).read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


def asyncapi() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "asyncapi.yaml").read_text()))


def test_committed_schemas_match_the_models() -> None:
    problems = drift(ROOT)
    assert not problems, f"schemas/ drifted ({problems}): run `salespulse schemas` and commit"


def test_drift_is_detected(tmp_path: Path) -> None:
    for relative, text in generate().items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert drift(tmp_path) == []
    (tmp_path / "events" / "order.placed.json").write_text("{}")
    (tmp_path / "events" / "order.renamed.json").write_text("{}")
    (tmp_path / "kpi-update.json").unlink()
    assert drift(tmp_path) == [
        "events/order.placed.json: differs",
        "events/order.renamed.json: no longer generated",
        "kpi-update.json: missing",
    ]


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_event_example_validates_everywhere(event_type: str) -> None:
    example = EVENT_EXAMPLES[event_type]
    model = EVENT_MODELS[event_type].model_validate(example)
    check = validator(f"events/{event_type}.json")
    check.validate(example)
    check.validate(model.model_dump(mode="json"))  # what the worker would re-emit


@pytest.mark.parametrize("kind", sorted(REFERENCE_MODELS))
def test_reference_example_validates_everywhere(kind: str) -> None:
    example = REFERENCE_EXAMPLES[kind]
    record = REFERENCE_MODELS[kind][1].model_validate(example)
    check = validator(f"reference/{kind}.json")
    check.validate(example)
    check.validate(record.model_dump(mode="json"))


def test_kpi_update_example_validates_everywhere() -> None:
    record = KpiUpdate.model_validate(KPI_UPDATE_EXAMPLE)
    validator("kpi-update.json").validate(KPI_UPDATE_EXAMPLE)
    validator("kpi-update.json").validate(record.model_dump(mode="json"))


def broken(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(EVENT_EXAMPLES["order.placed"])
    event.update(changes)
    return event


@pytest.mark.parametrize(
    ("label", "event"),
    [
        ("naive timestamp", broken(occurred_at="2026-03-16T10:20:00")),
        ("lowercase currency", broken(currency="eur")),
        ("3 decimal places", broken(amount="4600.001")),
        ("negative amount", broken(amount="-1.00")),
        ("missing rep", {k: v for k, v in broken().items() if k != "rep_id"}),
        ("other type", broken(type="order.won")),
        ("zero quantity", broken(lines=[{"product_id": "p", "quantity": 0, "unit_price": "1"}])),
    ],
)
def test_json_schema_is_as_strict_as_the_model(label: str, event: dict[str, Any]) -> None:
    errors = list(validator("events/order.placed.json").iter_errors(event))
    assert errors, f"the JSON Schema accepted an order with a {label}"
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError is a ValueError
        EVENT_MODELS["order.placed"].model_validate(event)


def test_asyncapi_documents_every_topic() -> None:
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    channels = document["channels"]
    public = INPUT_TOPICS + REFERENCE_TOPICS + OUTPUT_TOPICS
    assert set(channels) == {spec.name for spec in public}
    assert not {spec.name for spec in INTERNAL_TOPICS} & set(channels)
    for spec in public:
        channel = channels[spec.name]
        assert channel["address"] == spec.name
        policy = channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"]
        assert policy == (["compact"] if spec.compacted else ["delete"]), spec.name
        assert channel["bindings"]["kafka"]["partitions"] >= 1
    for event_type, topic in TOPIC_OF_TYPE.items():
        names = [
            document["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]["name"]
            for ref in channels[topic]["messages"].values()
        ]
        assert event_type in names, f"{event_type} is not a message of {topic}"
    actions = {op["channel"]["$ref"].rsplit("/", 1)[1]: op["action"]
               for op in document["operations"].values()}  # fmt: skip
    assert actions["sales.orders"] == "receive"
    assert actions["kpi.updates"] == "send"
    assert actions["sales.deadletter"] == "send"


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_asyncapi_reference_resolves_and_every_example_validates_through_it() -> None:
    document = asyncapi()
    examples = {**EVENT_EXAMPLES, **{f"ref.{k}": v for k, v in REFERENCE_EXAMPLES.items()},
                "kpi.update": KPI_UPDATE_EXAMPLE}  # fmt: skip
    validated = set()
    for channel in document["channels"].values():
        for ref in channel["messages"].values():
            message = resolve(document, ref["$ref"])
            payload = message["payload"]
            if "$ref" not in payload:
                assert message["name"] == "dead.letter"  # raw bytes: described, not a schema
                continue
            path = (ROOT / payload["$ref"]).resolve()
            assert path.is_file(), payload["$ref"]
            check = Draft202012Validator(orjson.loads(path.read_bytes()), format_checker=FORMATS)
            check.validate(examples[message["name"]])
            validated.add(message["name"])
    for operation in document["operations"].values():
        resolve(document, operation["channel"]["$ref"])
        for ref in operation["messages"]:
            resolve(document, ref["$ref"])
    assert validated == set(examples)
