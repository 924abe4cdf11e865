"""Training throughput of every family on the shared engine, fp32 vs bf16, at the papers' sizes on a GPU.

    .venv/bin/python bench/gpu_check.py            # CUDA: paper sizes (< 8 min on one H100/H200)
    .venv/bin/python bench/gpu_check.py --cpu      # anywhere: small sizes, few steps (what CI can run)

Each family trains through its real LightningModule and data (real images: the TUM RGB-D frames and the
Reichstag photos bundled in resources/testsets) on the Lightning Trainer that ``matchforge.training.engine``
configures, for a fixed number of steps after a warm-up, in ``32-true`` and ``bf16-mixed``:

- LoFTR (dual-softmax, official architecture, 840x840 as the MegaDepth recipe; CPU: demo network at 256);
  baseline in the same run: kornia's plain ``LoFTR.forward`` + a backward at the
  same size, backward from the features entering its coarse and fine matching (no supervision, no
  loss: a floor our training step cannot beat);
- PoSFeat description stage (ResNet-50, 640x480, batch 8 as the paper; CPU: ResNet-18, 128x96, batch 1);
- shift/focal point-voxel net (focal target, R=64, 20k points, batch 4; CPU: R=16, 2k points).

Prints one Markdown table (pairs or clouds per second, peak GPU memory, bf16/fp32 ratio) for
``docs/performance.md``; with two or more GPUs also LoFTR with DDP on 2 GPUs. Exit status 1 when a
family fails to train or, on CUDA, when bf16 is slower than fp32 for LoFTR (the stated target).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any
from pathlib import Path

import lightning as L
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the real TUM pair with its ground truth (testkit.tum)
sys.path.insert(0, str(REPO / "bench"))  # the LoFTR baseline of bench/loftr_step.py


class StepTimer(L.Callback):
    """Wall time of the steps after ``warmup`` (CUDA-synchronised)."""

    def __init__(self, warmup: int):
        self.warmup, self.t0, self.t1 = warmup, None, None

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self._sync()
            self.t0 = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self._sync()
        self.t1 = time.perf_counter()


def train_rate(module: L.LightningModule, loader, steps: int, warmup: int, precision: str, per_step: int) -> tuple[float, float]:
    """(items/s over the timed steps, peak GPU MB) training ``module`` for ``warmup + steps`` steps."""
    timer = StepTimer(warmup)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = L.Trainer(accelerator="auto", devices=1, precision=precision, max_steps=warmup + steps, max_epochs=-1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timer], num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=loader)
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
    return steps * per_step / (timer.t1 - timer.t0), peak


def loftr_case(gpu: bool) -> dict:
    from testkit.tum import SMALL_MODEL, tiny_dataset

    from matchforge.dataset.indices import read_dataset
    from matchforge.loftr.lightning_module import LoFTRModule, PairDataModule
    from matchforge.loftr.model import run_options

    tmp = Path(tempfile.mkdtemp())
    ds = tiny_dataset(REPO / "resources" / "testsets" / "tum_rgbd", tmp / "ds")
    size = 840 if gpu else 256
    arch = {} if gpu else SMALL_MODEL
    conf = run_options({"dataset": "tiny", **arch, "img_resize": size, "depth_max_size": 2000, "num_workers": 0,
                        "n_samples_per_subset": 1000, "accelerator": "auto", "warmup_step": 1})
    records = read_dataset(ds, "train", conf.min_overlap)
    loader_of = lambda: PairDataModule(conf, records, [])  # noqa: E731
    return {"name": f"LoFTR DS ({'official' if gpu else 'demo'} net, {size}x{size}, batch 1)",
            "make": lambda: LoFTRModule(conf), "data": lambda: loader_of().train_dataloader(), "per_step": 1,
            "baseline": lambda steps, warmup: kornia_baseline(conf, size, steps, warmup)}


def kornia_baseline(conf: Any, size: int, steps: int, warmup: int) -> float:
    """Pairs/s of kornia's LoFTR forward + backward, fp32, same size (bench/loftr_step.py's baseline)."""
    from loftr_step import run_baseline

    return run_baseline(conf, size, steps, warmup, bf16=False)


def posfeat_case(gpu: bool) -> dict:
    from matchforge.dataset.indices import read_imc
    from matchforge.posfeat.data import PairDataset, StepBatchSampler
    from matchforge.posfeat.networks import build_model
    from matchforge.posfeat.train import PoSFeatModule, set_modes
    from matchforge.posfeat.config import PoSFeatRunConfig

    arch, (w, h), bs = ("resnet50", (640, 480), 8) if gpu else ("resnet18", (128, 96), 1)
    conf = PoSFeatRunConfig.of({"model": {"arch": arch}, "data": {"image_size": [w, h], "num_workers": 4 if gpu else 0},
                                "desc": {"steps": 10**6, "batch_size": bs, "vis_every": 10**6}})
    pairs = read_imc(REPO / "resources" / "testsets" / "reichstag", "0.1")
    dataset = PairDataset(pairs, (w, h), conf.data.rot_thr)

    def make():
        model = build_model(conf.model)
        set_modes(model, "desc")
        return PoSFeatModule(model, conf, "desc", {}, Path(tempfile.mkdtemp()))

    def data():
        return torch.utils.data.DataLoader(dataset, batch_sampler=StepBatchSampler(len(dataset), bs, 0, 10**6, 0),
                                           num_workers=conf.data.num_workers, pin_memory=gpu)

    return {"name": f"PoSFeat desc ({arch}, {w}x{h}, batch {bs})", "make": make, "data": data, "per_step": bs}


def shiftfocal_case(gpu: bool) -> dict:
    from matchforge.shiftfocal.data import main as make_data
    from matchforge.shiftfocal.model import build_model, flush_denormals
    from matchforge.shiftfocal.sampling import list_items
    from matchforge.shiftfocal.config import ShiftFocalTrain
    from matchforge.shiftfocal.train import ShiftFocalModule, StepBatches, model_config

    flush_denormals()
    out = Path(tempfile.mkdtemp()) / "tum"
    make_data({"type": "tum", "max_side": 640 if gpu else 160, "holdout": 0.0}, out, "tum",
              {"path": str(REPO / "resources" / "testsets" / "tum_rgbd")})
    res, npts, bs = (64, 20000, 4) if gpu else (16, 2048, 2)
    conf = ShiftFocalTrain.of({"targets": ["focal"], "steps": 10**6, "batch_size": bs, "num_points": npts,
                               "resolution": res, **({} if gpu else {"channels": [8, 8, 16, 32, 64]})})
    items = list_items(out, "train")
    batches = StepBatches(conf, "focal", items)
    return {"name": f"shift/focal focal net (R={res}, {npts} points, batch {bs})",
            "make": lambda: ShiftFocalModule(build_model(model_config(conf, "focal")), conf),
            "data": lambda: torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False), "per_step": bs}


def ddp_loftr(steps: int) -> str:
    """LoFTR with DDP on 2 GPUs through the real `loftr-train` entry point; returns pairs/s or why not."""
    if torch.cuda.device_count() < 2:
        return "n/a (fewer than 2 GPUs)"
    from testkit.tum import tiny_dataset

    tmp = Path(tempfile.mkdtemp())
    ds = tiny_dataset(REPO / "resources" / "testsets" / "tum_rgbd", tmp / "ds")
    conf = {"dataset": "tiny", "img_resize": 840, "n_samples_per_subset": 2 * steps, "max_epochs": 1, "num_workers": 2,
            "devices": 2, "strategy": "ddp", "warmup_step": 1}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "matchforge", "loftr-train", "--dataset", str(ds), "--out", str(tmp / "run"),
                           "--conf", json.dumps(conf)], capture_output=True, text=True)
    if proc.returncode:
        return "FAILED: " + proc.stderr[-300:]
    return f"{2 * steps / (time.perf_counter() - t0):.2f} pairs/s incl. start-up"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="small sizes and few steps (forced without CUDA)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per case (default 20 on CUDA, 2 on CPU)")
    args = ap.parse_args()
    gpu = torch.cuda.is_available() and not args.cpu
    steps = args.steps or (20 if gpu else 2)
    warmup = 5 if gpu else 1
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    device = torch.cuda.get_device_name() if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}; {steps} timed steps after {warmup} warm-up steps\n")
    rows, failed = [], []
    for case_of in (loftr_case, posfeat_case, shiftfocal_case):
        case = case_of(gpu)
        rates = {}
        for precision in ("32-true", "bf16-mixed"):
            try:
                rates[precision] = train_rate(case["make"](), case["data"](), steps, warmup, precision, case["per_step"])
            except Exception as err:  # report and go on: the table shows which case broke
                failed.append(f"{case['name']} {precision}: {type(err).__name__}: {err}")
                rates[precision] = (float("nan"), float("nan"))
        (f32, m32), (b16, m16) = rates["32-true"], rates["bf16-mixed"]
        base = case["baseline"](steps, warmup) if "baseline" in case else None
        rows.append((case["name"], f32, b16, m32, m16, base))
    print("| family (size) | fp32 items/s | bf16 items/s | bf16/fp32 | peak MB fp32 | peak MB bf16 | baseline |")
    print("|---|---|---|---|---|---|---|")
    for name, f32, b16, m32, m16, base in rows:
        b = f"kornia forward+backward {base:.2f} pairs/s (ours/baseline {f32 / base:.2f})" if base else "-"
        print(f"| {name} | {f32:.3f} | {b16:.3f} | {b16 / f32:.2f} | {m32:.0f} | {m16:.0f} | {b} |")
    print(f"\nLoFTR DDP on 2 GPUs: {ddp_loftr(steps) if gpu else 'n/a (CPU run)'}")
    if failed:
        print("\nFAILED:\n" + "\n".join(failed))
    loftr = rows[0]
    slow_bf16 = gpu and not (loftr[2] >= loftr[1])
    if slow_bf16:
        print("target missed: LoFTR bf16 is not faster than fp32")
    sys.exit(1 if failed or slow_bf16 else 0)


if __name__ == "__main__":
    main()
