"""``salespulse kpi KPI --window month --at 2017-03 --by rep``: the API's answer as a table.

With ``--history --from 2016-10 --to 2017-12``: the series of ``GET /api/kpis/{kpi}/history``
(``streams.serving.history``) as a table, and with ``--csv PATH`` as CSV.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from redis.exceptions import RedisError

from streams.connections.redis import RedisProblem, check_redis, redis_address, redis_client
from streams.kpi.catalog import ALL_DIMENSIONS
from streams.serving.api import WINDOWS, QueryError, query
from streams.serving.history import FORMS, MAX_WINDOWS, history
from streams.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kpi", help="KPI id, e.g. revenue, win_rate (see GET /api/kpis)")
    parser.add_argument("--window", default="day", choices=WINDOWS)
    parser.add_argument(
        "--at", default=None, help="2017-03-15, 2017-03, 2017-Q1 or a time (default: now)"
    )
    parser.add_argument("--by", default="global", choices=ALL_DIMENSIONS)
    parser.add_argument("--key", default=None, help="one dimension key only")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    parser.add_argument(
        "--history", action="store_true",
        help=f"the series of windows from --from to --to (calendar windows, at most "
        f"{MAX_WINDOWS}), as GET /api/kpis/KPI/history answers it",
    )  # fmt: skip
    forms = "; ".join(f"{kind}: {form}" for kind, form in FORMS.items())
    parser.add_argument(
        "--from", dest="from_", default=None,
        help=f"first window of --history ({forms}; default: 11 windows before --to)",
    )  # fmt: skip
    parser.add_argument(
        "--to", default=None, help="last window of --history (default: the current one)"
    )
    parser.add_argument(
        "--csv", type=Path, default=None, metavar="PATH",
        help="--history: also write the series as CSV (one row per window and key)",
    )  # fmt: skip


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned lines: the first column left, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _cell(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.4f}".rstrip("0").rstrip(".") if x != int(x) else f"{x:,.0f}"
    return str(x)


def render(answer: dict[str, Any]) -> str:
    window = answer["window"]
    lines = [
        f"{answer['kpi']} ({answer['unit']}) by {answer['dimension']}, "
        f"{window['kind']} {window['start']} .. {window['end']} ({window['tz']})"
    ]
    rows = [("key", "value", "numerator", "denominator", "final", "revision")]
    rows += [
        (v["key"], _cell(v["value"]), _cell(v["numerator"]), _cell(v["denominator"]),
         "yes" if v["final"] else "no", str(v["revision"]))
        for v in answer["values"]
    ]  # fmt: skip
    if len(rows) == 1:
        lines.append("no value for this window yet.")
        return "\n".join(lines)
    lines += _table(rows)
    return "\n".join(lines)


def render_history(answer: dict[str, Any]) -> str:
    """One row per window; by a dimension (without --key), one column per key (values only)."""
    window = answer["window"]
    lines = [
        f"{answer['kpi']} ({answer['unit']}) by {answer['dimension']}"
        + (f" = {answer['key']}" if answer["key"] is not None else "")
        + f", {window['count']} {window['kind']} windows {window['from']} .. {window['to']} "
        f"({window['tz']})"
    ]
    points = answer["points"]
    keys = answer["keys"]
    if answer["dimension"] == "global" or answer["key"] is not None or not keys:
        rows: list[tuple[str, ...]] = [
            (window["kind"], "key", "value", "numerator", "denominator", "final", "revision")
        ]
        for point in points:
            rows += [
                (point["label"], v["key"], _cell(v["value"]), _cell(v["numerator"]),
                 _cell(v["denominator"]), "yes" if v["final"] else "no", str(v["revision"]))
                for v in point["values"]
            ] or [(point["label"], "-", "-", "-", "-", "-", "-")]  # fmt: skip
        lines += _table(rows)
    else:
        values = [{v["key"]: v["value"] for v in point["values"]} for point in points]
        rows = [(window["kind"], *keys)]
        rows += [
            (point["label"], *(_cell(row.get(key)) for key in keys))
            for point, row in zip(points, values, strict=True)
        ]
        lines += _table(rows)
        lines.append("values only: --csv PATH or --json for numerators, denominators, revisions")
    return "\n".join(lines)


CSV_COLUMNS = (
    "window", "start", "end", "key", "value", "numerator", "denominator", "final", "revision",
)  # fmt: skip


def write_csv(answer: dict[str, Any], path: Path) -> int:
    """One row per window and key, in window order; a window without any value is one row
    with an empty key (a regular axis). Returns the number of rows written."""
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for point in answer["points"]:
            head = (point["label"], point["start"], point["end"])
            for v in point["values"]:
                writer.writerow(
                    (*head, v["key"], *("" if v[n] is None else repr(v[n]) for n in
                     ("value", "numerator", "denominator")),
                     "true" if v["final"] else "false", v["revision"])
                )  # fmt: skip
                rows += 1
            if not point["values"]:
                writer.writerow((*head, "", "", "", "", "", ""))
                rows += 1
    return rows


async def _ask(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    await check_redis(settings)
    client = redis_client(settings)
    try:
        if args.history:
            return await history(
                client, settings, args.kpi, args.window, args.from_, args.to, args.by, args.key
            )
        return await query(client, settings, args.kpi, args.window, args.at, args.by, args.key)
    finally:
        await client.aclose()


def _misused(args: argparse.Namespace) -> str | None:
    if args.history and args.at is not None:
        return "--at names one window; with --history use --from and --to"
    if not args.history:
        given = [f"--{n}" for n, v in (("from", args.from_), ("to", args.to), ("csv", args.csv))
                 if v is not None]  # fmt: skip
        if given:
            return f"{', '.join(given)} go with --history"
    return None


def run(settings: Settings, args: argparse.Namespace) -> int:
    if problem := _misused(args):
        print(f"salespulse kpi: {problem}", file=sys.stderr)
        return 2
    try:
        answer = asyncio.run(_ask(settings, args))
    except (QueryError, RedisProblem) as exc:
        print(f"salespulse kpi: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(
            f"salespulse kpi: Redis at {redis_address(settings.redis_url)} failed ({exc}); "
            "start the stack with `salespulse stack up` or set SALESPULSE_REDIS_URL.",
            file=sys.stderr,
        )
        return 2
    if args.json:
        print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    elif args.history:
        print(render_history(answer))
    else:
        print(render(answer))
    if args.history and args.csv is not None:
        try:
            rows = write_csv(answer, args.csv)
        except OSError as exc:
            print(f"salespulse kpi: cannot write {args.csv}: {exc}", file=sys.stderr)
            return 2
        print(f"{rows} rows written to {args.csv}", file=sys.stderr)
    return 0
