"""``python -m bench.run``: what users live with, measured in one run on an isolated stack.

1. For each backlog size (default 20,000 and 200,000 simulator events), side by side: a bare
   aiokafka consume-and-decode loop, then the full pipeline in a fresh worker; the worker's
   peak RSS, and the time of one /metrics scrape once it is done.
2. Produce -> Redis latency at a steady rate (default 1,000 events/s) in a fresh worker.
3. The CRM export replayed into a fresh worker: seconds until every window is final.

Progress is read from the broker (the worker's committed offsets), never from the worker
(bench.progress). The machine may be shared and noisy: read the ratios more than the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench import bare, crm, events, latency, report, stack, summary
from bench.progress import POLL_S
from bench.worker import Worker, WorkerFailed
from streams.connections.redis import redis_client
from streams.settings import Settings
from streams.stack.errors import StackError
from streams.stack.state import StackRecord
from streams.topics import ensure_topics

DEFAULT_SIZES = (20_000, 200_000)


def say(line: str) -> None:
    print(line, flush=True)


def sizes(text: str) -> list[int]:
    try:
        out = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from exc
    if any(n <= 0 for n in out):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=sizes, default=list(DEFAULT_SIZES),
        help="backlog sizes, comma-separated; empty skips throughput (default 20000,200000)",
    )  # fmt: skip
    parser.add_argument(
        "--latency-rate", type=float, default=1000.0, help="events/s (default 1000)"
    )
    parser.add_argument(
        "--latency-seconds", type=float, default=30.0, help="0 skips latency (default 30)"
    )
    parser.add_argument(
        "--latency-reps", type=int, default=latency.REPS,
        help=f"reps the latency orders are spread over (default {latency.REPS})",
    )  # fmt: skip
    parser.add_argument("--skip-crm", action="store_true", help="skip the CRM replay")
    parser.add_argument(
        "--quiet-s", type=float, default=2.0,
        help="seconds the offsets must stay drained to call the pipeline done (default 2)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds allowed for each wait (default 900)"
    )
    return parser.parse_args(argv)


def fresh_settings(record: StackRecord) -> Settings:
    """Own topics, consumer group, Redis keys, web port and state for one worker."""
    return stack.bench_settings(record)


async def wait_stream_time(settings: Settings, worker: Worker, limit_s: float) -> bool:
    """``<prefix>stream_time`` exists in Redis (the publisher has flushed); reads Redis only."""
    client = redis_client(settings)
    try:
        deadline = time.monotonic() + limit_s
        while not await client.exists(f"{settings.redis_prefix}stream_time"):
            worker.check_alive()
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True
    finally:
        await client.aclose()


def dead_letters(page: bytes) -> dict[str, int]:
    """``salespulse_dead_letters_total`` of a /metrics page, by reason."""
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(page.decode()):
        if family.name == "salespulse_dead_letters":
            for sample in family.samples:
                if sample.name == "salespulse_dead_letters_total":
                    counts[sample.labels["reason"]] = int(sample.value)
    return counts


def check_dead_letters(counts: dict[str, int], invalid: int) -> None:
    """The pipeline dead-lettered the backlog's invalid messages, no more: otherwise its
    events/s would time the dead-letter path, not the pipeline."""
    say(f"  dead letters: {sum(counts.values()):,} (the backlog has {invalid:,} invalid)")
    if sum(counts.values()) != invalid:
        raise RuntimeError(
            f"the worker dead-lettered {sum(counts.values()):,} messages, by reason {counts}, "
            f"where the backlog has {invalid:,} invalid ones: the figures above time another "
            "path than the pipeline's (bench/events.py dates the backlog)"
        )


async def throughput(record: StackRecord, size: int, args: argparse.Namespace) -> dict[str, Any]:
    settings = fresh_settings(record)
    out: dict[str, Any] = {"app_id": settings.app_id, "topic_prefix": settings.topic_prefix}
    say(f"[{size:,} events] producing (simulator: always-open clock, seed 7) ...")
    sent = await events.produce_backlog(settings, size, say)
    out["backlog"] = {
        "events": sent.events, "valid": sent.valid, "invalid": sent.invalid,
        "duplicates": sent.duplicates, "reference": sent.reference,
        "seconds": round(sent.seconds, 3),
    }  # fmt: skip
    say(f"  produced {sent.events:,} events + {sent.reference:,} reference records "
        f"in {sent.seconds:.1f} s")  # fmt: skip

    say(f"[{size:,} events] bare aiokafka consume+decode ...")
    count, seconds = await bare.consume_and_decode(
        settings, sent.event_topics, sent.events, say, args.timeout
    )
    bare_rate = count / seconds
    out["bare"] = {"events": count, "seconds": round(seconds, 3), "events_per_s": bare_rate}
    say(f"  {count:,} in {seconds:.2f} s: {bare_rate:,.0f} events/s")

    log = args.logs / f"worker-{size}.log"
    out["worker_log"] = str(log)
    say(f"[{size:,} events] full pipeline: a fresh worker (log {log}) ...")
    worker = Worker(settings, log)
    await worker.start()
    spawned = time.monotonic()
    try:
        started = await worker.wait_started(args.timeout)
        say(f"  worker's group assigned {started - spawned:.1f} s after spawn; "
            "watching its committed offsets ...")  # fmt: skip
        done = await worker.wait_drained(args.timeout, say, sent.events, args.quiet_s)
        seconds = done - started
        rate = sent.events / seconds
        out["pipeline"] = {
            "events": sent.events,
            "seconds": round(seconds, 3),
            "seconds_from_spawn": round(done - spawned, 3),
            "events_per_s": rate,
            "ratio_to_bare": rate / bare_rate,
        }
        say(f"  drained in {seconds:.2f} s: {rate:,.0f} events/s (ratio {rate / bare_rate:.4f})")
        out["stream_time_in_redis"] = await wait_stream_time(settings, worker, 30.0)
        out["peak_rss_mb"] = worker.peak_rss_mb()
        try:
            ms, page = await worker.scrape()
            out["metrics_scrape"] = {"ms": ms, "bytes": len(page)}
            say(f"  peak RSS {out['peak_rss_mb']:,.0f} MB; one /metrics scrape: {ms:,.1f} ms "
                f"({len(page):,} bytes)")  # fmt: skip
        except Exception as exc:
            out["metrics_scrape"] = {"ms": None, "error": repr(exc)}
            page = None
        worker.check_alive()
        if page is not None:
            out["dead_letters"] = dead_letters(page)
            check_dead_letters(out["dead_letters"], sent.invalid)
    finally:
        await worker.stop()
    return out


async def latency_part(record: StackRecord, args: argparse.Namespace) -> dict[str, Any]:
    settings = fresh_settings(record)
    log = args.logs / "worker-latency.log"
    await ensure_topics(settings)
    say(f"[latency] a fresh worker (log {log}) ...")
    worker = Worker(settings, log)
    await worker.start()
    try:
        await worker.wait_started(args.timeout)
        say("  waiting for a probe order to reach Redis (the worker is ready) ...")
        try:
            probe = await latency.probe(settings, worker.check_alive, args.timeout)
        except TimeoutError as exc:
            raise worker.fail(str(exc)) from exc
        say(f"  probe seen in Redis after {probe:.2f} s")
        say(f"[latency] {latency.IDLE_ORDERS} orders one at a time on the idle floor ...")
        try:
            idle_ms = await latency.idle(settings, worker.check_alive, args.timeout)
        except TimeoutError as exc:
            raise worker.fail(str(exc)) from exc
        say(f"  idle: {', '.join(f'{ms:.0f}' for ms in idle_ms)} ms")
        say(
            f"[latency] order.placed at {args.latency_rate:g}/s for {args.latency_seconds:g} s, "
            f"{args.latency_reps} reps ..."
        )
        drain_timeout = 60.0
        cpu_before, wall_before = worker.cpu_seconds(), time.monotonic()
        lat = await latency.measure(
            settings, args.latency_rate, args.latency_seconds, say, worker.check_alive,
            drain_timeout=drain_timeout, reps=args.latency_reps,
        )  # fmt: skip
        cpu_after, wall_s = worker.cpu_seconds(), time.monotonic() - wall_before
        worker.check_alive()
        # The worker's CPU seconds per second while the orders flowed and drained: near 1
        # (its event loop is one thread) it was saturated, and latency grew with the queue.
        cpu_share = (
            None if cpu_before is None or cpu_after is None
            else round((cpu_after - cpu_before) / wall_s, 3)
        )  # fmt: skip
        return {
            "worker_log": str(log), "probe_seconds": round(probe, 3),
            "idle_ms": [round(ms, 1) for ms in idle_ms],
            "worker_cpu_s_per_s": cpu_share, "measured_s": round(wall_s, 1),
            "rate": args.latency_rate, "seconds": args.latency_seconds,
            "reps": args.latency_reps, "sent": lat.sent, "seen": len(lat.seen_ms),
            "missing": lat.missing,
            "drain_timeout_s": drain_timeout,
            "p50_ms": summary.percentile(lat.seen_ms, lat.missing, 0.50),
            "p99_ms": summary.percentile(lat.seen_ms, lat.missing, 0.99),
            "max_ms": max(lat.seen_ms) if lat.seen_ms else None,
            "peak_rss_mb": worker.peak_rss_mb(),
        }  # fmt: skip
    finally:
        await worker.stop()


async def crm_part(record: StackRecord, args: argparse.Namespace) -> dict[str, Any]:
    settings = crm.crm_settings(fresh_settings(record))
    log = args.logs / "worker-crm.log"
    replay_log = args.logs / "replay-crm.log"
    say(f"[crm] salespulse replay {crm.EXPORT} (log {replay_log}) ...")
    replay_s = await asyncio.to_thread(crm.replay, settings, replay_log, args.timeout)
    say(f"  replayed in {replay_s:.1f} s; a fresh worker (log {log}, retention_calendar_s "
        f"20 years, idle_close_s {crm.IDLE_CLOSE_S:g}) ...")  # fmt: skip
    worker = Worker(settings, log)
    await worker.start()
    spawned = time.monotonic()
    finality = crm.Finality(settings, quiet_s=max(args.quiet_s, 2.0))
    try:
        started = await worker.wait_started(args.timeout)
        say(f"  worker's group assigned {started - spawned:.1f} s after spawn; waiting until "
            "drained and every window in Redis is final ...")  # fmt: skip
        await worker.wait_drained(args.timeout, say, None, args.quiet_s, also=finality.settled)
        assert finality.since is not None
        seconds = finality.since - started
        worker.check_alive()
        out = {
            "export": str(crm.EXPORT), "worker_log": str(log), "replay_log": str(replay_log),
            "replay_send_seconds": round(replay_s, 3), "idle_close_s": crm.IDLE_CLOSE_S,
            "retention_calendar_s": crm.TWENTY_YEARS_S,
            "seconds": seconds, "seconds_from_spawn": round(finality.since - spawned, 3),
            "kpi_records": finality.records, "peak_rss_mb": worker.peak_rss_mb(),
        }  # fmt: skip
        say(f"  settled {seconds:.1f} s after the group's assignment "
            f"({finality.records:,} KPI records, all final); peak RSS "
            f"{out['peak_rss_mb'] or 0:,.0f} MB")  # fmt: skip
        return out
    finally:
        await finality.close()
        await worker.stop()


async def guarded(name: str, part: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """A part's result, or ``{"error": ...}``: one part failing does not lose the others."""
    try:
        return await part()
    except (WorkerFailed, TimeoutError, RuntimeError, OSError) as exc:
        say(f"bench: {name} failed: {str(exc).splitlines()[0] if str(exc) else repr(exc)}")
        return {"error": str(exc) or repr(exc), "traceback": traceback.format_exc()}


