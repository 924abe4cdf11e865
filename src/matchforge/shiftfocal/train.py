"""``matchforge shiftfocal-train``: train the shift and focal (and optionally scale) networks of one run.

One network per target, trained one after the other on the shared engine
(:mod:`matchforge.training.engine`: Lightning, resume policy, checkpoints, signals), each with an L1
loss on distortions sampled per item and step (see :mod:`matchforge.shiftfocal.sampling`), a
validation split with fixed distortions, a learning rate that decays (cosine or linear to
``lr * min_lr_ratio``). ``init_weights`` (another run's folder) starts each net from that run's.

Outputs in ``<out>``: ``<target>.pt`` (best validation weights + model config), ``metrics.json``,
``curves.png``; per target ``<target>/checkpoints/`` and ``<target>/metrics.csv``.
"""

from __future__ import annotations

import argparse
import logging
import math
from typing import Any
from pathlib import Path

import lightning as L
import numpy as np
import torch

from matchforge.conf import load_conf
from matchforge.errors import MatchforgeError
from matchforge.config_check import require_config_path
from matchforge.shiftfocal.model import ModelConfig, build_model, flush_denormals
from matchforge.shiftfocal.recover import load_model
from matchforge.shiftfocal.sampling import DataItem, Sample, list_items, make_sample
from matchforge.training.curves import merge_logs
from matchforge.training.engine import ResumableLoader, RunSpec, fit, resolve_accelerator, resume_position
from matchforge.training.options import strip_options
from matchforge.training.fingerprint import files_digest
from matchforge.io.write import write_json, save_figure
from matchforge.shiftfocal.config import ShiftFocalTrain

log = logging.getLogger(__name__)


BIAS_INIT = {"shift": 0.275, "focal": 0.925, "scale": 0.3}


def collate(samples: list[Sample], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad to the largest cloud: ``coords`` (B, N, 3), ``feats`` (B, N, C), ``mask`` (B, N), ``target`` (B,)."""
    n = max(len(s.coords) for s in samples)
    c = samples[0].feats.shape[1]
    coords = np.zeros((len(samples), n, 3), np.float32)
    feats = np.zeros((len(samples), n, c), np.float32)
    mask = np.zeros((len(samples), n), bool)
    for i, s in enumerate(samples):
        coords[i, : len(s.coords)] = s.coords
        feats[i, : len(s.feats)] = s.feats
        mask[i, : len(s.coords)] = True
    tgt = np.array([s.target for s in samples], np.float32)
    return tuple(torch.from_numpy(a).to(device) for a in (coords, feats, mask, tgt))  # type: ignore[return-value]


def split_items(items: list[DataItem], val_fraction: float, seed: int) -> tuple[list[DataItem], list[DataItem]]:
    """Train/validation split of the training items; with one item, it validates on itself."""
    if len(items) < 2 or val_fraction <= 0:
        return items, items
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = max(1, round(val_fraction * len(items)))
    val = [items[i] for i in sorted(order[:n_val])]
    train = [items[i] for i in sorted(order[n_val:])]
    return train, val


def lr_factor(step: int, total: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the base learning rate at ``step`` (decays monotonically to ``min_ratio``)."""
    t = min(step / max(total, 1), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - (1.0 - min_ratio) * t
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


class ItemCache:
    """Loaded depth maps (the generated sets are small; load each once)."""

    def __init__(self, items: list[DataItem]):
        self.items = items
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self._cache:
            depth, K, _ = self.items[i].load()
            self._cache[i] = (depth, K)
        return self._cache[i]


def target_channels(conf: ShiftFocalTrain, target: str) -> int:
    return conf.focal_channels if target == "focal" else conf.shift_channels


def model_config(conf: ShiftFocalTrain, target: str) -> ModelConfig:
    return ModelConfig(in_channels=target_channels(conf, target), resolution=conf.resolution,
                       channels=list(conf.channels), bias_init=BIAS_INIT[target], norm=conf.norm)


def sample_kwargs(conf: ShiftFocalTrain) -> dict:
    return {"num_points": conf.num_points, "focal_with_shift": conf.focal_with_shift, "scale_unit": conf.scale_unit}


class StepBatches(torch.utils.data.Dataset):
    """Item ``step`` is the training batch of that step: ``batch_size`` items drawn and distorted with
    ``rng([seed, step])``, so a resumed run sees exactly the batches an uninterrupted one would."""

    def __init__(self, conf: ShiftFocalTrain, target: str, items: list[DataItem]):
        self.conf, self.target, self.cache = conf, target, ItemCache(items)
        self.channels, self.kw = target_channels(conf, target), sample_kwargs(conf)

    def __len__(self) -> int:
        return self.conf.steps

    def __getitem__(self, step: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.conf.seed, step])
        picks = rng.integers(0, len(self.cache), self.conf.batch_size)
        batch = [make_sample(*self.cache.get(int(i)), self.target, self.channels, rng, **self.kw) for i in picks]
        return collate(batch, torch.device("cpu"))


class ShiftFocalModule(L.LightningModule):
    """One network (focal, shift or scale) regressing its target with an L1 loss; keeps the weights of
    the best validation L1 (in the checkpoint too, so a resumed run keeps the best so far)."""

    def __init__(self, model: torch.nn.Module, conf: ShiftFocalTrain) -> None:
        super().__init__()
        self.model, self.conf = model, conf
        self.best_val, self.best_state = math.inf, None
        self._val: list[torch.Tensor] = []

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        coords, feats, mask, tgt = batch
        loss = (self.model(coords, feats, mask) - tgt).abs().mean()
        self.log("train/loss", loss.detach(), batch_size=len(tgt))
        self.log("lr", self.optimizers().param_groups[0]["lr"])
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        coords, feats, mask, tgt = batch
        self._val.append((self.model(coords, feats, mask) - tgt).abs().float().cpu())

    def on_validation_epoch_end(self) -> None:
        v = float(torch.cat(self._val).mean())
        self._val.clear()
        self.log("val/loss", v)
        if v < self.best_val:
            self.best_val, self.best_state = v, {k: t.detach().cpu().clone() for k, t in self.model.state_dict().items()}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["best"] = {"val": self.best_val, "state": self.best_state}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.best_val, self.best_state = checkpoint["best"]["val"], checkpoint["best"]["state"]

    def configure_optimizers(self) -> dict:
        conf = self.conf
        params = [p for p in self.model.parameters() if p.requires_grad]
        if conf.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=conf.lr, momentum=0.9, weight_decay=conf.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=conf.lr, weight_decay=conf.weight_decay)
        steps = conf.steps
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps, conf.schedule, conf.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@torch.no_grad()
def validate(model: torch.nn.Module, val: list[Sample], batch_size: int) -> float:
    """Mean L1 of ``model`` on fixed validation clouds (eval mode, on the model's device)."""
    device = next(model.parameters()).device
    model.eval()
    errs = []
    for i in range(0, len(val), batch_size):
        coords, feats, mask, tgt = collate(val[i : i + batch_size], device)
        errs.append((model(coords, feats, mask) - tgt).abs().cpu())
    model.train()
    return float(torch.cat(errs).mean())


