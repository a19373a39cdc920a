"""The ``salespulse`` command and its subcommands (worker, stack, kpi, demo; replay and
simulate live with their packages)."""

from streams.cli.main import main

__all__ = ["main"]
