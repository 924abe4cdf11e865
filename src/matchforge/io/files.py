"""What kind of file a path is, before anything reads it."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def not_regular(path: str | Path) -> str | None:
    """Why ``path`` (links followed) is not read as a photo, or None for a regular file: devices, FIFOs and
    sockets (``zero.jpg -> /dev/zero`` would be read forever) are skipped with this reason."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # missing or a link loop: the reader says which
    if stat.S_ISREG(mode):
        return None
    kind = ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode) else
            "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    return f"{kind}{' (through a symbolic link)' if os.path.islink(path) else ''}: only regular files are read as photos"