def _history(metrics_csv: Path) -> dict[str, list[list[float]]]:
    """``{train_loss, val_loss, lr}`` as [step, value] lists (steps counted from 1) from the merged table."""
    import pandas as pd

    df = pd.read_csv(metrics_csv) if metrics_csv.stat().st_size > 1 else pd.DataFrame({"step": []})
    out = {}
    for key, col in (("train_loss", "train/loss"), ("val_loss", "val/loss"), ("lr", "lr")):
        d = df[["step", col]].dropna() if col in df else pd.DataFrame({"step": [], col: []})
        out[key] = [[int(s) + (col != "val/loss"), float(v)] for s, v in zip(d["step"], d[col])]
    return out


def train_target(conf: ShiftFocalTrain, target: str, items: list[DataItem], out: Path, data_fingerprint: str) -> dict:
    """Train one network; returns its history and writes ``<out>/<target>.pt``."""
    if target == "scale":
        items = [i for i in items if i.metric]
        if not items:
            raise MatchforgeError("target 'scale' needs metric depth, but every source is a matchforge scene (SfM units)",
                                  fix="drop 'scale' from targets or add an RGB-D source", path=out)
    train_items, val_items = split_items(items, conf.val_fraction, conf.seed)
    channels = target_channels(conf, target)
    kw = sample_kwargs(conf)
    val_cache = ItemCache(val_items)
    val_samples = [make_sample(*val_cache.get(i), target, channels, np.random.default_rng([conf.seed, 7, i]), subsample_rng=False, **kw)
                   for i in range(len(val_cache))]
    L.seed_everything(conf.seed)
    model = build_model(model_config(conf, target))
    if conf.init_weights:
        init = require_config_path(Path(conf.init_weights) / f"{target}.pt", f"shiftfocal.runs.{Path(out).name}.train.init_weights",
                                   "the initial weights", "the name of another run under shiftfocal.runs, or its folder (focal.pt, shift.pt)")
        model.load_state_dict(load_model(init).state_dict())
        log.info("%s: initialised from %s", target, init)
    val_loss0 = validate(model, val_samples, conf.batch_size)
    train_set = StepBatches(conf, target, train_items)
    val_batches = torch.utils.data.DataLoader(
        [collate(val_samples[i : i + conf.batch_size], torch.device("cpu")) for i in range(0, len(val_samples), conf.batch_size)],
        batch_size=None)

    def train_loader(trainer: L.Trainer) -> ResumableLoader:
        loader = ResumableLoader(train_set, [[s] for s in range(conf.steps)], collate_fn=lambda b: b[0])
        return resume_position(loader, trainer)

    identity = {"target": target, "options": strip_options(conf.to_dict())}
    spec = RunSpec(out_dir=out / target, name=f"shift/focal {target}", identity=identity,
                   data_fingerprint=data_fingerprint, engine=conf, max_steps=conf.steps, max_epochs=1,
                   checkpoint_every_n_steps=conf.checkpoint_every,
                   val_check_interval=min(conf.val_every, conf.steps), check_val_every_n_epoch=1)
    module = ShiftFocalModule(model, conf)
    result = fit(module, train_loader, val_batches, spec)
    merge_logs(out / target / "logs", out / target / "metrics.csv")
    history = _history(out / target / "metrics.csv")
    history["val_loss"].insert(0, [0, val_loss0])
    best_val, best_state = module.best_val, module.best_state
    if best_state is None:
        best_state = {k: t.detach().cpu() for k, t in model.state_dict().items()}
        best_val = validate(model, val_samples, conf.batch_size)
    if result.trainer.is_global_zero:
        torch.save({"target": target, "model_config": model_config(conf, target).to_dict(), "state_dict": best_state,
                    "train_conf": conf.to_dict(), "best_val_l1": best_val}, out / f"{target}.pt")
    val_targets = np.array([s.target for s in val_samples])
    rng = np.random.default_rng([conf.seed, 11])  # the mean training target, from fresh samples
    train_mean = float(np.mean([make_sample(*train_set.cache.get(i % len(train_set.cache)), target, channels, rng, **kw).target
                                for i in range(16)]))
    return {"best_val_l1": best_val, "val_l1_initial": val_loss0,
            "val_l1_constant_mean": float(np.mean(np.abs(val_targets - train_mean))),
            "train_target_mean": train_mean, "num_train": len(train_items), "num_val": len(val_items),
            "seconds": result.seconds, "resumed_from": result.resumed_from or 0, "global_step": result.global_step,
            "history": history}


