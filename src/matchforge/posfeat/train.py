"""``matchforge posfeat-train --stage desc|kp``: train the PoSFeat description net, then the detection net.

Stage ``desc`` optimises the description net with the line-to-window epipolar loss (detection net frozen
at its initialisation); stage ``kp`` loads the description checkpoint, freezes it, and optimises the
detection net with the DISK-style epipolar reward. Supervision is only K and the world->camera poses.

Training runs on the shared engine (:mod:`matchforge.training.engine`: Lightning, resume policy,
checkpoints, signals). Outputs, under ``<out>/<stage>/``: ``model.pt`` (final: both nets + conf),
``checkpoints/`` (resume state), ``metrics.csv`` (per-step loss and diagnostics), ``curve.png`` and
``vis/step_*.png``. ``init_weights`` (another run's ``model.pt``) starts the desc stage from its nets.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch

from matchforge.conf import load_conf
from matchforge.errors import MatchforgeError
from matchforge.config_check import require_config_path
from matchforge.dataset.indices import PairRecord
from matchforge.posfeat.data import PairDataset, StepBatchSampler, pairs_from_caps, pairs_from_dataset
from matchforge.geometry.epipolar import fundamental_from_poses
from matchforge.posfeat.losses import DiskLossConfig, EpipolarLossConfig, disk_loss, epipolar_loss, random_grid_points
from matchforge.posfeat.networks import PoSFeat, build_model, load_checkpoint, normalize
from matchforge.posfeat.visualize import snapshot
from matchforge.training.curves import merge_logs, plot_curves
from matchforge.training.engine import ResumableLoader, RunSpec, fit, resume_position
from matchforge.training.options import strip_options
from matchforge.training.fingerprint import files_digest
from matchforge.io.write import write_json
from matchforge.posfeat.config import DescStage, KpStage, PoSFeatRunConfig

log = logging.getLogger(__name__)

STAGES = ("desc", "kp")


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


def make_optimizer(params: list[torch.nn.Parameter], sconf: DescStage | KpStage) -> torch.optim.Optimizer:
    if sconf.optimizer == "adam":
        return torch.optim.Adam(params, lr=sconf.lr)
    return torch.optim.SGD(params, lr=sconf.lr, momentum=sconf.momentum)


def stage_loss(model: PoSFeat, batch: dict[str, torch.Tensor], stage: str, sconf: DescStage | KpStage,
               generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch (images already augmented, in [0, 1]) for ``stage``."""
    img0, img1 = batch["image0"], batch["image1"]
    B, _, H, W = img0.shape
    Fm = fundamental_from_poses(batch["K0"].double(), batch["K1"].double(), batch["T0"].double(),
                                batch["T1"].double()).float()
    if stage == "desc":
        both = model.desc(normalize(torch.cat([img0, img1])))
        d0, d1 = both["local_map"][:B], both["local_map"][B:]
        q0 = random_grid_points(B, H, W, sconf.grid_size, generator, img0.device)
        q1 = random_grid_points(B, H, W, sconf.grid_size, generator, img0.device)
        cfg = EpipolarLossConfig(sconf.temperature, sconf.line_samples, sconf.window_size,
                                 sconf.loc_rand, sconf.cost_thr)
        return epipolar_loss(d0, d1, Fm, W, H, cfg, q0, q1, generator)
    with torch.no_grad():
        both = model.desc(normalize(torch.cat([img0, img1])))
    score = model.det(normalize(torch.cat([img0, img1])), both["local_map"], both["local_map_small"])
    cfg = DiskLossConfig(sconf.cell, sconf.temperature, sconf.reward_thr, sconf.reward_pos,
                         sconf.reward_neg, sconf.kp_penalty)
    return disk_loss(score[:B], score[B:], both["local_map"][:B], both["local_map"][B:], Fm, cfg)


