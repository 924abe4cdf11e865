"""bench/gpu_check.py runs on CPU (small sizes) so CI covers the script a GPU session will run."""

from __future__ import annotations

import re
import subprocess
import sys


from testkit import REPO


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


def test_the_training_step_profile_runs_on_cpu_and_accounts_for_the_step():
    """bench/loftr_step.py --cpu (the GPU session's script at CPU sizes): the table, the parts of a step, and the
    parts add up to the measured step time (an instrumented run beside a plain one)."""
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "loftr_step.py"), "--cpu", "--steps", "4"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-3000:]  # 1: a target missed, stated
    out = proc.stdout
    row = next(line for line in out.splitlines() if line.startswith("| 256 | 32-true | 0 |"))
    ours, base, _, model = (float(c) for c in row.split("|")[4:8])
    assert ours > 0 and base > 0 and model > 0
    parts = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in out.splitlines()
             if line.startswith("| ") and line.count("|") == 3 and "part" not in line}
    assert {"data wait", "forward", "backward", "loss", "optimizer + hooks"} <= set(parts)
    assert parts["forward"] > 0 and parts["backward"] > 0
    assert 0.6 < parts["total"] / (1000 / ours) < 1.5, (parts["total"], 1000 / ours)
    assert re.search(r"target ours/baseline, 256 px >= 0.8: \d\.\d\d (met|MISSED)", out)
