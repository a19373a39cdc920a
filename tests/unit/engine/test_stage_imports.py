"""The stages, the checkpoint and the table write-back are plain Python: importing any module
of ``streams/engine`` outside ``streams/engine/faust`` loads neither faust nor mode (faust's
service library). Faust glue lives in ``streams/engine/faust`` and is wired in ``streams.app``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import streams.engine

ENGINE = Path(streams.engine.__file__).parent
GLUE = ENGINE / "faust"


def engine_modules() -> list[str]:
    root = ENGINE.parent.parent
    names = []
    for path in sorted(ENGINE.rglob("*.py")):
        if GLUE in path.parents:
            continue
        parts = list(path.relative_to(root).with_suffix("").parts)
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_no_engine_module_outside_its_faust_folder_loads_faust() -> None:
    modules = engine_modules()
    assert {"streams.engine.entity_stage", "streams.engine.publisher"} <= set(modules), modules
    assert "streams.engine.faust.tables" not in modules
    probe = (
        "import importlib, sys\n"
        "loaded = {}\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    for top in ('faust', 'mode'):\n"
        "        if top in sys.modules:\n"
        "            loaded.setdefault(top, name)\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "{}", (
        f"loaded first by (library: engine module): {done.stdout.strip()}; move what needs "
        f"faust to streams/engine/faust and pass it in from streams.app"
    )
