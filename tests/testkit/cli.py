"""The matchforge command as a user runs it, and small training options for tests."""

from __future__ import annotations

import subprocess
import sys

from testkit import REPO
from testkit.tum import SMALL_MODEL

# shift/focal training: two steps of a tiny network
SHIFTFOCAL_TINY = {"steps": 2, "batch_size": 2, "num_points": 256, "resolution": 16, "channels": [4, 4, 8, 8, 16],
                   "val_every": 1, "checkpoint_every": 1}


def mf(*args: str) -> subprocess.CompletedProcess:
    """``python -m matchforge <args>`` from the repository, output captured."""
    return subprocess.run([sys.executable, "-m", "matchforge", *args], capture_output=True, text=True, cwd=REPO)



# LoFTR training on testkit.tum.tiny_dataset: the small network, 2 steps at 192 px on CPU
LOFTR_BASE = {"dataset": "tiny", **SMALL_MODEL, "img_resize": 192, "depth_max_size": 640, "n_samples_per_subset": 2,
              "max_epochs": 1, "warmup_step": 0, "num_workers": 0, "accelerator": "cpu", "canonical_bs": 1, "canonical_lr": 1e-3}