async def measure(record: StackRecord, args: argparse.Namespace) -> dict[str, Any]:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    args.logs = report.run_logs(started_at)
    say(f"worker and replay logs: {args.logs} (the {report.LOGS_KEPT} latest runs kept)")
    result: dict[str, Any] = {
        "started_at": started_at,
        "logs": str(args.logs),
        "host": platform.node(),
        "python": platform.python_version(),
        "options": {
            "sizes": args.sizes,
            "latency_rate": args.latency_rate,
            "latency_seconds": args.latency_seconds,
            "skip_crm": args.skip_crm,
            "quiet_s": args.quiet_s,
            "timeout": args.timeout,
        },
        "progress": "committed offsets of the worker's group vs end offsets, read from the "
        f"broker every {POLL_S:g} s (bench.progress); /metrics is not polled",
        "throughput": {},
    }
    probe = fresh_settings(record)
    result["settings"] = {
        "topic_partitions": probe.topic_partitions,
        "engine_flush_interval_s": probe.engine_flush_interval_s,
    }
    began = time.monotonic()
    for size in args.sizes:
        result["throughput"][str(size)] = await guarded(
            f"the {size:,}-event run", functools.partial(throughput, record, size, args)
        )
    if args.latency_seconds > 0:
        result["latency"] = await guarded("latency", lambda: latency_part(record, args))
    else:
        result["latency"] = {"skipped": "--latency-seconds 0"}
    reason = "--skip-crm" if args.skip_crm else crm.absent_reason()
    if reason is not None:
        result["crm"] = {"skipped": reason}
        if not args.skip_crm:
            say(f"[crm] skipped: {reason}")
    else:
        result["crm"] = await guarded("the CRM replay", lambda: crm_part(record, args))
    result["total_seconds"] = round(time.monotonic() - began, 1)
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
    report.RESULTS.mkdir(exist_ok=True)
    try:
        result = asyncio.run(measure(record, args))
    finally:
        say("stopping the stack ...")
        stack.stop(record)
    result["summary"], result["summary_missing"] = summary.build(result)
    path: Path = report.write(result)
    say("")
    for line in report.lines(result):
        say(line)
    say(f"(written to {path})")
    failed = [name for name, part in parts(result) if "error" in part]
    return 1 if failed else 0


def parts(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [(f"throughput {size}", run) for size, run in result.get("throughput", {}).items()]
    out += [(name, result[name]) for name in ("latency", "crm") if name in result]
    return out


if __name__ == "__main__":
    sys.exit(main())
