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
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_the_kpi_maths_imports_only_itself_the_contracts_and_no_io() -> None:
    modules = sorted(KPI.glob("*.py"))
    assert len(modules) >= 8, f"expected the KPI modules under {KPI}, found {modules}"
    wrong = [
        f"{path.name}: {name}"
        for path in modules
        for name in imports_of(path)
        if (name.startswith("streams.") and not name.startswith(ALLOWED))
        or name.split(".")[0] in FORBIDDEN_TOP
    ]
    assert not wrong, f"streams/kpi must stay pure; move these imports out: {wrong}"
