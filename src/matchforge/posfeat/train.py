"""``matchforge posfeat-train --stage desc|kp``: train the PoSFeat description net, then the detection net.

Stage ``desc`` optimises the description net with the line-to-window epipolar loss (detection net frozen
at its initialisation); stage ``kp`` loads the description checkpoint, freezes it, and optimises the
detection net with the DISK-style epipolar reward. Supervision is only K and the world->camera poses.

Outputs, under ``<out>/<stage>/``: ``model.pt`` (final: both nets + conf), ``last.pt`` (resume state,
written every ``ckpt_every`` steps), ``history.csv`` (per-step loss and diagnostics), ``vis/step_*.png``.
A rerun with the same options continues from ``last.pt``; changed options start over.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from matchforge.conf import load_conf, to_json
from matchforge.errors import MatchforgeError
from matchforge.posfeat.data import PairDataset, PairSample, StepBatchSampler, pairs_from_caps, pairs_from_dataset
from matchforge.posfeat.geometry import fundamental_from_poses
from matchforge.posfeat.losses import DiskLossConfig, EpipolarLossConfig, disk_loss, epipolar_loss, random_grid_points
from matchforge.posfeat.networks import PoSFeat, build_model, load_checkpoint, normalize, pick_device
from matchforge.posfeat.visualize import snapshot

log = logging.getLogger(__name__)

STAGES = ("desc", "kp")

# Defaults used when the CLI runs without the workflow (the workflow passes the validated config).
DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "model": {"arch": "resnet50", "desc_dim": 128, "pretrained": None},
    "data": {"image_size": [640, 480], "rot_thr": 80.0, "min_overlap": 0.0, "num_workers": 2,
             "color_jitter": {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.4}},
    "desc": {"steps": 100000, "batch_size": 8, "optimizer": "adam", "lr": 1e-4, "lr_step": 90000, "lr_gamma": 0.1,
             "grid_size": 16, "temperature": 60.0, "line_samples": 100, "window_size": 0.1, "loc_rand": 0.707,
             "cost_thr": 0.1, "vis_every": 1000, "ckpt_every": 1000, "seed": 0},
    "kp": {"steps": 5000, "batch_size": 6, "optimizer": "sgd", "lr": 1e-3, "lr_step": 4000, "lr_gamma": 0.1,
           "cell": 8, "temperature": 60.0, "reward_thr": 2.0, "reward_pos": 1.0, "reward_neg": -0.25,
           "kp_penalty": -0.001, "vis_every": 500, "ckpt_every": 500, "seed": 0},
}


def set_modes(model: PoSFeat, stage: str) -> list[torch.nn.Parameter]:
    """Train mode + gradients for the stage's net only; the other runs in eval mode (frozen BatchNorm)."""
    train_net, frozen_net = (model.desc, model.det) if stage == "desc" else (model.det, model.desc)
    train_net.train()
    frozen_net.eval()
    for p in frozen_net.parameters():
        p.requires_grad_(False)
    for p in train_net.parameters():
        p.requires_grad_(True)
    return list(train_net.parameters())


