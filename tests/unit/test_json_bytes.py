"""streams.json_bytes: orjson's JSON, in bytes that hold about their length in memory."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from streams import json_bytes

VALUES = [
    "0|day:2017-03-01|rep|rep-000001",
    {"p": 3, "cells": [["day:2017-03-01|rep|r", 1_488_000_000_000, {"n": 2}]], "ts": 1},
    {"wm": 0, "t": 1_488_000_000_000, "e": None},
    [1, 2.5, True, None, "é"],
    "",
]

# In a fresh interpreter (what earlier tests freed cannot hide the growth): 20,000 table keys
# kept, as a flush keeps its changelog records. RSS growth in KB, and the keys' bytes.
PROBE = """
from streams import json_bytes
def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
keys = [f"{i % 4}|day:2017-03-{i % 28 + 1:02d}|rep|rep-{i:06d}" for i in range(20_000)]
before = rss_kb()
kept = [json_bytes.dumps(key) for key in keys]
print(rss_kb() - before, sum(map(len, kept)))
"""


@pytest.mark.parametrize("value", VALUES)
def test_the_bytes_are_orjsons(value: object) -> None:
    out = json_bytes.dumps(value)
    assert type(out) is bytes
    assert out == orjson.dumps(value)


def test_a_type_orjson_refuses_is_refused_as_orjson_does() -> None:
    with pytest.raises(TypeError):
        json_bytes.dumps(Decimal("1.5"))


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the process's RSS from /proc (Linux)"
)
def test_kept_results_hold_about_their_length() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    grown_kb, payload = (int(n) for n in done.stdout.split())
    # ~0.7 MB of keys: a few MB with the objects and the list; plain orjson.dumps results
    # (a page each, kept) grew it by ~80 MB.
    assert grown_kb < 16 * 1024, (grown_kb, payload)
