"""The report folder's life: where a run writes (claim), what it may replace (only this tool's reports), how
the previous run's reports are set aside so they never read as this run's verdict, and how a file is written
without following a link.

A run's life in its folder:

1. `claim_report_dir` settles the folder and refuses it when a report's name is taken by a user's file or by a
   symbolic link (dangling or not): nothing is written through a link, and no file this tool did not create
   is ever written to.
2. `set_aside` moves the previous run's reports into `previous/` before anything is sent. Until this run
   writes its own, the folder holds no verdict at all, so a run killed in its first seconds, or ended by its
   preflight (unreachable, key refused, a wrong path or model), never leaves the previous verdict reading as
   its own, and the previous reports are kept rather than overwritten.
3. `settle` ends it: a run that judged the target drops `previous/` (its own reports supersede them); a run
   that ended early (unreachable, key refused, interrupted, or no report at all) keeps it; a selection that
   matched nothing (a usage error that judged nothing) puts the previous reports back where they were.
4. `release_report_dir` removes a folder this process created and left empty.

Every report this tool writes itself goes through `write_new`: a new file beside the target, renamed into
place, so a link planted where a report goes is replaced, never followed.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from conformance.config import Config

REPORT_FILES = ("conformance.html", "junit.xml", "conformance.json")
JUNIT_SUITE_NAME = "sgp-conformance"
# the folder inside the report directory that keeps the previous run's reports while they are not current
PREVIOUS = "previous"
# verdicts of runs that ended before judging the target: their reports never replace a judged run's in previous/
EARLY_ENDINGS = frozenset({"unreachable", "key refused", "interrupted"})
# a report's head read to tell this tool's reports from a user's file, and to find a verdict (bytes)
HEAD_BYTES = 2_000_000
_VERDICT = re.compile(rb'"verdict":\s*"([^"]*)"')

# how a report this tool wrote is told from a user's file of the same name (only those are ever replaced)
_OWN_MARKS = {"conformance.json": (b'"schema": "https://sgp-conformance.dev/schemas/conformance-result.json"',),
              "junit.xml": (b'name="sgp-conformance"', b'<property name="requirement"'),
              "conformance.html": (b"SGP conformance report",)}
TIMESTAMP = "{timestamp}"


def _head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first `size` bytes of a regular file (never through a link, never from a FIFO or a device)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return b""
        return handle.read(size)


def written_by_us(path: Path) -> bool:
    """Whether `path` is a report an earlier run of this tool wrote (by its content, not its name); a link
    is never one."""
    marks = _OWN_MARKS.get(path.name, ())
    if path.is_symlink():
        return False
    head = _head(path)
    return any(mark in head for mark in marks)


def write_new(path: Path, data: bytes) -> None:
    """Write `data` as the file `path` by creating a new file beside it and renaming it into place: a link at
    `path` (dangling or not) is replaced by the file, never followed, and no existing file is written to.
    Raises OSError as open() would."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def link_problem(path: Path) -> str | None:
    """The one-line refusal when a report's place holds a symbolic link (dangling or not), else None."""
    if path.is_symlink():
        return (f"sgp-conformance: {path} is a symbolic link: reports are never written through a link; remove it "
                "or choose another --report-dir")
    return None


def run_report_dir(template: str, keep: bool = False, now: float | None = None) -> Path:
    """The directory one run writes to. `{timestamp}` in the template becomes the run's start in UTC
    (`reports/{timestamp}` -> `reports/20261130T101500Z`); `keep` is the same as a trailing `/{timestamp}`.
    A timestamped directory that exists already (two runs in one second) gets a suffix: -2, -3 ..."""
    if keep and TIMESTAMP not in template:
        template = str(Path(template) / TIMESTAMP)
    if TIMESTAMP not in template:
        return Path(template)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    path = Path(template.replace(TIMESTAMP, stamp))
    suffix = 2
    while path.exists():
        path = Path(template.replace(TIMESTAMP, f"{stamp}-{suffix}"))
        suffix += 1
    return path


def prepare_report_dir(report_dir: Path) -> str | None:
    """Create the report directory and check that the run may write its reports there: a file of a
    report's name that this tool did not write is the user's and is never replaced, and a link where a report
    goes is refused. Nothing is removed here (see set_aside, clear_own_reports). A one-line error, or None."""
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        # a directory that exists may still refuse files (/proc/self, a read-only mount): found now, not by
        # pytest's writers at the end of the run
        fd, probe = tempfile.mkstemp(prefix=".sgp-conformance-", dir=report_dir)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        return (f"sgp-conformance: cannot write reports to {report_dir}: it is not a directory; choose another "
                "--report-dir")
    except OSError as exc:
        return (f"sgp-conformance: cannot write reports to {report_dir} ({exc.strerror or exc}): choose another "
                "--report-dir")
    for name in REPORT_FILES:
        path = report_dir / name
        problem = link_problem(path)
        if problem:
            return problem
        if path.exists() and not written_by_us(path):
            return (f"sgp-conformance: {path} exists and was not written by sgp-conformance: it is left alone; "
                    "choose another --report-dir")
    return None


# the report directories this process created (claim_report_dir), each with the outermost folder it made
_CREATED: dict[Path, Path] = {}


