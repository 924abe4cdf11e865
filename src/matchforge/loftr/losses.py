"""LoFTR losses (official definitions): coarse focal loss and fine L2 weighted by the inverse std.

Coarse: focal loss with alpha = 0.25, gamma = 2 on the confidence matrix. Dense supervision
(``sparse_spvs=False``, what the official outdoor training uses) adds the focal loss of every
negative; sparse supervision uses positives only (dual-softmax) or positives plus the dustbin
entries of unmatched rows/columns (optimal transport). Padded cells get zero weight through
``mask0 x mask1``; in sparse OT the dustbin entries of padded rows/columns are dropped before
averaging, as upstream.

Positive terms ``-alpha (1 - p)^gamma log p`` come in two modes (option ``coarse_positive``):

- ``clamped`` (upstream): ``p`` clamped to [1e-6, 1 - 1e-6]. A positive below 1e-6 then has **no
  gradient**; at initialisation the dual-softmax confidence of a positive is about 1/(L S)
  (4e-7 at 320 px, 2e-8 at 640 px), so early training learns nothing from its positives.
- ``log``: ``log p`` read from the matcher's log-domain confidences (``log_conf_matrix``), no dead
  zone; equal to ``clamped`` wherever 1e-6 <= p <= 1 - 1e-6.

Negative terms ``-alpha p^gamma log(1 - p)`` keep the clamp in both modes.

Fine: only matches whose ground-truth offset lies inside the window (``|gt|_inf < 1``) count; each
is weighted by ``1/std`` normalised to mean 1 over **all** fine samples (detached, as upstream),
loss = mean(w * |gt - pred|^2) over the in-window samples.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

POSITIVE_MODES = ("clamped", "log")
EPS = 1e-6


class LoFTRLoss(torch.nn.Module):
    """Total loss = ``coarse_weight * loss_c + fine_weight * loss_f``; ``forward`` adds them to ``data``."""

    def __init__(self, conf: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        from matchforge.loftr.model import run_options

        conf = run_options(conf)
        self.match_type = conf.match_type
        self.sparse = bool(conf.sparse_spvs)
        self.alpha = float(conf.focal_alpha)
        self.gamma = float(conf.focal_gamma)
        self.pos_w = float(conf.pos_weight)
        self.neg_w = float(conf.neg_weight)
        self.coarse_weight = float(conf.coarse_weight)
        self.fine_weight = float(conf.fine_weight)
        self.fine_thr = float(conf.fine_correct_thr)
        self.positive = conf.coarse_positive
        if self.positive not in POSITIVE_MODES:
            raise ValueError(f"coarse_positive must be one of {POSITIVE_MODES}, not {self.positive!r}")

    def _focal_pos(self, conf: torch.Tensor, log_conf: torch.Tensor | None) -> torch.Tensor:
        """Positive focal terms of confidences ``conf`` (with ``log_conf``, their exact logs, in ``log`` mode)."""
        if self.positive == "log" and log_conf is not None:
            log_p = log_conf.float()
            log_p = log_p.masked_fill(~torch.isfinite(log_p), math.log(EPS))  # padded cells (zero weight)
            p = log_p.exp()
        else:
            p = conf.float().clamp(EPS, 1 - EPS)  # float32: 1 - 1e-6 is 1 in bfloat16/float16
            log_p = p.log()
        return -self.alpha * (1 - p).pow(self.gamma) * log_p

    def _focal_neg(self, conf: torch.Tensor) -> torch.Tensor:
        p = conf.float().clamp(EPS, 1 - EPS)
        return -self.alpha * p.pow(self.gamma) * (1 - p).log()

    def coarse_loss(self, conf: torch.Tensor, conf_gt: torch.Tensor, weight: torch.Tensor | None,
                    log_conf: torch.Tensor | None = None) -> torch.Tensor:
        """Focal loss of ``conf`` (N, L, S), or (N, L+1, S+1) with dustbins for sparse OT.

        ``log_conf``: the same shape, ``log(conf)`` computed without underflow (needed by ``log`` mode).
        """
        pos_mask, neg_mask = conf_gt == 1, conf_gt == 0
        pos_w, neg_w = self.pos_w, self.neg_w
        if not pos_mask.any():  # no ground truth: keep the graph, give it no weight
            pos_mask = pos_mask.clone()
            pos_mask[0, 0, 0] = True
            if weight is not None:
                weight = weight.clone()
                weight[0, 0, 0] = 0.0
            pos_w = 0.0
        if not neg_mask.any():
            neg_mask = neg_mask.clone()
            neg_mask[0, 0, 0] = True
            if weight is not None:
                weight = weight.clone()
                weight[0, 0, 0] = 0.0
            neg_w = 0.0

        if self.sparse:
            ot = self.match_type == "sinkhorn"
            core = slice(None, -1) if ot else slice(None)  # positives never sit in a dustbin row/column
            loss_pos = self._focal_pos(conf[:, core, core][pos_mask],
                                       None if log_conf is None else log_conf[:, core, core][pos_mask])
            if weight is not None:
                loss_pos = loss_pos * weight[pos_mask]
            if not ot:
                return pos_w * loss_pos.mean()
            # unmatched rows/columns should go to the dustbin; those of padded rows/columns are dropped
            neg0, neg1 = conf_gt.sum(-1) == 0, conf_gt.sum(1) == 0
            bin_conf = torch.cat([conf[:, :-1, -1][neg0], conf[:, -1, :-1][neg1]])
            bin_log = None if log_conf is None else torch.cat([log_conf[:, :-1, -1][neg0], log_conf[:, -1, :-1][neg1]])
            loss_bin = self._focal_pos(bin_conf, bin_log)
            if weight is not None:
                loss_bin = loss_bin[torch.cat([(weight.sum(-1) != 0)[neg0], (weight.sum(1) != 0)[neg1]])]
            loss_neg = loss_bin.mean() if loss_bin.numel() else conf.sum() * 0
            return pos_w * loss_pos.mean() + neg_w * loss_neg

        loss_pos = self._focal_pos(conf[pos_mask], None if log_conf is None else log_conf[pos_mask])
        loss_neg = self._focal_neg(conf[neg_mask])
        if weight is not None:
            loss_pos = loss_pos * weight[pos_mask]
            loss_neg = loss_neg * weight[neg_mask]
        return pos_w * loss_pos.mean() + neg_w * loss_neg.mean()

    def fine_loss(self, expec_f: torch.Tensor, expec_f_gt: torch.Tensor) -> torch.Tensor | None:
        """L2 with inverse-std weights over matches inside the window; ``None`` when none is (eval)."""
        expec_f, expec_f_gt = expec_f.float(), expec_f_gt.float()
        correct = expec_f_gt.abs().amax(-1) < self.fine_thr
        if not correct.any():
            if self.training:  # a zero-weight term keeps every parameter in the graph (DDP)
                return (expec_f[:1, :2] - expec_f_gt[:1]).pow(2).sum() * 0.0
            return None
        inv_std = 1.0 / expec_f[:, 2].clamp(min=1e-10)
        w = (inv_std / inv_std.mean()).detach()  # normalised over all samples, then masked (upstream)
        err = (expec_f_gt[correct] - expec_f[correct, :2]).pow(2).sum(-1)
        return (err * w[correct]).mean()

    def forward(self, data: dict[str, Any]) -> dict[str, Any]:
        weight = None
        if "mask0" in data:
            weight = (data["mask0"].flatten(-2)[..., None] * data["mask1"].flatten(-2)[:, None]).float()
        sparse_ot = self.sparse and self.match_type == "sinkhorn"
        key = "conf_matrix_with_bin" if sparse_ot else "conf_matrix"
        loss_c = self.coarse_loss(data[key], data["conf_matrix_gt"], weight, data.get(f"log_{key}"))
        loss = self.coarse_weight * loss_c
        stats = {"loss_c": loss_c.detach()}
        if len(data["expec_f"]) and "expec_f_gt" in data:
            loss_f = self.fine_loss(data["expec_f"], data["expec_f_gt"])
        else:
            loss_f = None
        if loss_f is not None:
            loss = loss + self.fine_weight * loss_f
            stats["loss_f"] = loss_f.detach()
        else:
            stats["loss_f"] = torch.tensor(1.0)
        stats["loss"] = loss.detach()
        data.update(loss=loss, loss_scalars=stats)
        return data