def plot_curves(metrics: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(metrics["targets"])
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 3.5), squeeze=False)
    for ax, t in zip(axes[0], targets):
        h = metrics["targets"][t]["history"]
        if h["train_loss"]:
            s, l = zip(*h["train_loss"])
            ax.plot(s, l, alpha=0.5, label="train L1")
        if h["val_loss"]:
            s, l = zip(*h["val_loss"])
            ax.plot(s, l, "o-", label="val L1")
        ax.axhline(metrics["targets"][t]["val_l1_constant_mean"], ls="--", c="gray", label="val L1, constant predictor")
        ax.set_title(t)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def main(conf: ShiftFocalTrain | dict[str, Any], data_dirs: list[str | Path], out: str | Path) -> dict:
    """Train every target of ``conf.targets`` on the 'train' items of ``data_dirs``; write ``out``."""
    flush_denormals()
    conf = ShiftFocalTrain.of(conf)  # parsed once (run() passes it parsed); everything below takes the typed config
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = [i for d in data_dirs for i in list_items(d, "train")]
    if not items:
        raise MatchforgeError("no training items", fix="check the sources of this run (every item may be held out: lower holdout)", path=", ".join(map(str, data_dirs)))
    log.info("training on %d items", len(items))
    fingerprint = files_digest(Path(d) / "index.json" for d in data_dirs)  # the items and their split
    metrics = {"accelerator": resolve_accelerator(conf.accelerator), "conf": conf.to_dict(),
               "data": [str(d) for d in data_dirs], "targets": {}}
    for target in conf.targets:
        metrics["targets"][target] = train_target(conf, target, items, out, fingerprint)
        log.info("%s: best val L1 %.4f (constant predictor %.4f)", target,
                 metrics["targets"][target]["best_val_l1"], metrics["targets"][target]["val_l1_constant_mean"])
    write_json(out / "metrics.json", metrics, indent=1)
    plot_curves(metrics, out / "curves.png")
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="shiftfocal-data output folders")
    parser.add_argument("--out", required=True, help="run folder (results/models/shiftfocal/{run})")
    parser.add_argument("--conf", help="JSON or YAML over the defaults (config/README.md, shiftfocal.train)")
    parser.add_argument("--engine", default=None, help="options that do not change what is learned (workers, devices, checkpoint and log "
                        "frequency), as JSON merged over --conf; the workflow passes them apart so that editing them reruns nothing")


def run(args: argparse.Namespace) -> None:
    main(ShiftFocalTrain.of(load_conf(args.engine, load_conf(args.conf)), "shiftfocal-train --conf"), args.data, args.out)
