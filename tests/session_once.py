"""What the xdist workers of one test session do once between them: work in a directory they all share,
taken under an exclusive lock (fcntl's flock; where there is none, as on Windows, each worker has its own)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def shared_directory(name: str, tmp_path_factory: pytest.TempPathFactory,
                     config: pytest.Config) -> Iterator[tuple[Path, bool]]:
    """`name`, a directory of this session that all its xdist workers share, held under a lock for the block:
    (the directory, whether this call made it: the first of the workers to ask)."""
    try:
        import fcntl
    except ImportError:
        fcntl = None  # type: ignore[assignment]
    base = tmp_path_factory.getbasetemp()
    # an xdist worker's base is popen-gwN in the session's directory; without xdist the base is the session's
    shared = base.parent if hasattr(config, "workerinput") and fcntl is not None else base
    with (shared / f"{name}.lock").open("w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        work = shared / name
        made = not work.exists()
        work.mkdir(exist_ok=True)
        yield work, made
