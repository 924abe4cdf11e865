"""Interrupting a real training job: run the CLI in a subprocess and send it a signal mid-training."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd


def interrupt_cli(args: list[str], log_path: Path, after_step: int, signum: int = signal.SIGTERM,
                  timeout: float = 600) -> tuple[int, str]:
    """Run ``python -m matchforge <args>``; once its log shows training step ``after_step``, send ``signum``.
    Returns (exit status, log text)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "matchforge", *args], stdout=out, stderr=subprocess.STDOUT, env=env)
        pattern = re.compile(rf"step {after_step} epoch")
        t0 = time.time()
        sent = False
        while proc.poll() is None and time.time() - t0 < timeout:
            if not sent and pattern.search(log_path.read_text()):
                proc.send_signal(signum)
                sent = True
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert sent, f"training never reached step {after_step}:\n{log_path.read_text()[-3000:]}"
    return proc.returncode, log_path.read_text()


def losses(metrics_csv: Path, column: str = "train/loss") -> pd.Series:
    """The per-step training loss of a run's merged metrics table, indexed by step."""
    df = pd.read_csv(metrics_csv)
    return df[["step", column]].dropna().set_index("step")[column]


def crash_loftr_at_step(monkeypatch, step: int) -> None:
    """Make every LoFTR training step ``step`` raise ``RuntimeError("simulated node failure")`` (a node lost mid-run),
    the steps before it train as usual."""
    from matchforge.loftr import lightning_module

    original = lightning_module.LoFTRModule.training_step

    def crashing(self, batch, batch_idx):
        if self.global_step == step:
            raise RuntimeError("simulated node failure")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(lightning_module.LoFTRModule, "training_step", crashing)
