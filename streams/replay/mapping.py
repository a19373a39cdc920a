"""The mapping file of ``salespulse replay``: which records each export row becomes.

A small, explicit language, no eval:

- a template string: ``"{column}"`` is the column's value (``""`` means absent); text around
  placeholders is kept (``"ord-{id}"``); a constant of the mapping is ``{const.NAME}``;
- a lookup: ``{lookup: {value: result, ...}, from: TEMPLATE, default: VALUE}``;
- lists and objects of those, rendered item by item; other YAML values are constants.

Rows are normalised first (``normalise: {column: {raw: fixed}}``), e.g. typos and aliases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams.contracts.events import EVENT_MODELS
from streams.contracts.reference import REFERENCE_MODELS


class MappingError(ValueError):
    """The mapping file, or an export read with it, is not usable; the message says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordRule(_Strict):
    """One record made from a row: a reference record or an event."""

    reference: str | None = None
    event: str | None = None
    when: dict[str, str | list[str]] = Field(default_factory=dict)
    require: list[str] = Field(default_factory=list)
    id: str | None = Field(default=None, description="row identity, for the event id")
    occurred_at: str | None = None
    key: str | list[str] | None = None
    fields: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> RecordRule:
        if (self.reference is None) == (self.event is None):
            raise ValueError("a record is either `reference: KIND` or `event: TYPE`")
        if self.reference is not None and self.reference not in REFERENCE_MODELS:
            raise ValueError(
                f"unknown reference kind {self.reference!r}; known: {sorted(REFERENCE_MODELS)}"
            )
        if self.event is not None:
            if self.event not in EVENT_MODELS:
                raise ValueError(
                    f"unknown event type {self.event!r}; known: {sorted(EVENT_MODELS)}"
                )
            if self.id is None or self.occurred_at is None or self.key is None:
                raise ValueError(f"event {self.event}: `id`, `occurred_at` and `key` are required")
        return self

    @property
    def label(self) -> str:
        return self.event or f"ref.{self.reference}"


class Source(_Strict):
    """The records of the export files matching ``file`` (a glob, relative to the inputs)."""

    file: str
    format: Literal["csv", "jsonl"] | None = None
    normalise: dict[str, dict[str, str]] = Field(default_factory=dict)
    records: list[RecordRule]


class Mapping(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    constants: dict[str, str] = Field(default_factory=dict)
    sources: list[Source]


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; MappingError names the file and the problem."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: cannot read the mapping: {exc}") from exc
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise MappingError(f"{path}: invalid mapping: {problems}") from exc
