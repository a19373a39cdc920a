"""The directories a command writes in (``SALESPULSE_HOME``, ``SALESPULSE_DATA_DIR``), made
like ``mkdir -p`` before it starts; when one cannot be, a one-line error naming the setting
and what to fix (faust's own mkdir died on a missing parent with a bare traceback)."""

from __future__ import annotations

import os
from itertools import takewhile
from pathlib import Path


class UnusableDirectory(Exception):
    """A directory a command writes in cannot be made or written; the message says which
    setting places it and what to do."""


def make_directory(path: Path, variable: str) -> None:
    """``mkdir -p path``, or ``UnusableDirectory`` naming ``variable`` (the setting)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnusableDirectory(directory_problem(path, variable, exc)) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UnusableDirectory(
            f"{variable}={path} is not writable by this user: set {variable} to a directory "
            "you can write, or give this user write access to it"
        )


def directory_problem(path: Path, variable: str, error: OSError) -> str:
    """What to say when ``mkdir -p path`` raised ``error``: a file in the way, no
    permission in the deepest directory that exists, or else the system's reason."""
    chain = [path.absolute(), *path.absolute().parents][::-1]  # from / down to path
    existing = list(takewhile(Path.is_dir, chain))
    deepest = existing[-1] if existing else Path("/")
    below = chain[len(existing)] if len(existing) < len(chain) else None
    if below is not None and below.exists():
        fix = f"set {variable} to another path (missing directories are created), or move that file"
        if below == path.absolute():
            return f"{variable}={path} is a file, not a directory: {fix}"
        return f"{variable}={path} cannot be created: {below} is a file, not a directory: {fix}"
    if isinstance(error, PermissionError):
        return (
            f"{variable}={path} cannot be created: no permission to create {below or path} "
            f"in {deepest}: set {variable} to a directory you can write, or create it for "
            "this user"
        )
    return (
        f"{variable}={path} cannot be created ({error.strerror or error}): set {variable} to "
        "a directory you can write"
    )
