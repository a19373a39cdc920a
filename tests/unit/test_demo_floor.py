"""`salespulse demo` runs the simulator as ``demo_floor`` says (the wallboard test uses it)."""

from __future__ import annotations

import argparse
from datetime import timedelta

from streams.cli.demo import demo_floor, simulate_args
from streams.simulator import command
from streams.simulator.incidents import IncidentKind, IncidentSpec


def parsed(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert args[0] == "simulate"
    return parser.parse_args(args[1:])


def test_the_demo_floor_is_a_going_concern_on_the_always_open_clock() -> None:
    floor = demo_floor()
    assert floor.history, "without the quarter so far, pacing reads 0 % (issue 14)"
    assert floor.clock == "always-open"
    assert floor.rate == 20.0


def test_the_simulator_runs_exactly_the_demo_floor() -> None:
    dip = IncidentSpec(IncidentKind.CONVERSION_DIP, timedelta(minutes=2), timedelta(minutes=5))
    for floor in (demo_floor(), demo_floor(35.0, [dip])):
        assert command.options_from(parsed(simulate_args(floor))) == floor
