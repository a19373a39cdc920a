"""``python -m bench.run``: produce a backlog, then measure side by side in one run

1. a bare aiokafka consume-and-decode loop over it, and the full pipeline (one worker);
2. the worker's peak RSS;
3. produce -> Redis latency at a steady rate once the backlog is done.

The machine may be shared and noisy: read the ratio pipeline/bare more than the raw rates.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import sys
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from bench import bare, events, latency, report, stack
from bench.worker import Worker, WorkerFailed
from streams.settings import Settings
from streams.stack.errors import StackError


def say(line: str) -> None:
    print(line, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="backlog size (default 20000)")
    parser.add_argument("--latency-rate", type=float, default=200.0, help="events/s (default 200)")
    parser.add_argument(
        "--latency-seconds", type=float, default=30.0, help="0 skips it (default 30)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds allowed for each wait (default 600)"
    )
    return parser.parse_args(argv)


async def wait_stream_time(settings: Settings, worker: Worker, limit_s: float) -> None:
    client = aioredis.from_url(settings.redis_url)
    try:
        deadline = time.monotonic() + limit_s
        while not await client.exists(f"{settings.redis_prefix}stream_time"):
            worker.check_alive()
            if time.monotonic() > deadline:
                key = f"{settings.redis_prefix}stream_time"
                raise worker.fail(f"Redis key {key} did not appear in {limit_s:.0f} s")
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def measure(settings: Settings, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "settings": {
            "topic_partitions": settings.topic_partitions,
            "engine_flush_interval_s": settings.engine_flush_interval_s,
        },
    }
    say(f"producing {args.events:,} events (simulator: always-open clock, seed 7) ...")
    sent = await events.produce_backlog(settings, args.events, say)
    result["backlog"] = {
        "events": sent.events, "valid": sent.valid, "invalid": sent.invalid,
        "duplicates": sent.duplicates, "reference": sent.reference,
        "seconds": round(sent.seconds, 3),
    }  # fmt: skip
    say(f"  produced {sent.events:,} events + {sent.reference:,} reference records "
        f"in {sent.seconds:.1f} s")  # fmt: skip

    say("bare aiokafka consume+decode ...")
    count, seconds = await bare.consume_and_decode(
        settings, sent.event_topics, sent.events, say, args.timeout
    )
    bare_rate = count / seconds
    result["bare"] = {"events": count, "seconds": round(seconds, 3), "events_per_s": bare_rate}
    say(f"  {count:,} in {seconds:.2f} s: {bare_rate:,.0f} events/s")

    say(f"full pipeline: starting the worker (log {log}) ...")
    worker = Worker(settings, log)
    spawned = time.monotonic()
    worker.start()
    try:
        consuming = await worker.wait_consuming(args.timeout)
        say(f"  worker consuming {consuming - spawned:.1f} s after spawn; waiting for "
            f"{sent.expected_outcomes:,} messages applied or dead-lettered ...")  # fmt: skip
        done = await worker.wait_counted(sent.expected_outcomes, args.timeout, say)
        await wait_stream_time(settings, worker, args.timeout)
        seconds = done - consuming
        rate = sent.events / seconds
        result["pipeline"] = {
            "events": sent.events,
            "applied_or_dead_lettered": sent.expected_outcomes,
            "seconds": round(seconds, 3),
            "seconds_from_spawn": round(done - spawned, 3),
            "events_per_s": rate,
            "ratio_to_bare": rate / bare_rate,
        }
        say(f"  done in {seconds:.2f} s: {rate:,.0f} events/s (ratio {rate / bare_rate:.3f})")

        if args.latency_seconds > 0:
            say("latency: waiting for a probe order to reach Redis (pipeline caught up) ...")
            try:
                caught_up = await latency.probe(settings, worker.check_alive, args.timeout)
            except TimeoutError as exc:
                raise worker.fail(str(exc)) from exc
            result["probe_seconds"] = round(caught_up, 3)
            say(f"  probe seen in Redis after {caught_up:.2f} s")
            say(f"latency: order.placed at {args.latency_rate:g}/s for "
                f"{args.latency_seconds:g} s ...")  # fmt: skip
            lat = await latency.measure(
                settings, args.latency_rate, args.latency_seconds, say, worker.check_alive
            )
            result["latency"] = {
                "rate": args.latency_rate, "seconds": args.latency_seconds,
                "sent": lat.sent, "seen": len(lat.seen_ms), "missing": lat.missing,
                "p50_ms": lat.percentile(0.50), "p99_ms": lat.percentile(0.99),
                "max_ms": max(lat.seen_ms) if lat.seen_ms else None,
            }  # fmt: skip
        worker.check_alive()
        result["worker_peak_rss_mb"] = worker.peak_rss_mb()
    finally:
        await worker.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Retried produce errors right after topic creation (leaders being elected) are noise.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    say("starting an isolated Kafka + Redis ...")
    try:
        record = stack.start(lambda line: say(f"  {line}"))
    except StackError as exc:
        print(f"bench: could not start the stack: {exc}", file=sys.stderr)
        return 1
    try:
        settings = stack.bench_settings(record)
        report.RESULTS.mkdir(exist_ok=True)
        log = report.RESULTS / "worker.log"  # the last run's; kept after the run
        log.unlink(missing_ok=True)
        try:
            result = asyncio.run(measure(settings, args, log))
        except (WorkerFailed, TimeoutError) as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        result["worker_log"] = str(log)
    finally:
        say("stopping the stack ...")
        stack.stop(record)
    path = report.write(result)
    say("")
    for line in report.lines(result):
        say(line)
    say(f"(written to {path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
