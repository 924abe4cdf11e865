"""Where a LoFTR training step's time goes, and how close the step is to the model's own cost (issue 34).

    .venv/bin/python bench/loftr_step.py --cpu     # demo network at 256 px on CPU (any machine; CI can run it)
    python3 bench/loftr_step.py                    # CUDA: official architecture at 640 and 840 px, fp32 and bf16,
                                                   # 0 workers and the worker count a real run picks

"Ours" is a real training: ``LoFTRModule`` and ``PairDataModule`` on the engine's Trainer (``engine.fit``: its
loggers, checkpoint and log callbacks), on the real TUM RGB-D pair bundled in resources/testsets, timed over the
steps after a warm-up. A second, instrumented run splits each step into its parts (synchronised on CUDA, so the
parts add up to a little more than the plain run): waiting for the batch (data loading and the hooks between steps),
host-to-device copy, coarse supervision, forward, fine supervision, loss, the rest of ``training_step`` (logging,
bookkeeping), backward, and the optimiser (clipping, AdamW, scheduler, end-of-step hooks).

The baseline, in the same run: kornia's plain ``LoFTR.forward`` + a backward at the same size, architecture and
precision on preloaded images (no data, no supervision, no loss, no optimiser), in eval mode as kornia runs it.
A second reference, also in the same run: the model's own training cost, i.e. the training-mode forward (fine
windows at every ground-truth match, as LoFTR trains), the loss and its backward on one preloaded, supervised batch.
ours/model is what the training step adds around the model.

Targets (exit status 1 when one is missed): CPU, demo network: ours/baseline >= 0.8. CUDA, official architecture
at 840 px with the real worker count: ours/baseline >= 0.85 in fp32, and bf16/fp32 >= 1.3.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the real TUM pair with its ground truth (testkit.tum)

CPU_TARGET, GPU_TARGET, BF16_TARGET = 0.8, 0.85, 1.3
INSIDE = ("coarse supervision", "forward", "fine supervision", "loss")  # timed inside training_step
PARTS = ("data wait", "host-to-device", *INSIDE, "rest of training_step", "backward", "optimizer + hooks")


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepParts(L.Callback):
    """Seconds per part of the steps after ``warmup`` (see the module docstring), CUDA-synchronised. The hooks mark
    moments; the span between two marks is one part."""

    SPANS = {("transfer start", "step end"): "data wait", ("transfer end", "transfer start"): "host-to-device",
             ("backward end", "backward start"): "backward", ("step end", "backward end"): "optimizer + hooks"}

    def __init__(self, warmup: int):
        self.warmup, self.times = warmup, {p: 0.0 for p in PARTS}
        self.steps, self.t = 0, {}

    @property
    def counting(self) -> bool:
        return self.steps >= self.warmup

    def mark(self, moment: str, since: str) -> None:
        _sync()
        now = time.perf_counter()
        part = self.SPANS.get((moment, since))
        if part and since in self.t and self.counting:
            self.times[part] += now - self.t[since]
        self.t[moment] = now

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.mark("step start", "transfer end")

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.mark("backward start", "step start")

    def on_after_backward(self, trainer, pl_module) -> None:
        self.mark("backward end", "backward start")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.mark("step end", "backward end")
        self.steps += 1

    def per_step(self) -> dict[str, float]:
        n = max(self.steps - self.warmup, 1)
        return {p: self.times[p] / n for p in PARTS}


def profiled_module(base: type, parts: StepParts) -> type:
    """``base`` (LoFTRModule) with each part of its step timed into ``parts``."""
    import matchforge.loftr.lightning_module as lm

    def timed(name: str, fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            _sync()
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            _sync()
            if parts.counting:
                parts.times[name] += time.perf_counter() - t0
            return out
        return run

    lm.coarse_supervision = timed("coarse supervision", lm.coarse_supervision)
    lm.forward = timed("forward", lm.forward)
    lm.fine_supervision = timed("fine supervision", lm.fine_supervision)

    class Profiled(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.loss.forward = timed("loss", self.loss.forward)

        def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            parts.mark("transfer start", "step end")
            return batch

        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            parts.mark("transfer end", "transfer start")
            return batch

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            _sync()
            t0, before = time.perf_counter(), sum(parts.times[p] for p in INSIDE)
            loss = super().training_step(batch, batch_idx)
            _sync()
            if parts.counting:
                inside = sum(parts.times[p] for p in INSIDE) - before
                parts.times["rest of training_step"] += time.perf_counter() - t0 - inside
            return loss

    return Profiled


def run_ours(conf: Any, records: list, steps: int, warmup: int, profile: bool) -> tuple[float, dict[str, float], float]:
    """(pairs/s over the timed steps, seconds per part when ``profile``, peak GPU MB) of a real training."""
    from matchforge.loftr.lightning_module import LoFTRModule, PairDataModule
    from matchforge.training.engine import RunSpec, fit

    import matchforge.loftr.lightning_module as lm
    saved = lm.coarse_supervision, lm.forward, lm.fine_supervision
    parts = StepParts(warmup) if profile else None
    timer = _Timer(warmup)
    try:
        module = profiled_module(LoFTRModule, parts)(conf) if profile else LoFTRModule(conf)
        out = Path(tempfile.mkdtemp())
        spec = RunSpec(out_dir=out, name="bench", identity={}, data_fingerprint="", engine=conf,
                       max_steps=warmup + steps, max_epochs=-1, has_val=False,
                       callbacks=[timer] + ([parts] if parts else []))
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        fit(module, PairDataModule(conf, records, []), None, spec)
    finally:
        lm.coarse_supervision, lm.forward, lm.fine_supervision = saved
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
    return steps / (timer.t1 - timer.t0), (parts.per_step() if parts else {}), peak


class _Timer(L.Callback):
    """Wall time from the start of step ``warmup`` to the end of training."""

    def __init__(self, warmup: int):
        self.warmup, self.t0, self.t1 = warmup, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup and self.t0 is None:
            _sync()
            self.t0 = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        _sync()
        self.t1 = time.perf_counter()


def run_baseline(conf: Any, size: int, steps: int, warmup: int, bf16: bool) -> float:
    """Pairs/s of kornia's LoFTR forward + backward on two preloaded frames at ``size``, same architecture."""
    import cv2
    import kornia.feature as KF

    from matchforge.loftr.model import kornia_config

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    # eval mode: kornia's training-mode matching expects supervision; gradients still flow (the refined
    # keypoints depend on every layer through the fine matching)
    net = KF.LoFTR(pretrained=None, config=kornia_config(conf)).to(device).eval()
    frames = sorted((REPO / "resources" / "testsets" / "tum_rgbd" / "rgb").glob("*.png"))[:2]
    img0, img1 = (torch.from_numpy(cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (size, size)))[None, None]
                  .float().div(255).to(device) for f in frames)
    # kornia selects its outputs under no_grad: backward from the features entering coarse and fine matching
    # (captured with pre-hooks), which runs the backward of every layer
    feats: list[torch.Tensor] = []
    net.coarse_matching.register_forward_pre_hook(lambda m, a: feats.extend(a[:2]))
    net.fine_matching.register_forward_pre_hook(lambda m, a: feats.extend(a[:2]))
    for i in range(warmup + steps):
        if i == warmup:
            _sync()
            t0 = time.perf_counter()
        feats.clear()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            net({"image0": img0, "image1": img1})
        sum(f.float().mean() for f in feats).backward()
        net.zero_grad(set_to_none=True)
    _sync()
    return steps / (time.perf_counter() - t0)


