"""LoFTR losses (official definitions): coarse focal loss and fine L2 weighted by the inverse std.

Coarse: focal loss with alpha = 0.25, gamma = 2 on the confidence matrix, confidences clamped to
[1e-6, 1 - 1e-6]. Dense supervision (``sparse_spvs=False``, what the official outdoor training
uses) adds the focal loss of every negative; sparse supervision uses positives only (dual-softmax)
or positives plus the dustbin entries of unmatched rows/columns (optimal transport). Padded cells
get zero weight through ``mask0 x mask1``.

Fine: only matches whose ground-truth offset lies inside the window (``|gt|_inf < 1``) count; each
is weighted by ``1/std`` normalised to mean 1 (detached), loss = mean(w * |gt - pred|^2).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch


class LoFTRLoss(torch.nn.Module):
    """Total loss = ``coarse_weight * loss_c + fine_weight * loss_f``; ``forward`` adds them to ``data``."""

    def __init__(self, conf: Mapping[str, Any] | None = None, match_type: str = "dual_softmax") -> None:
        super().__init__()
        conf = dict(conf or {})
        self.match_type = match_type
        self.sparse = bool(conf.get("sparse_spvs", False))
        self.alpha = float(conf.get("focal_alpha", 0.25))
        self.gamma = float(conf.get("focal_gamma", 2.0))
        self.pos_w = float(conf.get("pos_weight", 1.0))
        self.neg_w = float(conf.get("neg_weight", 1.0))
        self.coarse_weight = float(conf.get("coarse_weight", 1.0))
        self.fine_weight = float(conf.get("fine_weight", 1.0))
        self.fine_thr = float(conf.get("fine_correct_thr", 1.0))

    def _focal_pos(self, p: torch.Tensor) -> torch.Tensor:
        return -self.alpha * (1 - p).pow(self.gamma) * p.log()

    def _focal_neg(self, p: torch.Tensor) -> torch.Tensor:
        return -self.alpha * p.pow(self.gamma) * (1 - p).log()

    def coarse_loss(self, conf: torch.Tensor, conf_gt: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """Focal loss of ``conf`` (N, L, S), or (N, L+1, S+1) with dustbins for sparse OT."""
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
            neg_w = 0.0
        conf = conf.float().clamp(1e-6, 1 - 1e-6)  # float32: 1 - 1e-6 is 1 in bfloat16/float16

        if self.sparse:
            core = conf[:, :-1, :-1] if self.match_type == "sinkhorn" else conf
            loss_pos = self._focal_pos(core[pos_mask])
            if self.match_type != "sinkhorn":
                return pos_w * loss_pos.mean()
            # unmatched rows/columns should go to the dustbin
            neg0, neg1 = conf_gt.sum(-1) == 0, conf_gt.sum(1) == 0
            bin_conf = torch.cat([conf[:, :-1, -1][neg0], conf[:, -1, :-1][neg1]])
            loss_bin = self._focal_pos(bin_conf)
            if weight is not None:
                bin_w = torch.cat([weight.sum(-1)[neg0] != 0, weight.sum(1)[neg1] != 0]).float()
                loss_bin = loss_bin * bin_w
            loss_neg = loss_bin.mean() if loss_bin.numel() else conf.sum() * 0
            return pos_w * loss_pos.mean() + neg_w * loss_neg

        loss_pos = self._focal_pos(conf[pos_mask])
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
                correct = correct.clone()
                correct[0] = True
                return (expec_f[:1, :2] - expec_f_gt[:1]).pow(2).sum() * 0.0
            return None
        inv_std = 1.0 / expec_f[correct, 2].clamp(min=1e-10)
        w = (inv_std / inv_std.mean()).detach()
        err = (expec_f_gt[correct] - expec_f[correct, :2]).pow(2).sum(-1)
        return (err * w).mean()

    def forward(self, data: dict[str, Any]) -> dict[str, Any]:
        weight = None
        if "mask0" in data:
            weight = (data["mask0"].flatten(-2)[..., None] * data["mask1"].flatten(-2)[:, None]).float()
        sparse_ot = self.sparse and self.match_type == "sinkhorn"
        conf = data["conf_matrix_with_bin"] if sparse_ot else data["conf_matrix"]
        loss_c = self.coarse_loss(conf, data["conf_matrix_gt"], weight)
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
