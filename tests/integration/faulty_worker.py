"""A real ``salespulse worker`` with one fault planted by monkeypatching in its own process
(test_stage_errors.py): the product has no switch for it.

    python -m tests.integration.faulty_worker entity-stage MARKER
        the entity stage raises while computing the counts of an event of rep MARKER
        (its ``event`` role: the event's own counts);
    python -m tests.integration.faulty_worker publisher MARKER
        the publisher raises while merging a partial cell of the dimension key rep MARKER;
    python -m tests.integration.faulty_worker killed-before-changelog TABLE
        the worker dies (as kill -9) at the first flush that writes table TABLE, before it
        sends that flush's changelog records.

Everything else is the real worker: its settings come from the environment as usual.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from streams import cli
from streams.engine import entity_stage, publisher
from streams.engine.faust import tables


class PlantedFault(RuntimeError):
    """The bug this worker was given."""


def plant(stage: str, marker: str) -> None:
    if stage == "entity-stage":
        contribution = entity_stage.contribution

        def failing_contribution(role: str, items: Any, windows: Any) -> Any:
            if role == "event" and any(["rep", marker] in item["p"] for item in items):
                raise PlantedFault(f"planted in the entity stage for {marker}")
            return contribution(role, items, windows)

        entity_stage.contribution = failing_contribution  # type: ignore[assignment]
    elif stage == "publisher":
        on_partial = publisher.Publisher._on_partial

        def failing_on_partial(self: Any, q: int, o: int, cell: str, *args: Any) -> None:
            if cell.endswith(f"|rep|{marker}"):
                raise PlantedFault(f"planted in the publisher for {marker}")
            on_partial(self, q, o, cell, *args)

        publisher.Publisher._on_partial = failing_on_partial  # type: ignore[method-assign]
    elif stage == "killed-before-changelog":
        send = tables.Changelog.send

        async def dying_send(self: Any, sends: Any) -> None:
            if any(table.name == marker for table, *_ in self.records):
                os._exit(9)  # nothing after this point runs: no flush, no atexit
            await send(self, sends)

        tables.Changelog.send = dying_send  # type: ignore[method-assign]
    else:
        raise SystemExit(
            f"unknown stage {stage!r}: entity-stage, publisher or killed-before-changelog"
        )


if __name__ == "__main__":
    plant(sys.argv[1], sys.argv[2])
    sys.argv = [sys.argv[0], "worker"]
    sys.exit(cli.main(["worker"]))
