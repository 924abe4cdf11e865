"""``matchforge shiftfocal-train``: train the shift and focal (and optionally scale) networks of one run.

One network per target, trained one after the other, each with an L1 loss on distortions sampled per
item (see :mod:`matchforge.shiftfocal.sampling`), a validation split with fixed distortions, a
learning rate that decays (cosine or linear to ``lr * min_lr_ratio``), checkpoints every
``checkpoint_every`` steps under ``<out>/ckpt/`` and resume from them (same options only).

Outputs in ``<out>``: ``<target>.pt`` (best validation weights + model config), ``metrics.json``,
``curves.png``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from matchforge.conf import load_conf, to_json
from matchforge.errors import MatchforgeError
from matchforge.shiftfocal.model import ModelConfig, build_model, flush_denormals
from matchforge.shiftfocal.sampling import DataItem, Sample, list_items, make_sample

log = logging.getLogger(__name__)

DEFAULTS: dict = {
    "targets": ["focal", "shift"],
    "steps": 2000,
    "batch_size": 4,
    "lr": 1e-3,
    "min_lr_ratio": 0.01,
    "schedule": "cosine",
    "optimizer": "adamw",
    "weight_decay": 1e-4,
    "num_points": 20000,
    "resolution": 64,
    "channels": [32, 32, 64, 128, 256],
    "norm": "group",
    "focal_channels": 5,
    "shift_channels": 3,
    "focal_with_shift": True,
    "scale_unit": 10.0,
    "val_fraction": 0.1,
    "val_every": 100,
    "checkpoint_every": 200,
    "seed": 0,
    "device": "auto",
}

BIAS_INIT = {"shift": 0.275, "focal": 0.925, "scale": 0.3}


def pick_device(name: str = "auto") -> torch.device:
    """CUDA when available (or asked), else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def target_channels(conf: dict, target: str) -> int:
    return conf["focal_channels"] if target == "focal" else conf["shift_channels"]


def model_config(conf: dict, target: str) -> ModelConfig:
    return ModelConfig(in_channels=target_channels(conf, target), resolution=conf["resolution"],
                       channels=list(conf["channels"]), bias_init=BIAS_INIT[target], norm=conf["norm"])


def sample_kwargs(conf: dict) -> dict:
    return {"num_points": conf["num_points"], "focal_with_shift": conf["focal_with_shift"], "scale_unit": conf["scale_unit"]}


@torch.no_grad()
def validate(model: torch.nn.Module, val: list[Sample], device: torch.device, batch_size: int) -> float:
    model.eval()
    errs = []
    for i in range(0, len(val), batch_size):
        coords, feats, mask, tgt = collate(val[i : i + batch_size], device)
        errs.append((model(coords, feats, mask) - tgt).abs().cpu())
    model.train()
    return float(torch.cat(errs).mean())


