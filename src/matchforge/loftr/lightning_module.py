"""Lightning 2.x module and data module for LoFTR training (the official recipe).

- Optimiser: AdamW, ``lr = canonical_lr * true_batch_size / canonical_bs`` (true batch size =
  batch_size x devices x nodes), weight decay ``weight_decay``.
- Schedule: linear warm-up per step from ``warmup_ratio * lr`` to ``lr`` over ``warmup_step`` steps
  (default: ``canonical_warmup_step * canonical_bs / true_batch_size``), then ``gamma`` per
  ``milestones`` epoch reached; one per-step ``LambdaLR`` (:func:`lr_factor`), so a resumed run
  continues the schedule mid-epoch.
- Fine-tuning: ``freeze_backbone_steps`` keeps the CNN backbone fixed for the first N steps (its
  gradients are dropped before clipping and the optimiser step, its BatchNorm statistics are not
  updated); the initial weights themselves are loaded by ``matchforge.loftr.train``.
- Logged per step: the losses, the number of ground-truth positives and of predicted and correct
  coarse matches (``train/matches_c``, ``train/correct_c``, see ``count_coarse_matches``).
- Random draws in a training step (the supervision's padding and sampling) are seeded by (seed, step,
  rank), so an interrupted and resumed run trains exactly as an uninterrupted one.
- A non-finite loss is replaced by a zero loss that still touches every parameter, so one bad
  batch neither poisons the weights nor desynchronises DDP ranks.
- Validation runs in eval mode (no ground-truth padding) and logs the losses and the pose AUC.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
from typing import Any, Callable

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader

from matchforge.evaluation.config import PoseScoring
from matchforge.evaluation.pose_metrics import evaluate_pair, pose_auc
from matchforge.loftr.data import PairDataset, SceneBalancedSampler, collate_pairs
from matchforge.loftr.losses import LoFTRLoss
from matchforge.loftr.model import build_model, count_coarse_matches, forward, run_options
from matchforge.loftr.supervision import coarse_supervision, fine_supervision
from matchforge.loftr.config import LoFTRRunConfig
from matchforge.training.engine import ResumableLoader, resume_position
from matchforge.training.options import loader_workers

log = logging.getLogger(__name__)

# Validation estimates poses as a test set with the default scoring options does.
VAL_SCORING = PoseScoring()


def true_batch_size(conf: LoFTRRunConfig) -> int:
    """Pairs per optimiser step over all processes. ``conf``: a run's options with the model defaults filled
    (:func:`matchforge.loftr.model.run_options`), as for every function here: no default is repeated."""
    devices = conf.devices
    n_dev = devices if isinstance(devices, int) and devices > 0 else max(torch.cuda.device_count(), 1)
    return int(conf.batch_size) * n_dev * int(conf.num_nodes)


def scaled_lr_and_warmup(conf: LoFTRRunConfig) -> tuple[float, int]:
    """(true learning rate, warm-up steps) for the true batch size, as upstream ``train.py``."""
    scaling = true_batch_size(conf) / float(conf.canonical_bs)
    lr = float(conf.canonical_lr) * scaling
    warmup = conf.warmup_step
    if warmup is None:
        warmup = math.floor(float(conf.canonical_warmup_step) / scaling)
    return lr, int(warmup)


def lr_factor(conf: LoFTRRunConfig, warmup_step: int, step: int, epoch: int) -> float:
    """Multiplier of the scaled learning rate for global step ``step`` (0-based) in epoch ``epoch``:
    linear warm-up from ``warmup_ratio`` reaching 1 on the last warm-up step, then ``gamma`` per
    milestone epoch reached (upstream's per-step warm-up and epoch-wise ``MultiStepLR``)."""
    if step < warmup_step:
        ratio = float(conf.warmup_ratio)
        return ratio + (1 - ratio) * (step + 1) / warmup_step
    milestones = list(conf.milestones)
    return float(conf.gamma) ** bisect.bisect_right(milestones, epoch)


class LoFTRModule(L.LightningModule):
    """Trains ``self.matcher`` (a kornia LoFTR; checkpoint keys ``matcher.*`` as upstream)."""

    def __init__(self, conf: LoFTRRunConfig) -> None:
        super().__init__()
        self.conf = run_options(conf)
        self.save_hyperparameters({"conf": self.conf.to_dict()})  # plain values: checkpoints load without pickle
        self.matcher = build_model(self.conf)
        self.loss = LoFTRLoss(self.conf)
        self.lr, self.warmup_step = scaled_lr_and_warmup(self.conf)
        self._val: list[dict[str, float]] = []
        self.skipped_steps = 0  # steps whose loss was not finite (this process, since it started or resumed)

    def _step(self, batch: dict[str, Any]) -> dict[str, Any]:
        coarse_supervision(batch, depth_check=bool(self.conf.depth_check))
        forward(self.matcher, batch)
        fine_supervision(batch)
        self.loss(batch)
        return batch

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        # BatchNorm running statistics are updated in the forward pass: keep a copy to undo a bad batch
        buffers = {k: v.detach().clone() for k, v in self.matcher.named_buffers() if v.is_floating_point() and "running" in k}
        # the supervision's random draws (padding, coarse-match sampling) are seeded by step, so that a
        # resumed job repeats exactly what the interrupted one would have drawn
        torch.manual_seed(int(self.conf.seed) * 1_000_003 + self.global_step * (self.global_rank + 1))
        self._step(batch)
        loss = batch["loss"]
        if not torch.isfinite(loss):
            log.warning("non-finite loss at step %d (pairs %s): skipped", self.global_step, batch.get("pair_names"))
            loss = sum(p.sum() * 0.0 for p in self.parameters() if p.requires_grad)
            with torch.no_grad():
                for k, v in self.matcher.named_buffers():
                    if k in buffers:
                        v.copy_(buffers[k])
            self.log("train/skipped", 1.0, on_step=True, reduce_fx="sum")
            self.skipped_steps += 1  # the engine fails a run whose every step was skipped
        n = batch["image0"].size(0)
        for k, v in batch["loss_scalars"].items():
            self.log(f"train/{k}", v.float(), on_step=True, on_epoch=False, prog_bar=k == "loss", batch_size=n)
        # tensors, not numbers: Lightning reads them when it writes the log, not at every step (a read waits for the GPU)
        self.log("train/num_gt", batch["conf_matrix_gt"].sum().float(), on_step=True, batch_size=n)
        matches, correct = count_coarse_matches(batch, float(self.conf.thr))
        self.log("train/matches_c", matches.float(), on_step=True, batch_size=n)
        self.log("train/correct_c", correct.float(), on_step=True, batch_size=n)
        self.log("lr", self.optimizers().param_groups[0]["lr"] if self._trainer is not None else self.lr, on_step=True, batch_size=n)
        return loss

    def _frozen(self) -> bool:
        return self._trainer is not None and self.trainer.global_step < int(self.conf.freeze_backbone_steps)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.matcher.backbone.train(not self._frozen())  # BatchNorm statistics fixed while frozen

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        if self._frozen():
            for p in self.matcher.backbone.parameters():
                p.grad = None  # skipped by AdamW (no step, no weight decay) and by gradient clipping

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch)
        n = batch["image0"].size(0)
        for k, v in batch["loss_scalars"].items():
            self.log(f"val/{k}", v.float(), on_epoch=True, sync_dist=True, batch_size=n)
        self.log("val/correct_c", count_coarse_matches(batch, float(self.conf.thr))[1].float(), on_epoch=True,
                 sync_dist=True, batch_size=n)
        for b in range(n):
            sel = batch["m_bids"] == b
            k0 = batch["mkpts0_f"][sel].detach().float().cpu().numpy()
            k1 = batch["mkpts1_f"][sel].detach().float().cpu().numpy()
            r = evaluate_pair(k0, k1, batch["K0"][b].double().cpu().numpy(), batch["K1"][b].double().cpu().numpy(),
                              batch["T_0to1"][b].double().cpu().numpy(), VAL_SCORING.ransac_thresh,
                              float(self.conf.epi_err_thr), VAL_SCORING.estimator)
            key = f"{batch['scene_id'][b]}:{batch['pair_names'][0][b]}#{batch['pair_names'][1][b]}"
            self._val.append({"id": key, "pose_error": r["pose_error"], "precision": r["precision"], "num_matches": r["num_matches"]})

    def on_validation_epoch_end(self) -> None:
        rows = self._val
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, rows)
            rows = list({r["id"]: r for part in gathered for r in part}.values())  # ranks may share padded pairs
        self._val = []
        if not rows:
            return
        aucs = pose_auc([r["pose_error"] for r in rows])
        for k, v in aucs.items():
            self.log(f"val/{k}", v, rank_zero_only=True)
        self.log("val/precision", float(np.mean([r["precision"] for r in rows])), rank_zero_only=True)
        self.log("val/num_matches", float(np.mean([r["num_matches"] for r in rows])), rank_zero_only=True)

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=float(self.conf.weight_decay))

        def factor(step: int) -> float:
            n = self._trainer.num_training_batches if self._trainer is not None else math.inf
            epoch = step // n if math.isfinite(n) and n > 0 else 0
            return lr_factor(self.conf, self.warmup_step, step, epoch)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class PairDataModule(L.LightningDataModule):
    """Train loader with the per-scene balanced sampler (rank-aware), val loader in order."""

    def __init__(self, conf: LoFTRRunConfig, train_records: list[Any], val_records: list[Any]) -> None:
        super().__init__()
        self.conf, self.train_records, self.val_records = run_options(conf), train_records, val_records

    def _dataset(self, records: list[Any]) -> PairDataset:
        c = self.conf
        return PairDataset(records, img_resize=c.img_resize, df=8, pad=bool(c.pad), load_depth=True,
                           depth_max_size=c.depth_max_size, interpolation=c.interpolation, depth_padding="batch")

    def _collate(self) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        return functools.partial(collate_pairs, depth_max_size=self.conf.depth_max_size)

    def train_dataloader(self) -> DataLoader:
        ds = self._dataset(self.train_records)
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        sampler = SceneBalancedSampler([r.scene for r in self.train_records], int(self.conf.n_samples_per_subset),
                                       replacement=True, shuffle=True, seed=int(self.conf.seed),
                                       rank=rank, world_size=world)
        nw = loader_workers(self.conf.num_workers)
        batches = BatchSampler(sampler, int(self.conf.batch_size), drop_last=False)
        loader = ResumableLoader(ds, batches, num_workers=nw, pin_memory=torch.cuda.is_available(), persistent_workers=nw > 0,
                                 collate_fn=self._collate())
        return resume_position(loader, self.trainer)

    def val_dataloader(self) -> DataLoader:
        records = self.val_records[: self.conf.val_max_pairs or None]
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        # every rank gets ceil(n / world) pairs (wrapping around), so none has an empty loader; the
        # duplicates are dropped when the ranks' results are gathered
        per_rank = math.ceil(len(records) / world)
        records = [records[(rank + k * world) % len(records)] for k in range(per_rank)] if records else []
        return DataLoader(self._dataset(records), batch_size=1, shuffle=False, num_workers=loader_workers(self.conf.num_workers),
                          collate_fn=self._collate())
