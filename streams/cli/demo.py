"""``salespulse demo``: the stack, a worker and the simulator, with revenue printed live."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from streams.cli.stack import start_stack
from streams.connections.redis import redis_address, redis_client
from streams.serving.read_model import read_revenue_day
from streams.serving.web_access import bind_host
from streams.settings import Settings
from streams.simulator.incidents import IncidentSpec
from streams.simulator.produce import Options
from streams.stack import StackError, launcher
from streams.stack.process import ProcessRecord, current_process, log_tail, spawn
from streams.stack.state import StackRecord

REFRESH_S = 5.0
DEMO_RATE = 20.0


def demo_floor(rate: float = DEMO_RATE, incidents: Sequence[IncidentSpec] = ()) -> Options:
    """The demo's simulator: the always-open clock (a busy floor at any hour of the day or
    night) and a going concern (the quarter so far booked, deals in the pipeline), so that
    pacing and the win rate read as a real team's from the first minutes (README)."""
    return Options(rate=rate, clock="always-open", history=True, incidents=tuple(incidents))


def simulate_args(floor: Options) -> list[str]:
    """The ``salespulse simulate`` arguments that run ``floor`` (as ``demo_floor`` sets it)."""
    args = ["simulate", "--rate", str(floor.rate), "--clock", floor.clock]
    args += ["--history"] if floor.history else []
    for incident in floor.incidents:
        args += ["--incident", str(incident)]
    return args


def run_demo(
    settings: Settings, *, rate: float = DEMO_RATE, incidents: Sequence[IncidentSpec] = ()
) -> int:
    """Run until Ctrl-C, then stop everything this command started."""
    started_stack = None
    children: list[tuple[str, ProcessRecord, Path]] = []
    try:
        if StackRecord.load(settings.home) is None:
            started_stack = start_stack(settings, owner=current_process(), die_with_parent=True)
        settings = Settings()  # now reads the stack's addresses
        logs = settings.home / "demo"
        logs.mkdir(parents=True, exist_ok=True)
        for name, args in (
            ("worker", ["worker"]),
            ("simulator", simulate_args(demo_floor(rate, incidents))),
        ):
            log = logs / f"{name}.log"
            log.write_text("")
            process = spawn(
                [sys.executable, "-m", "streams.cli", *args], log, cwd=Path.cwd(),
                die_with_parent=True,
            )  # fmt: skip
            children.append((name, process, log))
        _print_where_to_look(settings, logs)
        asyncio.run(_watch(settings, children))
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        for _name, process, _log in reversed(children):
            process.stop()
        if started_stack is not None:
            launcher.down(started_stack)
    return 0


def _print_where_to_look(settings: Settings, logs: Path) -> None:
    stack = StackRecord.load(settings.home)
    prom = stack.services["prometheus"].address if stack else "?"
    web = f"http://{bind_host(settings)}:{settings.web_port}"
    tv = "?token=<SALESPULSE_WEB_TV_TOKEN>&" if settings.web_tv_token is not None else "?"
    guarded = " (Authorization: Bearer <SALESPULSE_WEB_TOKEN>)" if settings.web_token else ""
    print(
        "\nsalespulse demo is running (Ctrl-C stops everything it started):\n"
        f"  TV wallboard     {web}/tv{tv.rstrip('?&')}\n"
        f"  (en français)    {web}/tv{tv}lang=fr\n"
        f"  worker metrics   {web}/metrics{guarded}\n"
        f"  Prometheus       http://{prom}/graph?g0.expr=salespulse_events_total\n"
        f"  Redis            {redis_address(settings.redis_url)}"
        f"  (layout: docs/engine.md)\n"
        f"  KPI API          {web}/api/kpis{guarded}\n"
        f"  revenue table    .venv/bin/salespulse kpi revenue --window day --by rep\n"
        f"  logs             {logs}/\n"
        "Today's revenue per rep appears below within seconds and refreshes every "
        f"{REFRESH_S:.0f} s.\n",
        flush=True,
    )


async def _watch(settings: Settings, children: list[tuple[str, ProcessRecord, Path]]) -> None:
    client = redis_client(settings)
    started = time.monotonic()
    try:
        while True:
            await asyncio.sleep(REFRESH_S)
            for name, process, log in children:
                if not process.alive():
                    raise StackError(f"the demo's {name} stopped. Its log ({log}) ends with:\n"
                                     f"{log_tail(log)}")  # fmt: skip
            day = datetime.now(settings.zone).date()
            totals = await read_revenue_day(client, settings.redis_prefix, day, settings.zone)
            top = sorted(totals.items(), key=lambda kv: -kv[1])[:3]
            total = sum(totals.values(), Decimal(0))
            leaders = ", ".join(f"{rep} {amount:,.2f}" for rep, amount in top) or "waiting..."
            print(
                f"[{time.monotonic() - started:5.0f}s] revenue today {total:,.2f} "
                f"{settings.currency} across {len(totals)} reps | top: {leaders}",
                flush=True,
            )
    finally:
        await client.aclose()