def train_target(conf: dict, target: str, items: list[DataItem], out: Path, device: torch.device) -> dict:
    """Train one network; returns its history and writes ``<out>/<target>.pt``."""
    if target == "scale":
        items = [i for i in items if i.metric]
        if not items:
            raise MatchforgeError("target 'scale' needs metric depth, but every source is a matchforge scene (SfM units)",
                                  fix="drop 'scale' from targets or add an RGB-D source", path=out)
    train_items, val_items = split_items(items, conf["val_fraction"], conf["seed"])
    channels = target_channels(conf, target)
    kw = sample_kwargs(conf)
    val_cache = ItemCache(val_items)
    val_samples = [make_sample(*val_cache.get(i), target, channels, np.random.default_rng([conf["seed"], 7, i]), subsample_rng=False, **kw)
                   for i in range(len(val_cache))]
    torch.manual_seed(conf["seed"])
    model = build_model(model_config(conf, target)).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if conf["optimizer"] == "sgd":
        opt = torch.optim.SGD(params, lr=conf["lr"], momentum=0.9, weight_decay=conf["weight_decay"])
    else:
        opt = torch.optim.AdamW(params, lr=conf["lr"], weight_decay=conf["weight_decay"])
    steps = conf["steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps, conf["schedule"], conf["min_lr_ratio"]))
    ckpt_dir = out / "ckpt"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    conf_hash = hashlib.sha1(to_json({**conf, "target": target, "data": [i.name for i in items]}).encode()).hexdigest()[:12]
    last = ckpt_dir / f"{target}_last.pt"
    history = {"train_loss": [], "val_loss": [], "lr": []}
    best_val, best_state, step = math.inf, None, 0
    if last.exists():
        ck = torch.load(last, map_location=device, weights_only=False)
        if ck.get("conf_hash") == conf_hash:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            step, best_val, best_state, history = ck["step"], ck["best_val"], ck["best_state"], ck["history"]
            log.info("%s: resumed from %s at step %d", target, last, step)
        else:
            log.info("%s: ignoring checkpoint %s (options or data changed)", target, last)
    val_loss0 = validate(model, val_samples, device, conf["batch_size"])
    if step == 0:
        history["val_loss"].append([0, val_loss0])
    train_cache = ItemCache(train_items)
    model.train()
    t0 = time.time()
    train_targets: list[float] = []
    bar = tqdm(range(step, steps), desc=f"shiftfocal-train {target}", disable=None, initial=step, total=steps)
    for step in bar:
        rng = np.random.default_rng([conf["seed"], step])
        picks = rng.integers(0, len(train_cache), conf["batch_size"])
        batch = [make_sample(*train_cache.get(int(i)), target, channels, rng, **kw) for i in picks]
        coords, feats, mask, tgt = collate(batch, device)
        loss = (model(coords, feats, mask) - tgt).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history["lr"].append([step + 1, opt.param_groups[0]["lr"]])
        sched.step()
        history["train_loss"].append([step + 1, float(loss.detach())])
        train_targets.extend(s.target for s in batch)
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        done = step + 1
        if done % conf["val_every"] == 0 or done == steps:
            v = validate(model, val_samples, device, conf["batch_size"])
            history["val_loss"].append([done, v])
            if v < best_val:
                best_val, best_state = v, {k: t.detach().cpu().clone() for k, t in model.state_dict().items()}
        if done % conf["checkpoint_every"] == 0 or done == steps:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                        "step": done, "best_val": best_val, "best_state": best_state, "history": history,
                        "conf_hash": conf_hash}, last)
    if best_state is None:
        best_state = {k: t.detach().cpu() for k, t in model.state_dict().items()}
        best_val = validate(model, val_samples, device, conf["batch_size"])
    torch.save({"target": target, "model_config": model_config(conf, target).to_dict(), "state_dict": best_state,
                "train_conf": conf, "best_val_l1": best_val}, out / f"{target}.pt")
    val_targets = np.array([s.target for s in val_samples])
    if not train_targets:  # resumed after the last step: estimate the mean target from fresh samples
        rng = np.random.default_rng([conf["seed"], 11])
        train_targets = [make_sample(*train_cache.get(i % len(train_cache)), target, channels, rng, **kw).target for i in range(16)]
    train_mean = float(np.mean(train_targets))
    return {"best_val_l1": best_val, "val_l1_initial": val_loss0,
            "val_l1_constant_mean": float(np.mean(np.abs(val_targets - train_mean))),
            "train_target_mean": train_mean, "num_train": len(train_items), "num_val": len(val_items),
            "seconds": time.time() - t0, "history": history}


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
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(conf: dict, data_dirs: list[str | Path], out: str | Path) -> dict:
    """Train every target of ``conf['targets']`` on the 'train' items of ``data_dirs``; write ``out``."""
    flush_denormals()
    conf = {**DEFAULTS, **conf}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = [i for d in data_dirs for i in list_items(d, "train")]
    if not items:
        raise MatchforgeError("no training items", fix="check the sources of this run (every item may be held out: lower holdout)", path=", ".join(map(str, data_dirs)))
    device = pick_device(conf["device"])
    log.info("training on %d items, device %s", len(items), device)
    metrics = {"device": str(device), "conf": conf, "data": [str(d) for d in data_dirs], "targets": {}}
    for target in conf["targets"]:
        metrics["targets"][target] = train_target(conf, target, items, out, device)
        log.info("%s: best val L1 %.4f (constant predictor %.4f)", target,
                 metrics["targets"][target]["best_val_l1"], metrics["targets"][target]["val_l1_constant_mean"])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    plot_curves(metrics, out / "curves.png")
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="shiftfocal-data output folders")
    parser.add_argument("--out", required=True, help="run folder (results/models/shiftfocal/{run})")
    parser.add_argument("--conf", help="JSON or YAML over the defaults: " + ", ".join(DEFAULTS))


def run(args: argparse.Namespace) -> None:
    main(load_conf(args.conf, DEFAULTS), args.data, args.out)
