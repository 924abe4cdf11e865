"""Writing outputs so that a failed write leaves nothing half-written and says why.

Every file matchforge writes is written to ``<name>.part`` beside its final path and renamed into place
when complete (:func:`atomic_path`). An ``OSError`` on the way (a full disk, a quota, a read-only
mount) removes the partial file and becomes one :class:`~matchforge.errors.MatchforgeError` naming
the cause and the path (:func:`disk_errors`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from matchforge.errors import MatchforgeError

log = logging.getLogger(__name__)

_CAUSES = {
    errno.ENOSPC: ("no space left on device", "free space on that disk, or point results/ at a larger one (a symlink or "
                                               "`snakemake --directory`), then rerun: nothing half-written was kept"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota, or write results/ elsewhere, then rerun"),
    errno.EROFS: ("the file system is read-only", "write results/ to a writable disk"),
    errno.EACCES: ("permission denied", "make the folder writable for this user"),
}


def _errno_of(err: BaseException) -> int | None:
    """The errno of ``err``, also when a library (HDF5, OpenCV) only puts it in the message."""
    if isinstance(err, OSError) and err.errno in _CAUSES:
        return err.errno
    text = str(err)
    if "No space left" in text or "errno = 28" in text:
        return errno.ENOSPC
    if "Disk quota exceeded" in text:
        return errno.EDQUOT
    return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def disk_errors(path: str | Path, what: str = "output") -> Iterator[Path]:
    """Run a write of ``path``: on any exception ``path`` is removed; a disk-level ``OSError`` (full disk,
    quota, read-only, permission) is raised as a MatchforgeError naming the cause, the path and the fix."""
    path = Path(path)
    try:
        yield path
    except BaseException as err:
        _remove(path)
        code = _errno_of(err)
        if code is None:
            raise
        cause, fix = _CAUSES[code]
        free = shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd()).free / 2**20
        raise MatchforgeError(f"{cause} at {path.parent} while writing the {what} ({free:.0f} MB free there)",
                              path=path, fix=fix) from None


@contextmanager
def atomic_path(path: str | Path, what: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; it becomes ``path`` only when the block succeeds.

    A file or a folder may be written there. On failure the temporary is removed and ``path`` keeps
    whatever it held before (see :func:`disk_errors` for the error raised)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    _remove(tmp)
    with disk_errors(tmp, what):
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)


def set_aside(path: str | Path, stamp: str | None = None) -> Path:
    """Rename a damaged file to ``<name>.damaged-<time>`` (kept for inspection, never read again); the new path.
    ``stamp`` (default: now) lets several files of one state share a time."""
    import time

    path = Path(path)
    aside = path.with_name(f"{path.name}.damaged-{stamp or time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    return aside


def read_kept_json(path: str | Path, valid: Callable[[Any], bool], what: str) -> Any | None:
    """The JSON state a step keeps between runs (a cache, a record), or None when there is none or it is damaged:
    a file that does not parse, or whose content fails ``valid``, is set aside (:func:`set_aside`) with a warning
    and the state rebuilt, never a failure on every rerun."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
        if valid(value):
            return value
        why = "not the expected shape"
    except (ValueError, OSError) as err:
        why = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
    aside = set_aside(path)
    log.warning("%s %s is damaged (%s): set aside as %s and rebuilt", what, path, why, aside.name)
    return None


def write_bytes(path: str | Path, data: bytes, what: str = "output") -> None:
    """``path`` holds ``data`` afterwards, or (on failure) what it held before."""
    with atomic_path(path, what) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str, what: str = "output") -> None:
    write_bytes(path, text.encode(), what)


def require_free_space(folder: str | Path, need_mb: float, what: str, scene: str | None = None) -> None:
    """Fail before starting work that would need about ``need_mb`` MB in ``folder`` when less is free
    (for writers that cannot stop cleanly when the disk fills, such as COLMAP's)."""
    folder = Path(folder)
    probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path.cwd())
    free = shutil.disk_usage(probe).free / 2**20
    if free < need_mb:
        raise MatchforgeError(f"no space left on device at {probe}: {free:.0f} MB free, {what} needs about "
                              f"{need_mb:.0f} MB", scene=scene, path=folder, fix=_CAUSES[errno.ENOSPC][1])


def write_json(path: str | Path, obj: Any, what: str = "output", **dumps: Any) -> None:
    """``json.dumps(obj, **dumps)`` (indent 1 unless given) into ``path``, atomically."""
    dumps.setdefault("indent", 1)
    write_text(path, json.dumps(obj, **dumps), what)


def save_figure(fig: Any, path: str | Path, **savefig: Any) -> None:
    """A matplotlib figure into ``path`` (format from its suffix), atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path, "figure") as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **savefig)
    finally:
        plt.close(fig)


@contextmanager
def atomic_h5(path: str | Path, what: str = "output") -> Iterator[Any]:
    """An ``h5py.File`` open for writing on ``<path>.part``; it becomes ``path`` when the block succeeds and
    is closed. A failure (a full disk shows when the file is flushed) leaves nothing (see :func:`atomic_path`)."""
    import h5py

    with atomic_path(path, what) as tmp:
        with h5py.File(tmp, "w") as f:
            yield f
