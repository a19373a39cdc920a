"""streams.serving.redis_batch on a real Redis: the script calls leave Redis exactly as the
same commands sent one by one would, in order, with commands split across calls and across
Lua's unpack limit; the read model's flush reloads the script when Redis lost it."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from streams.connections.redis import RedisRefused, check_redis, redis_client
from streams.kpi.values import Context
from streams.serving import redis_batch
from streams.serving.read_model import ReadModel
from streams.settings import Settings


def _commands(prefix: str, seed: int) -> list[redis_batch.Command]:
    """Writes and removals mixed on few keys (order matters), some longer than a call."""
    rng = random.Random(seed)
    keys = [f"{prefix}h{i}" for i in range(5)]
    boards = [f"{prefix}z{i}" for i in range(3)]
    out: list[redis_batch.Command] = []
    for _ in range(400):
        size = rng.choice((1, 2, 3, 50, 6_000))  # 6,000 pairs: past a call and past unpack
        field = lambda: f"f{rng.randrange(8_000)}"  # noqa: E731
        match rng.randrange(4):
            case 0:
                pairs = [x for _ in range(size) for x in (field(), f"v{rng.random()}")]
                out.append(("hset", rng.choice(keys), pairs))
            case 1:
                out.append(("hdel", rng.choice(keys), [field() for _ in range(size)]))
            case 2:
                scores = [x for _ in range(size) for x in (repr(rng.uniform(-1e6, 1e6)), field())]
                out.append(("zadd", rng.choice(boards), scores))
            case _:
                out.append(("zrem", rng.choice(boards), [field() for _ in range(size)]))
    return out


async def _dump(client: Redis, prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    async for raw in client.scan_iter(match=f"{prefix}*"):
        key = raw.decode()
        name = key[len(prefix) :]
        if name.startswith("h"):
            found[name] = await client.hgetall(key)
        else:
            found[name] = await client.zrange(key, 0, -1, withscores=True)
    return found


async def test_the_script_leaves_redis_as_the_commands_one_by_one(settings: Settings) -> None:
    client = redis_client(settings)
    plain, batched = f"{settings.redis_prefix}plain:", f"{settings.redis_prefix}batched:"
    try:
        pipe = client.pipeline(transaction=False)
        for op, key, items in _commands(plain, seed=7):
            pipe.execute_command(op.upper(), key, *items)
        await pipe.execute()
        pipe = client.pipeline(transaction=False)
        script = client.register_script(redis_batch.SCRIPT)
        calls = await redis_batch.queue(pipe, script, _commands(batched, seed=7))
        await pipe.execute()
        expected, got = await _dump(client, plain), await _dump(client, batched)
    finally:
        await client.aclose()
    assert calls > 10, f"{calls} calls: the commands were not split, the test tests little"
    assert expected, "the plain commands wrote nothing: the test tests nothing"
    assert got == expected


async def test_the_read_model_writes_again_after_redis_lost_its_scripts(
    settings: Settings,
) -> None:
    client = redis_client(settings)
    model = ReadModel(client, settings.redis_prefix)
    ctx = Context(kind="day", dimension="rep")
    cell = "day|1772406000|rep|rep-a"
    name = f"{settings.redis_prefix}kpi:revenue:day:1772406000:rep"
    board = f"{settings.redis_prefix}lb:revenue:day:1772406000:rep"
    try:
        for revenue in ("120.5", "0.1"):
            model.stage_cell(
                cell, {}, {"final": False, "rev": 1}, ctx, {"revenue": [revenue, revenue, None]},
                partition=0,
            )  # fmt: skip
            assert await model.flush()
            assert await client.zscore(board, "rep-a") == float(revenue)
            await client.script_flush()  # as a Redis restarted: the next call must load it
        model.remove(cell, ["revenue"])
        assert await model.flush()
        assert not await client.exists(name, board)
    finally:
        await client.aclose()


async def test_a_user_that_may_not_run_the_script_is_refused_naming_the_acl(
    settings: Settings,
) -> None:
    """The worker's start check loads the script: an ACL user allowed every data command but
    not scripts is refused at start, with the rights to grant, not at every flush."""
    admin = redis_client(settings)
    user = f"u{settings.redis_prefix.strip(':')}"
    password = "s3cret-of-this-test"
    await admin.acl_setuser(
        user, enabled=True, passwords=[f"+{password}"], keys=["*"],
        commands=["+@hash", "+@sortedset", "+@string", "+ping"],
    )  # fmt: skip
    limited = settings.model_copy(
        update={"redis_username": user, "redis_password": SecretStr(password)}
    )
    try:
        await check_redis(limited)  # no script asked: the user is fine
        with pytest.raises(RedisRefused, match=r"NOPERM.*\+evalsha"):
            await check_redis(limited, (redis_batch.SCRIPT,))
    finally:
        await admin.acl_deluser(user)
        await admin.aclose()
