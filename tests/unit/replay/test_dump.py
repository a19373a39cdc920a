"""streams.replay.dump: a dump written by the tests' helper reads back byte for byte; each bad
line stops the replay naming the file, the line and what to fix."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from streams.replay.command import run_replay
from streams.replay.dump import DUMP_TOPICS, DumpError, Raw, dump_files, read_dump
from streams.settings import Settings
from streams.simulator.produce import Options
from tests.kpi_tools import floor_messages, write_dump

START = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _floor(count: int) -> list[tuple[str, bytes, bytes]]:
    options = Options(rate=5, clock="always-open", seed=5)
    reference, stream = floor_messages(Settings(), options, START, events=count)
    return reference + stream


def _read(path: Path) -> list[tuple[str, bytes | None, bytes]]:
    return [(m.topic, m.key, m.value) for m in read_dump(path)]


def test_a_floor_written_as_a_dump_reads_back_byte_for_byte(tmp_path: Path) -> None:
    messages = _floor(3000)
    invalid = [v for _, _, v in messages if not v.startswith(b"{")]
    assert invalid, "the floor has messages that are not JSON objects"
    path = tmp_path / "floor.jsonl"
    assert write_dump(path, messages) == len(messages)
    assert _read(path) == messages
    carried = sum(b'"value_b64"' in line for line in path.read_bytes().splitlines())
    assert carried >= len(invalid)


def test_awkward_keys_and_values_survive(tmp_path: Path) -> None:
    messages = [
        ("sales.orders", b"\xff\xfe", b'{"a": 1}'),  # a key not UTF-8; spaces in the JSON
        ("sales.calls", b"acc-1", b"\x00\x9c not json"),
        ("sales.calls", b"", b'["a list"]'),
        ("ref.reps", b"ana", orjson.dumps({"rep_id": "ana", "name": "Ana"})),
        ("sales.leads", b"lead-1", b'{"dup": 1, "dup": 2}'),
    ]
    path = tmp_path / "awkward.jsonl"
    write_dump(path, messages)
    assert _read(path) == messages


def test_values_and_keys_as_written_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "hand.jsonl"
    path.write_text(
        '{"topic": "sales.orders", "key": "acc-1", "value": {"type": "order.placed"}}\n'
        "\n"
        '{"topic": "ref.products", "value": {"product_id": "p"}}\n'
        '{"topic": "sales.calls", "key": null, "value_b64": "AAE="}\n'
    )
    assert list(read_dump(path)) == [
        Raw("sales.orders", b"acc-1", b'{"type":"order.placed"}', "order.placed"),
        Raw("ref.products", None, b'{"product_id":"p"}', "ref.products"),
        Raw("sales.calls", None, b"\x00\x01", "raw bytes"),
    ]


BAD_LINES = [
    ("not json at all", "not JSON"),
    ('["sales.orders"]', "expected a JSON object per line"),
    ('{"topic": "sales.orders", "key": "a", "vaule": {}}', "unknown fields ['vaule']"),
    ('{"key": "a", "value": {}}', 'no "topic"'),
    ('{"topic": "sales.order", "value": {}}', "unknown topic 'sales.order'"),
    ('{"topic": "sales.deadletter", "value": {}}', "unknown topic 'sales.deadletter'"),
    ('{"topic": "t1.sales.orders", "value": {}}', "without the deployment's prefix"),
    ('{"topic": "sales.orders", "key": "a"}', 'no "value"'),
    ('{"topic": "sales.orders", "value": "text"}', 'carry other bytes as "value_b64"'),
    ('{"topic": "sales.orders", "value": {}, "value_b64": "AA=="}', 'both "value"'),
    ('{"topic": "sales.orders", "value_b64": "not base64!"}', '"value_b64" is not base64'),
    ('{"topic": "sales.orders", "value_b64": 12}', "must be a base64 string"),
    ('{"topic": "sales.orders", "key": 12, "value": {}}', '"key" must be a string or null'),
    ('{"topic": "sales.orders", "key": "a", "key_b64": "YQ==", "value": {}}', 'both "key"'),
]


@pytest.mark.parametrize(("line", "problem"), BAD_LINES, ids=[p for _, p in BAD_LINES])
def test_a_bad_line_names_the_file_the_line_and_the_problem(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = tmp_path / "dump.jsonl"
    good = '{"topic": "sales.orders", "key": "a", "value": {}}'
    path.write_text(f"{good}\n{good}\n{line}\n{good}\n")
    with pytest.raises(DumpError) as caught:
        list(read_dump(path))
    assert str(caught.value).startswith(f"{path} line 3: ")
    assert problem in str(caught.value)


def test_the_allowed_topics_are_the_input_and_reference_ones() -> None:
    assert "sales.orders" in DUMP_TOPICS
    assert "ref.reps" in DUMP_TOPICS
    assert not {"sales.deadletter", "kpi.updates", "internal.cells"} & set(DUMP_TOPICS)


def test_dump_files_of_a_folder_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text("")
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert dump_files([tmp_path]) == [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    with pytest.raises(DumpError, match="no such file"):
        dump_files([tmp_path / "missing.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DumpError, match=r"no \*\.jsonl dump"):
        dump_files([tmp_path / "empty"])


def _args(*paths: Path) -> argparse.Namespace:
    return argparse.Namespace(mapping=None, dump=True, paths=list(paths), rate=None, dry_run=True)


def test_a_dry_run_counts_what_it_would_send(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = _floor(200)
    write_dump(tmp_path / "floor.jsonl", messages)
    assert run_replay(Settings(), _args(tmp_path / "floor.jsonl")) == 0
    out = capsys.readouterr().out
    assert f"({len(messages)} messages, in file order), dry run: nothing sent" in out
    total = next(line for line in out.splitlines() if line.split()[0] == "total")
    assert int(total.split()[-1]) == len(messages)


def test_a_bad_line_stops_the_replay_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dump(tmp_path / "a.jsonl", _floor(10))
    (tmp_path / "b.jsonl").write_text('{"topic": "sales.orders"}\n')
    args = _args(tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    args.dry_run = False  # no broker: it must stop before connecting
    assert run_replay(Settings(kafka_bootstrap="127.0.0.1:9"), args) == 2
    captured = capsys.readouterr()
    assert f'{tmp_path / "b.jsonl"} line 1: no "value"' in captured.err
    assert captured.out == ""
