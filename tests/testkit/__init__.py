"""Helpers shared by the test tiers (imported as ``testkit``; ``pythonpath`` in pyproject.toml puts tests/ on the
path): where the repository and its bundled real data are, and small options for workflow runs.

``testkit.tum`` holds the TUM RGB-D pair with its ground truth, ``testkit.interrupt`` interrupts a real training
command mid-run, ``testkit.slurm`` starts a loopback SLURM cluster. Fixtures stay in ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_IMAGES = REPO / "resources" / "demo" / "sacre_coeur" / "images"
TESTSETS = REPO / "resources" / "testsets"
# SfM options for workflow tests: small and single-threaded (the model repeats exactly)
FAST_SFM = {"max_image_size": 640, "max_num_features": 2048, "camera_mode": "per_image", "num_threads": 1}


def real_data(*parts: str) -> Path:
    """Real test data bundled with the repo under ``resources/testsets/`` (each set with its SOURCE.md);
    a fresh clone has all of it, so a missing path is a failure, never a skip."""
    p = TESTSETS.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"real test data not found: {p} (it ships with the repo: check out resources/testsets)")
    return p
