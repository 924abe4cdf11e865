"""The matchforge command as a user runs it, and the shift/focal training options the tests run it with."""

from __future__ import annotations

import subprocess
import sys

from testkit import REPO

# shift/focal training: two steps of a tiny network
SHIFTFOCAL_TINY = {"steps": 2, "batch_size": 2, "num_points": 256, "resolution": 16, "channels": [4, 4, 8, 8, 16],
                   "val_every": 1, "checkpoint_every": 1}


def mf(*args: str) -> subprocess.CompletedProcess:
    """``python -m matchforge <args>`` from the repository, output captured."""
    return subprocess.run([sys.executable, "-m", "matchforge", *args], capture_output=True, text=True, cwd=REPO)
