"""streams.serving.redis_batch.chunks: commands packed into script calls in order, a long
command split between calls with its pairs whole, no call over ``CHUNK_ARGS`` arguments
(what Redis does with them: tests/integration/test_redis_batch.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.serving.redis_batch import CHUNK_ARGS, Command, chunks, packed


def unpacked(calls: list[tuple[list[str], list[Any]]]) -> list[tuple[str, str, list[Any]]]:
    out = []
    for keys, args in calls:
        at = 0
        while at < len(args):
            op, key, count = args[at], keys[args[at + 1] - 1], args[at + 2]
            out.append((op, key, args[at + 3 : at + 3 + count]))
            at += 3 + count
    return out


def test_commands_come_back_in_order_and_long_ones_split_in_whole_pairs() -> None:
    long_pairs = [x for i in range(CHUNK_ARGS) for x in (f"f{i}", f"v{i}")]
    commands: list[Command] = [
        ("hset", "a", ["f", "1"]),
        ("zadd", "b", long_pairs),
        ("hdel", "a", ["f"]),
        ("zrem", "b", [f"f{i}" for i in range(CHUNK_ARGS + 1)]),
        ("hset", "a", []),  # nothing to write: no command
    ]
    calls = chunks(commands)
    assert len(calls) >= 3
    assert all(len(args) <= CHUNK_ARGS for _, args in calls)
    parts = unpacked(calls)
    for op, _, items in parts:
        assert op in ("hdel", "zrem") or len(items) % 2 == 0, "a pair was split"
    merged: list[tuple[str, str, list[Any]]] = []
    for op, key, items in parts:  # consecutive parts of one command joined back
        if merged and merged[-1][:2] == (op, key):
            merged[-1][2].extend(items)
        else:
            merged.append((op, key, list(items)))
    assert merged == [(op, key, list(items)) for op, key, items in commands if items]


def test_an_unknown_command_or_an_odd_pair_list_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        chunks([("del", "a", ["x"])])
    with pytest.raises(ValueError, match="needs pairs"):
        chunks([("hset", "a", ["f"])])


def test_a_call_is_one_json_array_of_its_arguments_bytes_as_text() -> None:
    ((keys, args),) = chunks(
        [("hset", "a", ["f", b'{"v": "\xc3\xa9"}']), ("zadd", "b", ["1.5", "m"])]
    )
    assert keys == ["a", "b"]
    assert orjson.loads(packed(args)) == ["hset", 1, 2, "f", '{"v": "é"}', "zadd", 2, 2, "1.5", "m"]
    with pytest.raises(TypeError, match="not JSON serializable"):
        packed([object()])
