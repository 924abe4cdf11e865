"""Cluster resources of the per-scene jobs (SfM, depth, scene info) as functions of the scene's photo count.

A SLURM job that outlives its ``runtime`` is killed, so one profile-wide default (120 min) fits a demo and
kills a 2,000-photo scene. The estimates below are generous CPU figures measured on this project's scenes
(docs/sfm.md, "Large scenes"): SIFT extraction ~0.5 s per photo, matching ~0.1 s per pair, incremental
mapping growing with the photos, 3 s per photo for a depth network, 15 s for PatchMatch (H200: 12.2 s).
Every value can be set per scene (``scenes.<name>.resources.<rule>.{runtime,mem_mb}``) or per rule
(``--set-resources``).

Units: ``runtime`` in minutes, ``mem_mb`` in megabytes, as Snakemake's standard resources.
"""

from __future__ import annotations

import math
from typing import Any

STAGES = ("sfm", "depth_predict", "depth_align", "depth_consistency", "scene_info")


def sfm_pairs(sfm: dict[str, Any], num_photos: int) -> int:
    """Image pairs SfM will match: all of them up to ``exhaustive_max_images``, else ``retrieval_num_images``
    per photo (vocab_tree) or ``sequential_overlap`` per photo (sequential)."""
    n = num_photos
    if sfm["matcher"] == "exhaustive" or (sfm["matcher"] == "auto" and n <= sfm["exhaustive_max_images"]):
        return n * (n - 1) // 2
    per_photo = sfm["sequential_overlap"] if sfm["matcher"] == "sequential" else sfm["retrieval_num_images"]
    return min(n * (n - 1) // 2, n * per_photo)


def estimate(stage: str, num_photos: int, sfm: dict[str, Any], depth_backend: str = "sparse") -> dict[str, int]:
    """``{"runtime": minutes, "mem_mb": MB}`` for one scene's job of ``stage`` (one of :data:`STAGES`).

    ``sfm``: the scene's SfM options (for the pair count); ``depth_backend``: the scene's depth backend."""
    n = max(num_photos, 1)
    if stage == "sfm":
        minutes = 30 + n * 0.5 / 60 + sfm_pairs(sfm, n) * 0.1 / 60 + n * 0.2  # extraction, matching, mapping
        # features + descriptors (twice: database cache and mapper), the correspondence graph (~20 kB a pair)
        mb = 4000 + n * sfm["max_num_features"] * (128 + 24) / 2**20 * 2 + sfm_pairs(sfm, n) * 0.02
        return {"runtime": math.ceil(minutes), "mem_mb": max(8000, math.ceil(mb))}
    if stage == "depth_predict":
        per_image = {"mvs": 15.0, "sparse": 0.5}.get(depth_backend, 3.0)
        return {"runtime": math.ceil(30 + n * per_image / 60), "mem_mb": 8000 + 4 * n}
    if stage in ("depth_align", "depth_consistency"):
        return {"runtime": math.ceil(30 + n * 2 / 60), "mem_mb": 4000 + 4 * n}
    if stage == "scene_info":
        return {"runtime": math.ceil(30 + n * 0.5 / 60), "mem_mb": 2000 + 2 * n}
    raise ValueError(f"no estimate for stage {stage!r}; one of {STAGES}")
