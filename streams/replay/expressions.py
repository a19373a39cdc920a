"""Render mapping expressions against one row (see streams.replay.mapping)."""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingABC
from typing import Any

from streams.replay.mapping import MappingError

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_. -]+)\}")


class Row:
    """One export row, with the mapping's constants, for rendering."""

    def __init__(self, values: MappingABC[str, Any], constants: MappingABC[str, str], where: str):
        self.values = values
        self.constants = constants
        self.where = where  # "file.csv line 12", for error messages

    def column(self, name: str) -> str:
        if name.startswith("const."):
            constant = name.removeprefix("const.")
            if constant not in self.constants:
                raise MappingError(f"unknown constant {constant!r} (used at {self.where})")
            return self.constants[constant]
        if name not in self.values:
            raise MappingError(
                f"{self.where}: no column {name!r}; columns are {', '.join(self.values)}"
            )
        value = self.values[name]
        return "" if value is None else str(value).strip()


def render_template(template: str, row: Row) -> str | None:
    """The template with its placeholders filled; None when a placeholder is empty."""
    empty = False

    def fill(match: re.Match[str]) -> str:
        nonlocal empty
        value = row.column(match.group(1))
        empty = empty or value == ""
        return value

    rendered = _PLACEHOLDER.sub(fill, template)
    return None if empty else rendered


def render(expression: Any, row: Row) -> Any:
    """Render any expression: template, lookup, list, object or constant."""
    if isinstance(expression, str):
        return render_template(expression, row)
    if isinstance(expression, dict) and "lookup" in expression:
        source = render_template(str(expression.get("from", "")), row)
        table = expression["lookup"]
        return table.get(source, expression.get("default")) if source is not None else None
    if isinstance(expression, dict):
        rendered = {k: render(v, row) for k, v in expression.items()}
        return {k: v for k, v in rendered.items() if v is not None}
    if isinstance(expression, list):
        return [item for item in (render(v, row) for v in expression) if item is not None]
    return expression


def first_present(templates: str | list[str], row: Row) -> str | None:
    """The first template of ``templates`` that renders to a value."""
    for template in [templates] if isinstance(templates, str) else templates:
        if (value := render_template(template, row)) is not None:
            return value
    return None
