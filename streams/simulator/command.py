"""``salespulse simulate``: the command line of the sales-floor simulator."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiokafka.errors import KafkaError

from streams.settings import Settings
from streams.simulator.clock import parse_clock
from streams.simulator.incidents import IncidentKind, IncidentSpec, parse_incident
from streams.simulator.produce import Options, produce

N = TypeVar("N", int, float)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``salespulse simulate``."""
    parser.add_argument(
        "--reps", type=_positive_int, default=40,
        help="active sales reps, in teams of about 7 (default: 40)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=_positive_float, default=50.0,
        help="messages per second at the busiest hour, and the cap on sending (default: 50)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=7, help="same seed, same floor and funnel (default: 7)"
    )
    parser.add_argument(
        "--count", type=_positive_int, default=None,
        help="stop after this many event messages (reference records not counted)",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=_positive_float, default=None,
        help="stop after this many seconds",
    )  # fmt: skip
    parser.add_argument(
        "--clock", type=_clock, default="real", metavar="real|always-open|accelerated:N",
        help="real: event time is now, quiet out of business hours (default); always-open: "
        "event time is now, open around the clock every day; accelerated:N: N times "
        "faster than real time",
    )  # fmt: skip
    parser.add_argument(
        "--incident", dest="incidents", type=incident_argument, action="append",
        default=[], metavar="NAME@AFTER[+LASTING]",
        help=f"a scripted incident, e.g. conversion-dip@10m or silence@5m+2m; NAME is one of "
        f"{', '.join(kind.value for kind in IncidentKind)} (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--no-reference", dest="reference", action="store_false",
        help="do not send the reference records (ref.reps, ref.products, ...) first",
    )  # fmt: skip

    parser.add_argument(
        "--history", action="store_true",
        help="start as a going concern: the quarter so far booked, deals in the pipeline "
        "(pacing and win rate believable from the first minutes; see the README)",
    )  # fmt: skip


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        reps=args.reps,
        rate=args.rate,
        seed=args.seed,
        count=args.count,
        duration=args.duration,
        clock=args.clock,
        incidents=tuple(args.incidents),
        reference=args.reference,
        history=args.history,
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run the simulator; 0 when it stopped as asked (count, duration, Ctrl-C, SIGTERM)."""
    try:
        summary = asyncio.run(produce(settings, options_from(args), say=_say))
    except KafkaError as exc:
        print(f"simulate: Kafka at {settings.kafka_bootstrap} failed: {exc!r}", file=sys.stderr)
        return 2
    _say(summary.render())
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _clock(text: str) -> str:
    try:
        parse_clock(text, zone=ZoneInfo("UTC"), origin=datetime(2000, 1, 1, tzinfo=UTC))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive_int(text: str) -> int:
    return _positive(int, text)


def _positive_float(text: str) -> float:
    return _positive(float, text)


def _positive(convert: Callable[[str], N], text: str) -> N:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def incident_argument(text: str) -> IncidentSpec:
    """``--incident NAME@AFTER[+LASTING]`` (also ``salespulse demo --incident``)."""
    try:
        return parse_incident(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