def claim_report_dir(settings: Config) -> Path | None:
    """Settle where this run writes (run_report_dir of settings.report_dir and settings.keep), record it in
    settings.report_dir and prepare it (prepare_report_dir). None, after printing the one-line problem to
    stderr, when the run may not write there."""
    # `..` is taken as written (`X/../reports` is `reports`), so no tool on the way makes an X
    report_dir = Path(os.path.normpath(run_report_dir(settings.report_dir, settings.keep)))
    settings.report_dir = str(report_dir)
    # the folders are made and remembered by their real path: `X/../reports` makes no X, and a folder that
    # existed before is never taken for one this run made
    real = Path(os.path.realpath(report_dir))
    # the outermost folder this claim creates (the report directory, or a parent of it that is missing too)
    missing = [p for p in (real, *real.parents) if not p.exists()]
    problem = prepare_report_dir(real)
    if problem:
        print(problem, file=sys.stderr)
        return None
    if missing:
        _CREATED[real] = missing[-1]
    return report_dir


def release_report_dir(report_dir: Path) -> None:
    """Remove the report directory again if this process created it and the run wrote nothing there (a
    usage error found once the run had started), with the parents the claim made: no empty folder is left
    behind. A folder that existed before, or holds anything, stays."""
    real = Path(os.path.realpath(report_dir))
    top = _CREATED.pop(real, None)
    if top is None:
        return
    for folder in (real, *real.parents):
        try:
            folder.rmdir()  # only an empty directory goes
        except OSError:
            return
        if folder == top:
            return


def clear_own_reports(paths: Iterable[Path]) -> None:
    """Remove the previous run's reports among `paths` (those this tool wrote), so a run that ends before
    writing leaves none that could be taken for its own. Called once the target is known to answer."""
    for path in paths:
        if path.is_file() and not path.is_symlink() and written_by_us(path):
            path.unlink(missing_ok=True)


def results_stamp(report_dir: Path) -> tuple[int, int, int] | None:
    """What tells the conformance.json in `report_dir` from one written later (inode, mtime, size); None when
    there is none. finish() compares it with the stamp taken before the run began."""
    try:
        stat = (report_dir / "conformance.json").stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def verdict_of(report_dir: Path) -> str | None:
    """The verdict of the conformance.json this tool wrote in `report_dir` (read from its head), or None."""
    path = report_dir / "conformance.json"
    if not written_by_us(path):
        return None
    found = _VERDICT.search(_head(path, 256_000))
    return found.group(1).decode("utf-8", "replace") if found else None


def _own(report_dir: Path) -> list[Path]:
    return [report_dir / name for name in REPORT_FILES if written_by_us(report_dir / name)]


def set_aside(report_dir: Path) -> list[Path]:
    """Move the previous run's reports (only this tool's) out of `report_dir` into `report_dir/previous/`,
    before this run sends anything; returns where they went. Reports of a run that ended early (EARLY_ENDINGS,
    or no conformance.json) never replace a judged run's reports already kept there: they are dropped."""
    own = _own(report_dir)
    if not own:
        return []
    previous = report_dir / PREVIOUS
    if previous.is_symlink() or (previous.exists() and not previous.is_dir()):
        # not ours to write into: the reports go, as a run that writes its own would remove them anyway
        clear_own_reports(own)
        return []
    if verdict_of(report_dir) in (*EARLY_ENDINGS, None) and verdict_of(previous) is not None:
        clear_own_reports(own)
        return []
    previous.mkdir(exist_ok=True)
    moved = []
    for path in own:
        target = previous / path.name
        if target.is_symlink() or (target.exists() and not written_by_us(target)):
            path.unlink(missing_ok=True)
            continue
        os.replace(path, target)
        moved.append(target)
    # what previous/ held of a report kind this run's previous one lacked is older still: it goes
    for name in REPORT_FILES:
        stale = previous / name
        if stale not in moved and written_by_us(stale):
            stale.unlink(missing_ok=True)
    return moved


def put_back(report_dir: Path, moved: Iterable[Path]) -> None:
    """Return reports set_aside moved to where they were (a run that judged nothing and wrote nothing)."""
    for path in moved:
        home = report_dir / path.name
        if path.is_file() and not home.exists() and not home.is_symlink():
            os.replace(path, home)
    _drop_if_empty(report_dir / PREVIOUS)


def drop_previous(report_dir: Path) -> None:
    """Remove the reports kept in previous/ (only this tool's), and the folder if that empties it: this
    run's own reports supersede them."""
    previous = report_dir / PREVIOUS
    if previous.is_dir() and not previous.is_symlink():
        clear_own_reports(previous / name for name in REPORT_FILES)
        _drop_if_empty(previous)


def _drop_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def settle(report_dir: Path, moved: list[Path], wrote: bool, judged_nothing: bool = False) -> str | None:
    """End the folder's life for this run (see the module's docstring): `wrote` says whether this run wrote
    its own conformance.json, `judged_nothing` whether it ended as a selection that matched nothing. Returns
    the line to print about the previous reports, or None."""
    verdict = verdict_of(report_dir) if wrote else None
    if wrote and verdict not in EARLY_ENDINGS:
        drop_previous(report_dir)
        return None
    if not wrote and judged_nothing:
        put_back(report_dir, moved)
        return None
    kept = report_dir / PREVIOUS
    if verdict_of(kept) is None:
        return None
    return (f"sgp-conformance: the previous run's reports are kept in {kept}{os.sep}; they are not this run's "
            "verdict")
