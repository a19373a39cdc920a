"""The bench keeps one log folder per run, the latest few (bench/report.py)."""

from __future__ import annotations

from pathlib import Path

from bench.report import run_logs


def test_each_run_gets_its_own_folder_and_only_the_latest_are_kept(tmp_path: Path) -> None:
    starts = ["2026-12-05T03:00:00+00:00", "2026-12-05T04:00:00+00:00"]
    starts += ["2026-12-05T05:00:00+00:00", "2026-12-05T05:00:00+00:00"]  # same second
    folders = []
    for start in starts:
        folder = run_logs(start, results=tmp_path, kept=3)
        (folder / "worker-crm.log").write_text(start)
        folders.append(folder)
    assert len(set(folders)) == 4
    assert folders[3].name == folders[2].name + "-2"
    left = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert left == [f.name for f in folders[1:]]  # the oldest run's folder went
    assert (folders[3] / "worker-crm.log").read_text() == starts[3]