def make_optimizer(params: list[torch.nn.Parameter], sconf: dict[str, Any]) -> torch.optim.Optimizer:
    if sconf["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=sconf["lr"])
    return torch.optim.SGD(params, lr=sconf["lr"], momentum=sconf.get("momentum", 0.0))


def stage_loss(model: PoSFeat, batch: dict[str, torch.Tensor], stage: str, sconf: dict[str, Any],
               generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch (images already augmented, in [0, 1]) for ``stage``."""
    img0, img1 = batch["image0"], batch["image1"]
    B, _, H, W = img0.shape
    Fm = fundamental_from_poses(batch["K0"].double(), batch["K1"].double(), batch["T0"].double(),
                                batch["T1"].double()).float()
    if stage == "desc":
        both = model.desc(normalize(torch.cat([img0, img1])))
        d0, d1 = both["local_map"][:B], both["local_map"][B:]
        q0 = random_grid_points(B, H, W, sconf["grid_size"], generator, img0.device)
        q1 = random_grid_points(B, H, W, sconf["grid_size"], generator, img0.device)
        cfg = EpipolarLossConfig(sconf["temperature"], sconf["line_samples"], sconf["window_size"],
                                 sconf["loc_rand"], sconf["cost_thr"])
        return epipolar_loss(d0, d1, Fm, W, H, cfg, q0, q1, generator)
    with torch.no_grad():
        both = model.desc(normalize(torch.cat([img0, img1])))
    score = model.det(normalize(torch.cat([img0, img1])), both["local_map"], both["local_map_small"])
    cfg = DiskLossConfig(sconf["cell"], sconf["temperature"], sconf["reward_thr"], sconf["reward_pos"],
                         sconf["reward_neg"], sconf["kp_penalty"])
    return disk_loss(score[:B], score[B:], both["local_map"][:B], both["local_map"][B:], Fm, cfg)


def _fingerprint(conf: dict[str, Any], stage: str) -> str:
    """Options that define a stage's training run (a resume state with other options is not reused)."""
    keep = {"model": conf["model"], "data": {k: v for k, v in conf["data"].items() if k != "num_workers"},
            stage: {k: v for k, v in conf[stage].items() if k not in ("vis_every", "ckpt_every")}}
    return to_json(keep)


def main(conf: dict[str, Any], stage: str, pairs: Sequence[PairSample], out_dir: str | Path,
         init: str | Path | None = None, stop_after: int | None = None) -> dict[str, Any]:
    """Train ``stage`` on ``pairs``; returns a summary (steps, first/last mean losses, seconds).

    ``out_dir`` is the run folder (``results/models/posfeat/<run>``); ``init`` is the description-stage
    ``model.pt`` (needed by stage ``kp``; default ``<out_dir>/desc/model.pt``). ``stop_after`` ends this
    call after that many steps without writing ``model.pt`` (simulates an interruption).
    """
    if stage not in STAGES:
        raise MatchforgeError(f"unknown PoSFeat stage '{stage}'", fix="use --stage desc or --stage kp")
    sconf = conf[stage]
    out = Path(out_dir) / stage
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(conf.get("device", "auto"))
    torch.manual_seed(sconf["seed"])

    if stage == "desc":
        model = build_model(conf["model"])
    else:
        init = Path(init) if init else Path(out_dir) / "desc" / "model.pt"
        model, _ = load_checkpoint(init)
    model.to(device)
    params = set_modes(model, stage)
    optim = make_optimizer(params, sconf)
    sched = torch.optim.lr_scheduler.StepLR(optim, step_size=sconf["lr_step"], gamma=sconf["lr_gamma"])

    start, history = 0, []
    fp = _fingerprint(conf, stage)
    last = out / "last.pt"
    if last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            optim.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            start, history = state["step"], state["history"]
            log.info("PoSFeat %s: resuming from step %d (%s)", stage, start, last)
        else:
            log.warning("PoSFeat %s: %s was written with other options; starting over", stage, last)

    dataset = PairDataset(pairs, tuple(conf["data"]["image_size"]), conf["data"]["rot_thr"])
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=StepBatchSampler(len(dataset), sconf["batch_size"], start, sconf["steps"], sconf["seed"]),
        num_workers=conf["data"]["num_workers"], pin_memory=device.type == "cuda")
    jit = conf["data"]["color_jitter"]
    jitter = None
    if any(jit.values()):
        import kornia.augmentation as KA

        jitter = KA.ColorJitter(jit["brightness"], jit["contrast"], jit["saturation"], jit["hue"], p=1.0)
    vis_batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=1)))

    def save_state(step: int) -> None:
        tmp = last.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optim.state_dict(), "scheduler": sched.state_dict(),
                    "step": step, "history": history, "fingerprint": fp}, tmp)
        tmp.replace(last)

    t0 = time.time()
    step = start
    bar = tqdm(loader, total=len(loader), initial=0, desc=f"posfeat {stage}", mininterval=5)
    for batch in bar:
        if stop_after is not None and step - start >= stop_after:
            break
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        gen = torch.Generator().manual_seed(sconf["seed"] * 1_000_003 + step)
        if jitter is not None:
            torch.manual_seed(sconf["seed"] * 1_000_003 + step)
            batch["image0"] = jitter(batch["image0"]).clamp(0, 1)
            batch["image1"] = jitter(batch["image1"]).clamp(0, 1)
        loss, stats = stage_loss(model, batch, stage, sconf, gen)
        optim.zero_grad(set_to_none=True)
        if loss.requires_grad:
            loss.backward()
            optim.step()
        sched.step()
        step += 1
        history.append({"step": step, "loss": float(loss.detach()), "lr": optim.param_groups[0]["lr"], **stats})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
        if step % sconf["vis_every"] == 0 or step == sconf["steps"]:
            history[-1].update(snapshot(model, vis_batch, out / "vis" / f"step_{step:07d}.png",
                                        f"PoSFeat {stage}, step {step}", use_sift=stage == "desc"))
            set_modes(model, stage)
        if step % sconf["ckpt_every"] == 0 or step == sconf["steps"]:
            save_state(step)
    save_state(step)
    _write_history(out / "history.csv", history)
    summary = {"stage": stage, "step": step, "steps": sconf["steps"], "resumed_from": start,
               "seconds": time.time() - t0, "device": str(device), "num_pairs": len(dataset)}
    if history:
        n = max(1, min(10, len(history) // 4))
        summary["loss_first"] = float(np.mean([h["loss"] for h in history[:n]]))
        summary["loss_last"] = float(np.mean([h["loss"] for h in history[-n:]]))
    if step >= sconf["steps"]:
        torch.save({"model": model.state_dict(), "conf": conf, "stage": stage, "step": step}, out / "model.pt")
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info("PoSFeat %s: %s", stage, summary)
    return summary


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for h in history:
        keys += [k for k in h if k not in keys]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)


def training_pairs(conf: dict[str, Any], dataset: str | None, caps_root: str | None) -> list[PairSample]:
    """Pairs from a matchforge ``dataset.json`` (train split) and/or a CAPS MegaDepth root."""
    pairs: list[PairSample] = []
    if dataset:
        pairs += pairs_from_dataset(dataset, "train", conf["data"]["min_overlap"])
    if caps_root:
        pairs += pairs_from_caps(caps_root)
    if not pairs:
        raise MatchforgeError("no training pairs", fix="pass --dataset results/datasets/<name>/dataset.json "
                              "and/or --caps-root <CAPS MegaDepth train folder>", path=dataset or caps_root)
    return pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", choices=STAGES, required=True)
    parser.add_argument("--out", required=True, help="run folder, e.g. results/models/posfeat/<run>")
    parser.add_argument("--dataset", help="matchforge dataset.json (its train split is used)")
    parser.add_argument("--caps-root", help="CAPS MegaDepth 'train' folder (img_cam.txt + pairs.txt per scene)")
    parser.add_argument("--init", help="description-stage model.pt for --stage kp (default <out>/desc/model.pt)")
    parser.add_argument("--conf", help="options as inline JSON or a YAML file, merged over the defaults")


def run(args: argparse.Namespace) -> None:
    conf = load_conf(args.conf, DEFAULTS)
    main(conf, args.stage, training_pairs(conf, args.dataset, args.caps_root), args.out, args.init)
