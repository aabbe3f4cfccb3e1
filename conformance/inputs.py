"""Reading a file the user named, bounded: a regular file only, at most `cap` bytes counted as they are read.

A size from stat() cannot be trusted for this: /dev/zero and /proc files report 0 and never end, a FIFO
blocks until a writer comes, a device streams forever. So the file is opened without blocking and without
following the question of its size, checked to be a regular file on the open descriptor (no race with a
rename), and read up to one byte past the cap: a file that gives more is refused, whatever stat() said.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class InputError(ValueError):
    """A file that cannot be read as an input: the message is one line naming the file and the fix."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_capped(path: Path | str, cap: int, what: str = "file", flag: str = "", noun: str = "file") -> bytes:
    """The bytes of the regular file `path`, at most `cap` of them. InputError (one line: `what`, the path,
    why, and the fix naming `flag` and the `noun` expected) when it is missing, unreadable, not a regular
    file (a FIFO, a device such as /dev/zero, a directory, a socket) or longer than `cap` bytes."""
    path = Path(path)
    given = f" given to {flag}" if flag else ""
    give = f"give {flag} the path of a {noun}" if flag else f"give the path of a {noun}"
    try:
        # O_NONBLOCK: opening a FIFO for reading must not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist: fix the path{given}") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a directory: {give}") from None
    except PermissionError:
        raise InputError(f"{what} {path} cannot be read (permission denied): check its permissions") from None
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read ({exc.strerror or exc}): fix the path{given}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise InputError(f"{what} {path} is a directory: {give}")
        raise InputError(f"{what} {path} is {_kind(mode)}, not a regular file: {give}")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(cap + 1)
        except OSError as exc:
            raise InputError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    if len(data) > cap:
        raise InputError(f"{what} {path} is larger than the {cap:,} bytes read of such a file: {give} that is "
                         "smaller")
    return data