def run_model(conf: Any, records: list, steps: int, warmup: int) -> float:
    """Pairs/s of the model's own training cost: the training-mode forward, the loss and its backward on one
    preloaded, supervised batch (no data loading, no logging, no optimiser, no Trainer)."""
    from matchforge.loftr.data import collate_pairs
    from matchforge.loftr.lightning_module import LoFTRModule, PairDataModule
    from matchforge.loftr.model import forward
    from matchforge.loftr.supervision import coarse_supervision, fine_supervision

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    module = LoFTRModule(conf).to(device).train()
    batch = collate_pairs([PairDataModule(conf, records, [])._dataset(records)[0]], conf.depth_max_size)
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    coarse_supervision(batch, depth_check=bool(conf.depth_check))
    bf16 = conf.precision.startswith("bf16")
    for i in range(warmup + steps):
        if i == warmup:
            _sync()
            t0 = time.perf_counter()
        b = dict(batch)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            forward(module.matcher, b)
            fine_supervision(b)
            module.loss(b)
        b["loss"].backward()
        module.zero_grad(set_to_none=True)
    _sync()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="demo network at 256 px (forced without CUDA)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 30 on CUDA, 12 on CPU)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="img_resize values (default 840 640; CPU 256)")
    ap.add_argument("--workers", type=int, default=None, help="the real run's loader workers (default: the engine's "
                                                                  "choice for this machine)")
    args = ap.parse_args()
    gpu = torch.cuda.is_available() and not args.cpu
    steps, warmup = args.steps or (30 if gpu else 12), 5 if gpu else 2
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "matchforge"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from testkit.tum import SMALL_MODEL, tiny_dataset

    from matchforge.dataset.indices import read_dataset
    from matchforge.loftr.model import run_options

    ds = tiny_dataset(REPO / "resources" / "testsets" / "tum_rgbd", Path(tempfile.mkdtemp()) / "ds")
    sizes = args.sizes or ([840, 640] if gpu else [256])
    workers = [0] + ([args.workers if args.workers is not None else min(8, os.cpu_count() or 1)] if gpu else [])
    precisions = ["32-true", "bf16-mixed"] if gpu else ["32-true"]
    device = torch.cuda.get_device_name() if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}; {steps} timed steps after {warmup} warm-up steps; "
          f"{'official' if gpu else 'demo'} architecture, dual-softmax, batch 1\n")
    rows, breakdowns, failed = [], [], []
    records = read_dataset(ds, "train", 0.0)
    for size in sizes:
        for precision in precisions:
            base = run_baseline(run_options({"dataset": "t", **({} if gpu else SMALL_MODEL)}), size, steps, warmup,
                                precision.startswith("bf16"))
            for nw in workers:
                conf = run_options({"dataset": "t", **({} if gpu else SMALL_MODEL), "img_resize": size,
                                    "depth_max_size": 2000, "num_workers": nw, "n_samples_per_subset": 10**5,
                                    "warmup_step": 1, "precision": precision, "logger": "csv"})
                rate, _, peak = run_ours(conf, records, steps, warmup, profile=False)
                _, parts, _ = run_ours(conf, records, steps, warmup, profile=True)
                model = run_model(conf, records, steps, warmup)
                rows.append({"size": size, "precision": precision, "workers": nw, "ours": rate, "baseline": base,
                             "model": model, "peak": peak})
                breakdowns.append((f"{size} px, {precision}, {nw} workers", parts))
    print("| img_resize | precision | loader workers | ours pairs/s | kornia fwd+bwd pairs/s | ours/baseline | "
          "model's training fwd+loss+bwd pairs/s | ours/model | peak GPU MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['precision']} | {r['workers']} | {r['ours']:.3f} | {r['baseline']:.3f} | "
              f"{r['ours'] / r['baseline']:.2f} | {r['model']:.3f} | {r['ours'] / r['model']:.2f} | {r['peak']:.0f} |")
    print("\nms per step, by part (instrumented run):\n")
    print("| part | " + " | ".join(name for name, _ in breakdowns) + " |")
    print("|---|" + "---|" * len(breakdowns))
    for p in PARTS:
        print(f"| {p} | " + " | ".join(f"{parts[p] * 1e3:.1f}" for _, parts in breakdowns) + " |")
    print("| total | " + " | ".join(f"{sum(parts.values()) * 1e3:.1f}" for _, parts in breakdowns) + " |")

    def row(size: int, precision: str, nw: int) -> dict[str, float]:
        return next(r for r in rows if (r["size"], r["precision"], r["workers"]) == (size, precision, nw))

    if gpu and 840 in sizes:
        f32, b16 = row(840, "32-true", workers[-1]), row(840, "bf16-mixed", workers[-1])
        checks = [("ours/baseline, 840 px fp32, real workers", f32["ours"] / f32["baseline"], GPU_TARGET),
                  ("bf16/fp32, 840 px, real workers", b16["ours"] / f32["ours"], BF16_TARGET)]
    else:
        first = row(sizes[0], "32-true", 0)
        checks = [(f"ours/baseline, {sizes[0]} px", first["ours"] / first["baseline"], CPU_TARGET)]
    print()
    for name, value, target in checks:
        print(f"target {name} >= {target}: {value:.2f} {'met' if value >= target else 'MISSED'}")
        failed += [name] if value < target else []
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
