"""LoFTR parity with the official training code (issue 12): losses, image resampling, matcher defaults.

The reference losses below restate the official ``LoFTRLoss`` term by term (select the supervised
entries, weight them, average what was selected); matchforge's loss must equal them to 1e-5
relative on real batches (TUM fr1 pair, padded and unpadded), for DS and OT, dense and sparse.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from testkit import REPO
from testkit.tum import SMALL_MODEL, tum_pair
from matchforge.loftr.data import PairDataset, read_gray
from matchforge.loftr.losses import LoFTRLoss
from matchforge.loftr.model import build_model, forward, kornia_config
from matchforge.loftr.supervision import coarse_supervision, fine_supervision

TUM = REPO / "resources" / "testsets" / "tum_rgbd"
A, G = 0.25, 2.0


def ref_coarse(conf, gt, weight, sparse, ot):
    """Official focal coarse loss (clamped), written out for the reference."""
    conf = conf.clamp(1e-6, 1 - 1e-6)
    pos, neg = gt == 1, gt == 0

    def fpos(p):
        return -A * (1 - p) ** G * p.log()

    if not sparse:
        lp, ln = fpos(conf[pos]), -A * conf[neg] ** G * (1 - conf[neg]).log()
        if weight is not None:
            lp, ln = lp * weight[pos], ln * weight[neg]
        return lp.mean() + ln.mean()
    lp = fpos(conf[:, :-1, :-1][pos] if ot else conf[pos])
    if weight is not None:
        lp = lp * weight[pos]
    if not ot:
        return lp.mean()
    r0, r1 = gt.sum(-1) == 0, gt.sum(1) == 0
    ln = fpos(torch.cat([conf[:, :-1, -1][r0], conf[:, -1, :-1][r1]]))
    if weight is not None:
        ln = ln[torch.cat([(weight.sum(-1) != 0)[r0], (weight.sum(1) != 0)[r1]])]
    return lp.mean() + ln.mean()


def ref_fine(expec_f, gt):
    inside = gt.abs().amax(1) < 1.0
    w = 1.0 / expec_f[:, 2].clamp(min=1e-10)
    w = w / w.mean()
    return (((gt[inside] - expec_f[inside, :2]) ** 2).sum(-1) * w[inside]).mean()


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    return tum_pair(TUM, tmp_path_factory.mktemp("tum"))


def _batch(record, model, pad):
    b = default_collate([PairDataset([record], img_resize=192, depth_max_size=640, pad=pad, interpolation="linear")[0]])
    coarse_supervision(b, depth_check=False)
    forward(model, b)
    fine_supervision(b)
    return b


@pytest.mark.parametrize("match_type", ["dual_softmax", "sinkhorn"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("pad", [False, True])
def test_losses_equal_upstream(record, match_type, sparse, pad):
    torch.manual_seed(0)
    conf = {**SMALL_MODEL, "match_type": match_type, "sparse_spvs": sparse}
    model = build_model(conf)
    b = _batch(record, model, pad)
    if pad:
        # a ground-truth positive on a padded cell (the warp of a cell can land in the padding): zero weight
        padded = (~b["mask0"].flatten(1)[0]).nonzero()[0, 0]
        b["conf_matrix_gt"][0, padded, 5] = 1
    b["expec_f_gt"][:3] += 2.0  # samples outside the fine window: the fine weights' normalisation matters
    LoFTRLoss(conf)(b)
    weight = (b["mask0"].flatten(-2)[..., None] * b["mask1"].flatten(-2)[:, None]).float() if pad else None
    key = "conf_matrix_with_bin" if sparse and match_type == "sinkhorn" else "conf_matrix"
    want_c = ref_coarse(b[key].detach(), b["conf_matrix_gt"], weight, sparse, match_type == "sinkhorn")
    want_f = ref_fine(b["expec_f"].detach(), b["expec_f_gt"])
    got_c, got_f = b["loss_scalars"]["loss_c"], b["loss_scalars"]["loss_f"]
    assert torch.isclose(got_c, want_c, rtol=1e-5, atol=0), (float(got_c), float(want_c))
    assert torch.isclose(got_f, want_f, rtol=1e-5, atol=0), (float(got_f), float(want_f))
    assert torch.isclose(b["loss"], want_c + want_f, rtol=1e-5, atol=0)


def test_confidences_equal_kornia(record):
    """The log-domain confidences give kornia's own dual-softmax and Sinkhorn confidences (kornia's forward;
    for Sinkhorn through the subclass that supplies the transport kornia does not ship)."""
    from kornia.feature.loftr.utils.coarse_matching import CoarseMatching

    from matchforge.loftr.sinkhorn import SinkhornCoarseMatching

    torch.manual_seed(0)
    for match_type in ("dual_softmax", "sinkhorn"):
        model = build_model({**SMALL_MODEL, "match_type": match_type, "sparse_spvs": True})
        b = _batch(record, model, pad=True)
        f0, f1 = torch.randn(1, b["conf_matrix"].shape[1], 64), torch.randn(1, b["conf_matrix"].shape[2], 64)
        m0, m1 = b["mask0"].flatten(1), b["mask1"].flatten(1)
        ref: dict = {k: b[k] for k in ("hw0_c", "hw1_c", "stride_c", "mask0", "mask1")}
        kind = SinkhornCoarseMatching if match_type == "sinkhorn" else CoarseMatching
        km = kind(kornia_config({"match_type": match_type, "sparse_spvs": True})["match_coarse"]).eval()
        km.load_state_dict(model.coarse_matching.state_dict())
        km(f0, f1, ref, m0, m1)
        from matchforge.loftr.model import coarse_matching

        ours = {k: ref[k] for k in ("hw0_c", "hw1_c", "stride_c", "mask0", "mask1")}
        model.eval()
        coarse_matching(model.coarse_matching, f0, f1, ours, m0, m1)
        assert torch.allclose(ours["conf_matrix"], ref["conf_matrix"], rtol=1e-4, atol=1e-9)
        assert torch.equal(ours["mkpts0_c"], ref["mkpts0_c"]) and torch.equal(ours["mkpts1_c"], ref["mkpts1_c"])


def test_images_resized_as_the_official_loader():
    """Default resampling is cv2.resize's default (bilinear), as upstream's read_megadepth_gray."""
    path = REPO / "resources" / "demo" / "sacre_coeur" / "images"
    path = sorted(path.iterdir())[0]
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    h, w = gray.shape
    s = 640 / max(h, w)
    w_new, h_new = int(round(w * s)) // 8 * 8, int(round(h * s)) // 8 * 8
    official = cv2.resize(gray, (w_new, h_new)).astype(np.float32) / 255
    img, mask, scale, _ = read_gray(path, 640, 8, True, interpolation="linear")
    assert np.array_equal(img[0, :h_new, :w_new].numpy(), official)
    area, _, _, _ = read_gray(path, 640, 8, True, interpolation="area")
    assert not torch.equal(area, img)  # the option still exists and differs
    assert torch.allclose(scale, torch.tensor([w / w_new, h / h_new]))


def test_matcher_options_come_from_the_schema(tmp_path):
    """No option leaks from kornia's inference defaults (skh_prefilter True, train_coarse_percent 0.4)."""
    from matchforge.loftr.model import export_state_dict, load_weights

    cfg = kornia_config({})["match_coarse"]
    assert cfg["skh_prefilter"] is False and cfg["train_coarse_percent"] == 0.3 and cfg["sparse_spvs"] is False
    assert kornia_config({})["coarse"]["temp_bug_fix"] is True
    ot = build_model({"match_type": "sinkhorn"})
    assert ot.coarse_matching.skh_prefilter is False and ot.coarse_matching.train_coarse_percent == 0.3
    # an official-style OT checkpoint without model.json
    torch.save({"state_dict": {f"matcher.{k}": v for k, v in export_state_dict(ot).items()}}, tmp_path / "ot.ckpt")
    loaded = load_weights(str(tmp_path / "ot.ckpt"))
    assert loaded.coarse_matching.match_type == "sinkhorn" and loaded.coarse_matching.skh_prefilter is False


def test_the_ot_matcher_is_a_kornia_subclass_not_an_injected_module():
    """LoFTR-OT is kornia's LoFTR with kornia's CoarseMatching subclassed: no module is planted in kornia's
    package, the state dict has the official OT keys, and kornia's own forward runs the Sinkhorn."""
    import sys

    from kornia.feature.loftr.utils.coarse_matching import CoarseMatching

    ot = build_model({"match_type": "sinkhorn"}).eval()
    assert "kornia.feature.loftr.utils.superglue" not in sys.modules
    assert isinstance(ot.coarse_matching, CoarseMatching) and ot.config["match_coarse"]["match_type"] == "sinkhorn"
    dual = build_model({"match_type": "dual_softmax"})
    assert set(ot.state_dict()) - set(dual.state_dict()) == {"coarse_matching.bin_score"}
    torch.manual_seed(0)
    batch = {"image0": torch.rand(1, 1, 64, 64), "image1": torch.rand(1, 1, 64, 64)}
    with torch.no_grad():
        out = ot(batch)
    assert "keypoints0" in out and torch.isfinite(out["confidence"]).all()
