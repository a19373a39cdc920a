"""``salespulse replay`` and ``salespulse ref load``."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from streams.contracts.reference import REFERENCE_MODELS, reference_key
from streams.ingest.validate import Limits
from streams.replay.dump import DumpError, dump_files, read_dump
from streams.replay.mapping import MappingError, load_mapping
from streams.replay.produce import Summary, send_all
from streams.replay.sources import count_rows, detect_format
from streams.replay.transform import Output, Skip, files_of, in_replay_order, transform_file
from streams.settings import Settings


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--mapping", type=Path, help="the mapping YAML file of the exports")
    what.add_argument(
        "--dump", action="store_true",
        help="the PATHs are dumps of salespulse's own topics (JSONL, a Kafka message a line, "
        "see streams/replay/dump.py), sent as they are, in file order",
    )  # fmt: skip
    parser.add_argument(
        "paths", type=Path, nargs="+", help="export files or folders (dumps: a folder's *.jsonl)"
    )
    parser.add_argument("--rate", type=_positive, default=None, help="at most N records per second")
    parser.add_argument(
        "--dry-run", action="store_true", help="transform and summarise, send nothing"
    )


def add_ref_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=sorted(REFERENCE_MODELS))
    parser.add_argument(
        "file", type=Path, help="CSV whose columns are the record's fields (aliases: a;b)"
    )


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    if args.dump:
        return run_dump_replay(settings, args)
    try:
        mapping = load_mapping(args.mapping)
        planned = files_of(mapping, list(args.paths))
        total = sum(
            count_rows(path, detect_format(path, source.format)) for source, path in planned
        )
    except MappingError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    limits = Limits(settings.max_event_bytes, settings.currency, dict(settings.fx_rates))

    def items() -> list[Output | Skip]:
        # Held in memory to be sent in event-time order (about 1 KB per record).
        return in_replay_order(
            item
            for source, path in planned
            for _line, item in transform_file(mapping, source, path, settings.zone, limits)
        )

    summary = Summary()
    title = f"replay of {mapping.name} ({total} rows, times in {settings.business_tz})"
    try:
        if args.dry_run:
            for item in items():
                summary.add(item)
            title += ", dry run: nothing sent"
        else:
            asyncio.run(send_all(settings, items(), args.rate, summary))
    except MappingError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"replay: Kafka at {settings.kafka_bootstrap} failed: {exc!r}", file=sys.stderr)
        return 2
    print(summary.render(title))
    return 0


def run_dump_replay(settings: Settings, args: argparse.Namespace) -> int:
    """``salespulse replay --dump``: every line checked first, then sent in file order."""
    try:
        files = dump_files(list(args.paths))
        messages = [message for path in files for message in read_dump(path)]
    except DumpError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    names = ", ".join(path.name for path in files)
    summary = Summary()
    title = f"replay of the dump {names} ({len(messages)} messages, in file order)"
    if args.dry_run:
        for message in messages:
            summary.add(message)
        title += ", dry run: nothing sent"
    else:
        try:
            asyncio.run(send_all(settings, messages, args.rate, summary))
        except KafkaError as exc:
            print(f"replay: Kafka at {settings.kafka_bootstrap} failed: {exc!r}", file=sys.stderr)
            return 2
    print(summary.render(title))
    return 0


def ref_outputs(kind: str, path: Path) -> Iterator[Output | Skip]:
    """The records of a reference CSV (columns = the model's fields)."""
    topic, model = REFERENCE_MODELS[kind]
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            fields: dict[str, Any] = {k: v.strip() for k, v in row.items() if k and v and v.strip()}
            if "aliases" in fields:
                fields["aliases"] = [a.strip() for a in fields["aliases"].split(";") if a.strip()]
            where = f"{path.name} line {reader.line_num}"
            try:
                record = model.model_validate(fields)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )
                yield Skip(where, f"ref.{kind}", problems)
                continue
            value = record.model_dump(mode="json")
            yield Output(topic, reference_key(record), value, f"ref.{kind}")


def run_ref_load(settings: Settings, args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"ref load: no file {args.file}", file=sys.stderr)
        return 2
    summary = Summary()
    try:
        asyncio.run(send_all(settings, ref_outputs(args.kind, args.file), None, summary))
    except KafkaError as exc:
        print(f"ref load: Kafka at {settings.kafka_bootstrap} failed: {exc!r}", file=sys.stderr)
        return 2
    print(summary.render(f"ref load {args.kind} from {args.file}"))
    return 1 if summary.skipped else 0


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value
