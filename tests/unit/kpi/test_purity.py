"""streams/kpi is the KPI maths: pure, so it imports no I/O, no Faust and no other stage."""

from __future__ import annotations

import ast
from pathlib import Path

import streams.kpi

KPI = Path(streams.kpi.__file__).parent
# What the maths may import from the package: itself and the data contracts it computes on.
ALLOWED = ("streams.kpi", "streams.contracts")
FORBIDDEN_TOP = {"faust", "aiokafka", "redis", "prometheus_client", "mode"}


def imports_of(path: Path) -> list[str]:
    """Absolute names of what ``path`` imports (relative imports resolved from streams.kpi)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ["streams", "kpi"][: 3 - node.level] if node.level else []
            names.append(".".join([*base, *([node.module] if node.module else [])]))
    return names


def allowed(name: str) -> bool:
    inside = name == "streams" or name.startswith("streams.")
    if inside:
        return any(name == a or name.startswith(a + ".") for a in ALLOWED)
    return name.split(".")[0] not in FORBIDDEN_TOP


def test_the_kpi_maths_imports_only_itself_the_contracts_and_no_io() -> None:
    modules = sorted(KPI.glob("*.py"))
    assert len(modules) >= 8, f"expected the KPI modules under {KPI}, found {modules}"
    wrong = [
        f"{path.name}: {name}" for path in modules for name in imports_of(path) if not allowed(name)
    ]
    assert not wrong, f"streams/kpi must stay pure; move these imports out: {wrong}"
