"""Matches of many image pairs in one H5 file, keyed by pair name as hloc keys its match files.

One group per pair, ``names_to_pair(name0, name1)`` (hloc's: ``name0/name1`` with any ``/`` inside a name
replaced by ``-``), holding the matched keypoints themselves, so detector-free matchers (LoFTR) and
detector-descriptor ones store the same thing: ``keypoints0``, ``keypoints1`` (M, 2) float32 matchforge
pixels of each original image (:mod:`matchforge.geometry.pixels`) and, when the matcher gives them,
``scores`` (M,). The file's attribute ``matcher`` is the JSON of the matcher's options, ``pairs`` the
number of pairs. Written to ``<name>.part`` and renamed when complete (:mod:`matchforge.io.write`).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any, Mapping

import h5py
import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.safe import DamagedFile
from matchforge.io.write import atomic_h5


def names_to_pair(name0: str, name1: str) -> str:
    """hloc's pair key."""
    return "/".join((name0.replace("/", "-"), name1.replace("/", "-")))


class MatchWriter:
    """``with MatchWriter(path, matcher_conf) as w: w.write(name0, name1, kpts0, kpts1[, scores])``."""

    def __init__(self, path: str | Path, matcher: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.matcher = json.dumps(dict(matcher), sort_keys=True, default=str)
        self.count = 0

    def __enter__(self) -> "MatchWriter":
        self._context = atomic_h5(self.path, "match file")
        self._file = self._context.__enter__()
        self._file.attrs["matcher"] = self.matcher
        return self

    def write(self, name0: str, name1: str, kpts0: np.ndarray, kpts1: np.ndarray, scores: np.ndarray | None = None) -> None:
        group = self._file.create_group(names_to_pair(name0, name1))
        group.create_dataset("keypoints0", data=np.asarray(kpts0, np.float32).reshape(-1, 2))
        group.create_dataset("keypoints1", data=np.asarray(kpts1, np.float32).reshape(-1, 2))
        if scores is not None:
            group.create_dataset("scores", data=np.asarray(scores, np.float32))
        self.count += 1

    def set(self, key: str, value: Any) -> None:
        """A file attribute (e.g. ``seconds_per_pair``)."""
        self._file.attrs[key] = value

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        if exc is None:
            self._file.attrs["pairs"] = self.count
        return self._context.__exit__(exc_type, exc, tb)


class MatchReader:
    """Matched keypoints by pair names from a file written by :class:`MatchWriter` (kept open)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise MatchforgeError("match file not found", path=self.path, fix="run the matching step (matchforge match-pairs) first")
        try:
            self._file = h5py.File(self.path, "r")
            self.matcher = json.loads(self._file.attrs["matcher"])
            self.seconds_per_pair = float(self._file.attrs.get("seconds_per_pair", float("nan")))
        except (OSError, KeyError, ValueError) as err:
            raise DamagedFile(f"the match file cannot be read ({err})", path=self.path,
                              fix="delete it and run the matching step again") from None

    def __call__(self, name0: str, name1: str,
                 sizes: tuple[tuple[int, int], tuple[int, int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The matched keypoints of a pair, checked before use: two (M, 2) numeric arrays of equal length with finite
        values, and with ``sizes`` ((w0, h0), (w1, h1)) inside the images (1 px of slack). A file that fails is
        named with the pair and the fix (a hand-edited or damaged file is never scored silently)."""
        key = names_to_pair(name0, name1)
        if key not in self._file:
            raise MatchforgeError(f"no matches stored for the pair {name0} / {name1}", path=self.path,
                                  fix="the match file belongs to another test set or options: run the matching step again")
        g = self._file[key]
        bad = DamagedFile  # one fix for every way a pair's group can be broken
        fix = "delete it and run the matching step again (matchforge match-pairs, or snakemake reruns it)"
        if not isinstance(g, h5py.Group) or any(not isinstance(g.get(k), h5py.Dataset) for k in ("keypoints0", "keypoints1")):
            raise bad(f"the pair {name0} / {name1} has no keypoints0/keypoints1 arrays", path=self.path, fix=fix)
        kpts = []
        for k, size in zip(("keypoints0", "keypoints1"), sizes or (None, None)):
            d = g[k]
            if d.ndim != 2 or d.shape[1] != 2 or d.dtype.kind not in "fiu":
                raise bad(f"{k} of the pair {name0} / {name1} is {d.dtype} of shape {d.shape}, not (M, 2) numbers",
                          path=self.path, fix=fix)
            xy = np.asarray(d, np.float64)
            if not np.isfinite(xy).all():
                raise bad(f"{k} of the pair {name0} / {name1} holds NaN or infinite coordinates", path=self.path, fix=fix)
            if size is not None and len(xy) and ((xy < -1).any() or (xy[:, 0] > size[0] + 1).any() or (xy[:, 1] > size[1] + 1).any()):
                raise bad(f"{k} of the pair {name0} / {name1} has coordinates outside the {size[0]}x{size[1]} image "
                          f"(from {xy.min(0).round(1).tolist()} to {xy.max(0).round(1).tolist()})", path=self.path, fix=fix)
            kpts.append(xy)
        if len(kpts[0]) != len(kpts[1]):
            raise bad(f"the pair {name0} / {name1} has {len(kpts[0])} keypoints0 but {len(kpts[1])} keypoints1",
                      path=self.path, fix=fix)
        return kpts[0], kpts[1]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "MatchReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
