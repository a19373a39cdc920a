"""``salespulse kpi KPI --window month --at 2017-03 --by rep``: the API's answer as a table."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streams.api import WINDOWS, QueryError, query
from streams.kpi.catalog import ALL_DIMENSIONS
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
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


async def _ask(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    client = aioredis.from_url(settings.redis_url)
    try:
        return await query(client, settings, args.kpi, args.window, args.at, args.by, args.key)
    finally:
        await client.aclose()


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        answer = asyncio.run(_ask(settings, args))
    except QueryError as exc:
        print(f"salespulse kpi: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(
            f"salespulse kpi: Redis at {settings.redis_url} failed ({exc}); start the stack "
            "with `salespulse stack up` or set SALESPULSE_REDIS_URL.",
            file=sys.stderr,
        )
        return 2
    print(
        orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() if args.json else render(answer)
    )
    return 0