class PoSFeatModule(L.LightningModule):
    """One PoSFeat stage: the stage's net trains, the other stays frozen in eval mode."""

    def __init__(self, model: PoSFeat, conf: PoSFeatRunConfig, stage: str, vis_batch: dict[str, torch.Tensor],
                 vis_dir: Path) -> None:
        super().__init__()
        self.model, self.conf, self.stage, self.sconf = model, conf, stage, getattr(conf, stage)
        self.vis_batch, self.vis_dir = vis_batch, vis_dir
        jit = conf.data.color_jitter
        self.jitter = None
        if any((jit.brightness, jit.contrast, jit.saturation, jit.hue)):
            import kornia.augmentation as KA

            self.jitter = KA.ColorJitter(jit.brightness, jit.contrast, jit.saturation, jit.hue, p=1.0)

    def on_train_epoch_start(self) -> None:
        set_modes(self.model, self.stage)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        step, seed = self.global_step, self.sconf.seed
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        if self.jitter is not None:
            torch.manual_seed(seed * 1_000_003 + step)
            batch["image0"] = self.jitter(batch["image0"]).clamp(0, 1)
            batch["image1"] = self.jitter(batch["image1"]).clamp(0, 1)
        loss, stats = stage_loss(self.model, batch, self.stage, self.sconf, gen)
        if not loss.requires_grad:  # no sampled keypoint this step: a zero-gradient step keeps steps aligned
            loss = loss + sum(p.sum() * 0.0 for p in self.model.parameters() if p.requires_grad)
        self.log("train/loss", loss.detach(), batch_size=batch["image0"].shape[0])
        for k, v in stats.items():
            self.log(f"train/{k}", float(v), batch_size=batch["image0"].shape[0])
        self.log("lr", self.optimizers().param_groups[0]["lr"])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = self.global_step
        if self.trainer.is_global_zero and (step % self.sconf.vis_every == 0 or step == self.sconf.steps):
            vis = {k: v.to(self.device) for k, v in self.vis_batch.items()}
            stats = snapshot(self.model, vis, self.vis_dir / f"step_{step:07d}.png", f"PoSFeat {self.stage}, step {step}",
                             use_sift=self.stage == "desc")
            for k, v in stats.items():
                self.log(f"vis/{k}", float(v), rank_zero_only=True)
            set_modes(self.model, self.stage)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        optim = make_optimizer(params, self.sconf)
        sched = torch.optim.lr_scheduler.StepLR(optim, step_size=self.sconf.lr_step, gamma=self.sconf.lr_gamma)
        return {"optimizer": optim, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def initial_model(conf: PoSFeatRunConfig, stage: str, out_dir: Path, init: str | Path | None) -> PoSFeat:
    """desc: ``init_weights`` (another run's model.pt) or a fresh model (ImageNet backbone from
    ``model.pretrained``); kp: the desc stage's model (``init``, default ``<out>/desc/model.pt``)."""
    if stage == "kp":
        return load_checkpoint(Path(init) if init else out_dir / "desc" / "model.pt")[0]
    model = build_model(conf.model)
    if conf.init_weights:
        require_config_path(conf.init_weights, f"posfeat.runs.{out_dir.name}.train.init_weights", "the initial weights",
                            "the name of another run under posfeat.runs, or its kp/model.pt")
        src, src_conf = load_checkpoint(conf.init_weights)
        if (src_conf["model"]["arch"], src_conf["model"]["desc_dim"]) != (conf.model.arch, conf.model.desc_dim):
            raise MatchforgeError(
                f"init_weights {conf.init_weights} is a {src_conf['model']['arch']} with {src_conf['model']['desc_dim']}-d "
                f"descriptors, this run a {conf.model.arch} with {conf.model.desc_dim}",
                fix="set the run's model.arch and model.desc_dim to those of the initial weights", path=conf.init_weights)
        model.load_state_dict(src.state_dict())
        log.info("desc stage initialised from %s", conf.init_weights)
    return model


def pairs_fingerprint(pairs: Sequence[PairRecord]) -> str:
    """The training pairs themselves: images (by path), intrinsics and poses."""
    rows = [(str(p.image0), str(p.image1), np.asarray(p.K0).round(6).tolist(), np.asarray(p.K1).round(6).tolist(),
             np.asarray(p.T0).round(6).tolist(), np.asarray(p.T1).round(6).tolist()) for p in pairs]
    import hashlib

    return hashlib.blake2b(json.dumps(rows).encode(), digest_size=16).hexdigest()


def main(conf: PoSFeatRunConfig | dict[str, Any], stage: str, pairs: Sequence[PairRecord], out_dir: str | Path,
         init: str | Path | None = None) -> dict[str, Any]:
    """Train ``stage`` on ``pairs``; returns a summary (steps, first/last mean losses, seconds).

    ``out_dir`` is the run folder (``results/models/posfeat/<run>``); ``init`` is the description-stage
    ``model.pt`` (needed by stage ``kp``; default ``<out_dir>/desc/model.pt``). A signal during training
    raises :class:`matchforge.training.engine.TrainingInterrupted` after writing a checkpoint.
    """
    if stage not in STAGES:
        raise MatchforgeError(f"unknown PoSFeat stage '{stage}'", fix="use --stage desc or --stage kp")
    conf = PoSFeatRunConfig.of(conf)  # parsed once (run() passes it parsed); everything below takes the typed config
    sconf, tconf = getattr(conf, stage), conf.trainer
    out = Path(out_dir) / stage
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(sconf.seed, workers=True)
    model = initial_model(conf, stage, Path(out_dir), init)
    set_modes(model, stage)
    dataset = PairDataset(pairs, tuple(conf.data.image_size), conf.data.rot_thr)
    vis_batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=1)))
    data_fp = pairs_fingerprint(pairs)
    if stage == "kp":  # the kp stage also learns from the desc model it starts from
        data_fp += "+" + files_digest([Path(init) if init else Path(out_dir) / "desc" / "model.pt"])
    identity = {"stage": stage, "model": conf.model.to_dict(), "data": strip_options(conf.data.to_dict()),
                stage: strip_options(sconf.to_dict()), "init_weights": conf.init_weights if stage == "desc" else None,
                "precision": tconf.precision, "gradient_clip_val": tconf.gradient_clip_val}

    def train_loader(trainer: L.Trainer) -> ResumableLoader:
        batches = StepBatchSampler(len(dataset), sconf.batch_size, 0, sconf.steps, sconf.seed)
        loader = ResumableLoader(dataset, batches, num_workers=conf.data.num_workers,
                                 pin_memory=torch.cuda.is_available())
        return resume_position(loader, trainer)

    spec = RunSpec(out_dir=out, name=f"PoSFeat {stage}", identity=identity, data_fingerprint=data_fp, engine=tconf,
                   max_steps=sconf.steps, max_epochs=1, checkpoint_every_n_steps=sconf.ckpt_every, has_val=False)
    module = PoSFeatModule(model, conf, stage, vis_batch, out / "vis")
    result = fit(module, train_loader, None, spec)
    merge_logs(out / "logs", out / "metrics.csv")
    plot_curves(out / "metrics.csv", out / "curve.png", [("loss", ["train/loss"]), ("learning rate", ["lr"])],
                title=f"PoSFeat {stage}")
    summary: dict[str, Any] = {"stage": stage, "step": result.global_step, "steps": sconf.steps,
                               "resumed_from": result.resumed_from or 0, "seconds": result.seconds,
                               "accelerator": result.accelerator, "precision": tconf.precision,
                               "num_pairs": len(dataset)}
    import pandas as pd

    losses = pd.read_csv(out / "metrics.csv")["train/loss"].dropna().to_numpy() if (out / "metrics.csv").stat().st_size > 1 else []
    if len(losses):
        n = max(1, min(10, len(losses) // 4))
        summary["loss_first"], summary["loss_last"] = float(np.mean(losses[:n])), float(np.mean(losses[-n:]))
    if result.trainer.is_global_zero:
        torch.save({"model": model.state_dict(), "conf": conf.to_dict(), "stage": stage, "step": result.global_step}, out / "model.pt")
        write_json(out / "summary.json", summary, indent=2)
    log.info("PoSFeat %s: %s", stage, summary)
    return summary


def training_pairs(conf: PoSFeatRunConfig, dataset: str | None, caps_root: str | None) -> list[PairRecord]:
    """Pairs from a matchforge ``dataset.json`` (train split) and/or a CAPS MegaDepth root."""
    pairs: list[PairRecord] = []
    if dataset:
        pairs += pairs_from_dataset(dataset, "train", conf.data.min_overlap)
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
    parser.add_argument("--engine", default=None, help="options that do not change what is learned (workers, devices, checkpoint and log "
                        "frequency), as JSON merged over --conf; the workflow passes them apart so that editing them reruns nothing")


def run(args: argparse.Namespace) -> None:
    conf = PoSFeatRunConfig.of(load_conf(args.engine, load_conf(args.conf)), "posfeat-train --conf")
    main(conf, args.stage, training_pairs(conf, args.dataset, args.caps_root), args.out, args.init)
