"""streams.directories: a command's directory made like ``mkdir -p``, or one line naming the
setting and what to fix."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from streams.directories import UnusableDirectory, directory_problem, make_directory

FIX = "set SALESPULSE_HOME to another path (missing directories are created), or move that file"


def test_a_missing_directory_is_made_with_its_parents(tmp_path: Path) -> None:
    home = tmp_path / "not" / "yet" / "home"
    make_directory(home, "SALESPULSE_HOME")
    assert home.is_dir()
    (home / "kept").write_text("state")
    make_directory(home, "SALESPULSE_HOME")  # an existing one is used as it is
    assert (home / "kept").read_text() == "state"


def test_a_file_on_the_way_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    home = blocker / "deeper" / "home"
    with pytest.raises(UnusableDirectory) as raised:
        make_directory(home, "SALESPULSE_HOME")
    assert str(raised.value) == (
        f"SALESPULSE_HOME={home} cannot be created: {blocker} is a file, not a directory: {FIX}"
    )


def test_a_value_that_is_a_file_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("")
    with pytest.raises(UnusableDirectory) as raised:
        make_directory(home, "SALESPULSE_HOME")
    assert str(raised.value) == f"SALESPULSE_HOME={home} is a file, not a directory: {FIX}"


def test_permission_denied_names_where_it_was_denied(tmp_path: Path) -> None:
    # Decided from the error (the tests may run as root, whom no permission stops).
    home = tmp_path / "shared" / "salespulse" / "home"
    (tmp_path / "shared").mkdir()
    denied = PermissionError(errno.EACCES, "Permission denied")
    assert directory_problem(home, "SALESPULSE_DATA_DIR", denied) == (
        f"SALESPULSE_DATA_DIR={home} cannot be created: no permission to create "
        f"{tmp_path / 'shared' / 'salespulse'} in {tmp_path / 'shared'}: set "
        "SALESPULSE_DATA_DIR to a directory you can write, or create it for this user"
    )


def test_any_other_error_gives_the_systems_reason(tmp_path: Path) -> None:
    read_only = OSError(errno.EROFS, "Read-only file system")
    assert directory_problem(tmp_path / "home", "SALESPULSE_HOME", read_only) == (
        f"SALESPULSE_HOME={tmp_path / 'home'} cannot be created (Read-only file system): set "
        "SALESPULSE_HOME to a directory you can write"
    )


def test_a_relative_value_is_quoted_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a-file").write_text("")
    with pytest.raises(UnusableDirectory) as raised:
        make_directory(Path("a-file/home"), "SALESPULSE_HOME")
    assert str(raised.value) == (
        f"SALESPULSE_HOME=a-file/home cannot be created: {tmp_path / 'a-file'} is a file, not a "
        f"directory: {FIX}"
    )


def test_an_existing_directory_this_user_cannot_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # os.access stands in for a read-only directory: root, who may run the tests, writes all.
    monkeypatch.setattr("streams.directories.os.access", lambda path, mode: False)
    with pytest.raises(UnusableDirectory) as raised:
        make_directory(tmp_path, "SALESPULSE_HOME")
    assert str(raised.value) == (
        f"SALESPULSE_HOME={tmp_path} is not writable by this user: set SALESPULSE_HOME to a "
        "directory you can write, or give this user write access to it"
    )
