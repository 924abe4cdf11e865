"""bench/gpu_check.py runs on CPU (small sizes) so CI covers the script a GPU session will run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_gpu_check_runs_every_family_on_cpu():
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--cpu", "--steps", "1"],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "items/s" not in line]
    assert [r.split("|")[1].split("(")[0].strip() for r in rows] == ["LoFTR DS", "PoSFeat desc", "shift/focal focal net"]
    for row in rows:
        fp32, bf16 = (float(c) for c in row.split("|")[2:4])
        assert fp32 > 0 and bf16 > 0  # both precisions trained
    assert "kornia forward+backward" in rows[0]
