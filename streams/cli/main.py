"""The ``salespulse`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from streams.cli import kpi as kpi_command
from streams.connections.redis import RedisProblem
from streams.directories import UnusableDirectory, make_directory
from streams.replay import command as replay_command
from streams.settings import Settings
from streams.simulator import command as simulator_command
from streams.stack import StackError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="salespulse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    stack = commands.add_parser("stack", help="the local Kafka, Redis and Prometheus")
    stack.add_argument(
        "action",
        choices=["up", "down", "status", "fetch"],
        help="fetch: download the Kafka broker jars into the cache (up does it when needed)",
    )
    stack.add_argument(
        "--secure",
        action="store_true",
        help="up: Kafka's clients connect over SASL_SSL (a SCRAM user and a private CA, "
        "recorded with the stack so every command uses them)",
    )

    commands.add_parser("worker", help="run a Faust worker (start several to scale out)")

    sim = commands.add_parser("simulate", help="produce a believable sales floor's events")
    simulator_command.add_arguments(sim)

    kpi = commands.add_parser("kpi", help="one KPI for a window, by a dimension (from Redis)")
    kpi_command.add_arguments(kpi)

    replay = commands.add_parser(
        "replay", help="load CSV/JSONL exports through a mapping, or dumps of the topics"
    )
    replay_command.add_replay_arguments(replay)
    ref = commands.add_parser("ref", help="reference data")
    ref_actions = ref.add_subparsers(dest="ref_action", required=True)
    replay_command.add_ref_arguments(
        ref_actions.add_parser("load", help="load a reference CSV into ref.KIND")
    )

    schemas = commands.add_parser("schemas", help="regenerate schemas/ from the contracts")
    schemas.add_argument("--check", action="store_true", help="fail if schemas/ drifted")

    demo = commands.add_parser("demo", help="stack, worker and simulator; Ctrl-C stops all")
    demo.add_argument("--rate", type=float, default=20.0)
    demo.add_argument(
        "--incident", dest="incidents", action="append", default=[],
        type=simulator_command.incident_argument, metavar="NAME@AFTER[+LASTING]",
        help="a scripted incident of the simulator, e.g. conversion-dip@2m (see simulate)",
    )  # fmt: skip

    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"salespulse: invalid settings:\n{_problems(exc)}", file=sys.stderr)
        return 2
    try:
        for variable, directory in _directories_written(args, settings).items():
            make_directory(directory, variable)
        if args.command == "stack":
            from streams.cli import stack as stack_commands

            return stack_commands.run(args.action, settings, secure=args.secure)
        if args.command == "worker":
            from streams.cli.worker import run_worker

            run_worker(settings)
            return 0
        if args.command == "simulate":
            return simulator_command.run(settings, args)
        if args.command == "kpi":
            return kpi_command.run(settings, args)
        if args.command == "replay":
            return replay_command.run_replay(settings, args)
        if args.command == "ref":
            return replay_command.run_ref_load(settings, args)
        if args.command == "schemas":
            from streams.contracts.export import run_schemas

            return run_schemas(args.check)
        if args.command == "demo":
            from streams.cli.demo import run_demo

            return run_demo(settings, rate=args.rate, incidents=args.incidents)
    except (StackError, RedisProblem, UnusableDirectory) as exc:
        print(f"salespulse: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


def _directories_written(args: argparse.Namespace, settings: Settings) -> dict[str, Path]:
    """The directories ``args``' command writes in, by the setting that places each: the
    home for the stack's state and the worker's, an explicit data dir for the worker."""
    directories = {}
    if args.command in ("worker", "demo") or (args.command == "stack" and args.action == "up"):
        directories["SALESPULSE_HOME"] = settings.home
    if args.command == "worker" and settings.data_dir is not None:
        directories["SALESPULSE_DATA_DIR"] = settings.data_dir
    return directories


def _problems(exc: ValidationError) -> str:
    """One line per problem, each naming its variable (the model's checks name theirs)."""
    lines = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        where = "_".join(str(part) for part in error["loc"]).upper()
        lines.append(f"  SALESPULSE_{where}: {message}" if where else f"  {message}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
