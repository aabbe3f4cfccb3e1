"""`--har FILE`: the proxied traffic as HAR 1.2, one entry per exchange, for `validate` to judge again later.

Entries are written as exchanges finish (`recorded.har_entry` of the keyless copy), so memory does not
grow with the traffic; after every entry the file ends with the closing brackets, so it is a valid HAR
document at any moment (a proxy killed with SIGKILL leaves a readable file). Credentials appear as the
mask (`***`, which `validate` knows for a masked key); a body the proxy recorded only up to its cap says
so in its content comment ("Body truncated: ..."), and each entry's comment names its result.

The file is only ever replaced when an earlier proxy wrote it: anything else of that name (a file of
any size that is not such a HAR, a link, a device, a FIFO, /dev/null) is left alone, never unlinked
(`HarError`).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

from conformance import __version__
from conformance.offline.recorded import har_entry
from conformance.proxy.sanitize import KEY_STANDIN
from conformance.redact import MASK, Scrubber
from conformance.transport.exchange import Exchange

CREATOR = "sgp-conformance proxy"
_HEAD = json.dumps({"name": CREATOR, "version": __version__})
HEAD = ('{"log": {"version": "1.2", "creator": ' + _HEAD + ', "entries": [\n').encode("utf-8")
TAIL = b"\n]}}\n"
_MARK = b'"creator": {"name": "sgp-conformance proxy"'


class HarError(ValueError):
    """The HAR file cannot be written (one line that names the fix)."""


def _ours(path: Path) -> bool:
    """Whether `path` is a regular file an earlier proxy wrote (by its content): opened without following a
    link and without blocking on a FIFO; a device, FIFO, socket or empty file is never ours."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return False
        return _MARK in handle.read(512)


def _refusal(path: Path) -> str | None:
    """Why `path` may not become the HAR (one line), or None when it is free or an earlier HAR of ours."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot use --har {path} ({exc.strerror or exc}): choose another file"
    if stat.S_ISLNK(mode):
        return (f"--har {path} is a symbolic link: the HAR is never written through a link; remove it or "
                "choose another file")
    if stat.S_ISDIR(mode):
        return f"--har {path} is a directory: give a file name, e.g. {path / 'traffic.har'}"
    if not stat.S_ISREG(mode):
        return (f"--har {path} is not a regular file (a device, FIFO or socket): it is left alone; "
                "choose another file")
    if not _ours(path):
        return (f"--har {path} exists and was not written by sgp-conformance proxy: it is left alone; "
                "choose another file")
    return None


class HarWriter:
    """Appends entries to one HAR file; thread-safe; `close` when done (the file is valid before, too)."""

    def __init__(self, path: Path) -> None:
        refusal = _refusal(path)
        if refusal:
            raise HarError(refusal)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # a new file, never one this tool did not create: an earlier HAR of ours is removed first, and a
            # link planted in between makes the exclusive create fail rather than be followed
            path.unlink(missing_ok=True)
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            self._file = os.fdopen(os.open(path, flags, 0o644), "w+b")
            self._file.write(HEAD + TAIL)
            self._file.flush()
        except OSError as exc:
            raise HarError(f"cannot write --har {path} ({exc.strerror or exc}): choose another file") from None
        self.path = path
        self.entries = 0
        # the fewest keys any written entry was masked with (None: no entry yet)
        self._fewest_keys: int | None = None
        self._lock = threading.Lock()

    def add(self, exchange: Exchange, started: float, comment: str, keys: Scrubber | None = None) -> None:
        """One exchange (keyless), sent at Unix time `started`; `comment` is its named result; `keys` masks
        every key seen in the run so far (an upstream may echo another client's key)."""
        entry = har_entry(exchange, started)
        entry["comment"] = comment
        _mask_standin(entry)
        if keys is not None:
            # string by string, so the entry stays well-formed JSON whatever a key holds
            entry = keys.value(entry, keys=False)
        data = json.dumps(entry, ensure_ascii=True).encode("ascii")
        with self._lock:
            if self._file.closed:
                return
            self._file.seek(-len(TAIL), 2)
            self._file.write((b",\n" if self.entries else b"") + data + TAIL)
            self._file.flush()
            self.entries += 1
            known = len(keys.secrets) if keys is not None else 0
            self._fewest_keys = known if self._fewest_keys is None else min(self._fewest_keys, known)

    def close(self, keys: Scrubber | None = None) -> None:
        """Close the file; with `keys` (every key the run saw), an entry written before one of them was seen
        is masked again, entry by entry, into a new file that replaces the old."""
        with self._lock:
            if self._file.closed:
                return
            self._file.close()
            if keys is None or self._fewest_keys is None or len(keys.secrets) <= self._fewest_keys:
                return
            # on an OSError the file written so far stays; each entry masked every key seen when it was written
            with contextlib.suppress(OSError):
                _remask(self.path, keys)


def _remask(path: Path, keys: Scrubber) -> None:
    """Rewrite the HAR at `path` with every entry (one per line, as `add` writes them) masked by `keys`."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    fresh = Path(temp)
    try:
        _copy_masked(path, os.fdopen(fd, "wb"), keys)
        os.chmod(fresh, 0o644)
        os.replace(fresh, path)
    except BaseException:
        fresh.unlink(missing_ok=True)
        raise


def _copy_masked(path: Path, new: Any, keys: Scrubber) -> None:
    old_fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(old_fd, "rb") as old, new:
        for line in old:
            body = line.rstrip(b"\n")
            comma = body.endswith(b",")
            if body.startswith(b"{") and not body.startswith(b'{"log"'):
                entry = json.loads(body[:-1] if comma else body)
                body = json.dumps(keys.value(entry, keys=False), ensure_ascii=True).encode("ascii") + (
                    b"," if comma else b"")
            new.write(body + (b"\n" if line.endswith(b"\n") else b""))


def _mask_standin(entry: dict[str, Any]) -> None:
    """The key's stand-in becomes the mask: in a HAR a credential is `***`, which `validate` reads as one
    masked by the exporter (never as a key to look for)."""
    for header in entry["request"]["headers"]:
        if KEY_STANDIN in header["value"]:
            header["value"] = header["value"].replace(KEY_STANDIN, MASK)
