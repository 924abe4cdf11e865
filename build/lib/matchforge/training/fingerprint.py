"""Fingerprints of training data, part of a run's identity (``matchforge.training.engine``).

A dataset's fingerprint covers ``dataset.json`` and the content of every scene-info file it lists
(pair lists, poses, intrinsics, image and depth paths), so a new split, new pairs or a rebuilt scene
changes it; the images and depth maps themselves are named by those files and rebuilt with them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable


def files_digest(paths: Iterable[str | Path]) -> str:
    """Digest of the names and contents of ``paths`` (in the given order)."""
    h = hashlib.blake2b(digest_size=16)
    for p in paths:
        p = Path(p)
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes() if p.is_file() else b"<missing>")
    return h.hexdigest()


def dataset_fingerprint(dataset_json: str | Path) -> str:
    """``dataset.json`` and the scene-info files of all its splits."""
    dataset_json = Path(dataset_json)
    meta = json.loads(dataset_json.read_text())
    root = dataset_json.parent
    npz_root = root / meta.get("npz_root", "index/scene_info")
    npz = set()
    for split in (meta.get("splits") or {}).values():
        stems = split.get("scene_infos")
        if stems is None and (root / split.get("list", "")).is_file():
            stems = (root / split["list"]).read_text().split()
        npz |= {npz_root / f"{stem}.npz" for stem in stems or []}
    return files_digest([dataset_json, *sorted(npz)])
