"""streams.serving.read_model: what a flush sends to Redis, from what was staged (a recording fake
pipeline: the staging logic alone; tests/integration reads the real Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError

from streams.kpi.values import Context
from streams.serving.read_model import ReadModel, closed_through

CELL = "minute|1795512000|global|all"
TEXTS = {"calls": ["3", "3", None]}


class Pipeline:
    def __init__(self, sent: list[tuple[Any, ...]], zsets: dict[str, dict[bytes, float]]) -> None:
        self.sent = sent
        self.zsets = zsets  # what the pipeline's ZADDs (gt) leave, once executed
        self.down = False
        self.zadds: list[tuple[str, dict, bool]] = []

    def hdel(self, key: str, *fields: str) -> None:
        self.sent.append(("hdel", key, *fields))

    def zrem(self, key: str, *fields: str) -> None:
        self.sent.append(("zrem", key, *fields))

    def hset(self, key: str, mapping: dict) -> None:
        self.sent.append(("hset", key, *sorted(mapping)))

    def zadd(self, key: str, members: dict, gt: bool = False) -> None:
        self.sent.append(("zadd", key, *sorted(members)))
        self.zadds.append((key, members, gt))

    def set(self, key: str, value: int) -> None:
        self.sent.append(("set", key))

    async def execute(self) -> None:
        if self.down:
            raise RedisConnectionError("Connection refused")
        for key, members, gt in self.zadds:
            zset = self.zsets.setdefault(key, {})
            for member, score in members.items():
                old = zset.get(member.encode())
                if not gt or old is None or score > old:
                    zset[member.encode()] = float(score)


class Script:
    """``streams.serving.redis_batch.SCRIPT`` read back into the commands it runs, as the
    pipeline above records them (the script itself runs on a real Redis in
    tests/integration/test_redis_batch.py)."""

    async def __call__(self, keys: list[str], args: list[Any], client: Pipeline) -> None:
        (blob,) = args  # one JSON array (redis_batch.packed)
        args = orjson.loads(blob)
        at = 0
        while at < len(args):
            op, key, count = args[at], keys[args[at + 1] - 1], args[at + 2]
            items = args[at + 3 : at + 3 + count]
            if op == "hset":
                client.sent.append(("hset", key, *sorted(items[0::2])))
            elif op == "zadd":
                client.sent.append(("zadd", key, *sorted(items[1::2])))
            else:
                client.sent.append((op, key, *items))
            at += 3 + count


class Client:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.zsets: dict[str, dict[bytes, float]] = {}
        self.down = False

    def register_script(self, script: str) -> Script:
        return Script()

    def pipeline(self, transaction: bool = False) -> Pipeline:
        pipeline = Pipeline(self.sent, self.zsets)
        pipeline.down = self.down
        return pipeline


def stage(model: ReadModel) -> None:
    stored = {"final": True, "rev": 2}
    model.stage_cell(
        CELL,
        {"calls": 3},
        stored,
        Context(kind="minute", dimension="global"),
        TEXTS,
        partition=0,
    )


def flushed(model: ReadModel, client: Client) -> list[tuple[Any, ...]]:
    assert asyncio.run(model.flush())
    return client.sent


def test_a_cell_closed_and_removed_in_one_flush_is_not_written_back() -> None:
    client = Client()
    model = ReadModel(client, "sp:")  # type: ignore[arg-type]
    stage(model)  # its final record
    model.remove(CELL, ["calls"])  # then past its retention, in the same flush
    sent = flushed(model, client)
    assert [op for op, *_ in sent] == ["hdel", "hdel", "zrem"]
    assert ("hdel", "sp:kpi:calls:minute:1795512000:global", "all") in sent


def test_a_cell_removed_then_written_again_is_written() -> None:
    client = Client()
    model = ReadModel(client, "sp:")  # type: ignore[arg-type]
    model.remove(CELL, ["calls"])
    stage(model)
    sent = flushed(model, client)
    ops = [op for op, *_ in sent]
    assert ops[:3] == ["hdel", "hdel", "zrem"]
    assert ("hset", "sp:kpi:calls:minute:1795512000:global", "all") in sent[3:]
    assert not model.hashes  # nothing left staged for the next flush


def test_a_partition_is_marked_complete_after_its_values_and_again_after_a_failure() -> None:
    client = Client()
    model = ReadModel(client, "sp:")  # type: ignore[arg-type]
    stage(model)
    model.complete(3)
    client.down = True  # Redis restarting: nothing written, everything kept
    assert not asyncio.run(model.flush())
    client.down, client.sent[:] = False, []
    sent = flushed(model, client)
    assert sent[-1] == ("set", "sp:complete:3"), sent
    assert ("hset", "sp:kpi:calls:minute:1795512000:global", "all") in sent[:-1]
    client.sent[:] = []
    assert flushed(model, client) == []  # marked once


def test_a_revoked_partitions_writes_kept_after_a_failure_are_dropped_the_others_kept() -> None:
    client = Client()
    model = ReadModel(client, "sp:")  # type: ignore[arg-type]
    stored = {"final": False, "rev": 1}
    ctx = Context(kind="minute", dimension="rep")
    other = "minute|1795512000|rep|r2"
    model.stage_cell(CELL, {"calls": 3}, stored, ctx, TEXTS, partition=0)
    model.stage_cell(other, {"calls": 1}, stored, ctx, {"calls": ["1", "1", None]}, partition=1)
    model.complete(0)
    client.down = True
    assert not asyncio.run(model.flush())  # Redis down: everything kept for the next flush
    client.down = False
    client.sent.clear()
    model.drop({0}, ["calls"])  # a rebalance took partition 0 meanwhile
    sent = flushed(model, client)
    assert ("hset", "sp:cell:minute:1795512000:rep", "r2") in sent
    assert ("hset", "sp:kpi:calls:minute:1795512000:rep", "r2") in sent
    assert not [c for c in sent if "global" in c[1] or c[1].startswith("sp:complete")], sent


def test_a_key_whose_value_turns_null_leaves_the_leaderboard() -> None:
    """A rep's ratio ranked at one flush, null at the next (its denominator retracted): it
    leaves the sorted set instead of keeping its old score; ranked again when it has one."""
    client = Client()
    model = ReadModel(client, "sp:")  # type: ignore[arg-type]
    cell, board = "day|1795478400|rep|r7", "sp:lb:win_rate:day:1795478400:rep"
    ctx, stored = Context(kind="day", dimension="rep"), {"final": False, "rev": 1}

    def publish(value: str | None) -> list[tuple[Any, ...]]:
        texts = {"win_rate": [value, value and "1", value and "2"]}
        model.stage_cell(cell, {}, stored, ctx, texts, partition=0)
        client.sent[:] = []
        return [c for c in flushed(model, client) if c[1] == board]

    assert publish("0.5") == [("zadd", board, "r7")]
    assert publish(None) == [("zrem", board, "r7")]
    assert publish("0.25") == [("zadd", board, "r7")]


def test_each_partitions_stream_time_is_written_and_closed_through_is_the_smallest() -> None:
    """``<p>stream_time`` holds ``global`` (the newest) and each publisher partition's
    (``q<n>``): a window that is history has no values before it closes, so only the
    smallest says which windows are closed. A failed flush keeps them for the next."""
    client = Client()
    model = ReadModel(client, "sp:")  # type: ignore[arg-type]
    model.stream_time(5_000, 0)
    model.stream_time(9_000, 1)
    model.stream_time(4_000, 0)  # never back
    client.down = True
    assert not asyncio.run(model.flush())
    client.down = False
    assert asyncio.run(model.flush())
    scores = client.zsets["sp:stream_time"]
    assert scores == {b"global": 9_000.0, b"q0": 5_000.0, b"q1": 9_000.0}, scores
    assert closed_through(scores, 2) == 5_000
    assert closed_through(scores, 3) is None  # partition 2 has no stream time yet
