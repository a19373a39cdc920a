"""A worker whose ``SALESPULSE_HOME`` does not exist yet makes it with its parents (faust's
mkdir died on it with a bare FileNotFoundError); one that cannot be made (nor an explicit
``SALESPULSE_DATA_DIR``) stops each command that writes there with one line naming the
setting, exit 2, before it starts anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.support import REPO, running_worker, salespulse, settings_env


def test_a_missing_home_is_made_with_its_parents(settings: Settings, tmp_path: Path) -> None:
    home = tmp_path / "not" / "yet" / "home"
    with running_worker(settings.model_copy(update={"home": home}), tmp_path / "worker.log"):
        assert (home / f"worker-{settings.web_port}").is_dir()


@pytest.mark.parametrize(
    ("command", "setting"),
    [(["worker"], "home"), (["stack", "up"], "home"), (["demo"], "home"),
     (["worker"], "data_dir")],
)  # fmt: skip
def test_a_directory_beneath_a_file_stops_with_one_line(
    settings: Settings, tmp_path: Path, command: list[str], setting: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    directory = blocker / "below"
    done = subprocess.run(
        salespulse(*command), env=settings_env(settings.model_copy(update={setting: directory})),
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    variable = f"SALESPULSE_{setting.upper()}"
    assert done.stderr.splitlines() == [
        f"salespulse: {variable}={directory} cannot be created: {blocker} is a file, not a "
        f"directory: set {variable} to another path (missing directories are created), or "
        "move that file"
    ]
