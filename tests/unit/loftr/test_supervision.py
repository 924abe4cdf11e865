"""Ground truth from depth + poses on a real RGB-D pair; padding, masks, and pairs without ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from testkit import real_data
from testkit.tum import SMALL_MODEL, tum_pair
from matchforge.loftr.data import PairDataset, SceneBalancedSampler
from matchforge.loftr.losses import LoFTRLoss
from matchforge.loftr.model import build_model, forward
from matchforge.loftr.supervision import coarse_supervision, fine_supervision


@pytest.fixture
def tum_batch(tmp_path):
    rec = tum_pair(real_data("tum_rgbd"), tmp_path)
    return rec, lambda resize=320, pad=True: default_collate([PairDataset([rec], img_resize=resize, depth_max_size=640, pad=pad,
                                                                             interpolation="linear")[0]])


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def test_padding_masks_and_scales(tum_batch):
    rec, make = tum_batch
    b = make(320)
    img, mask = b["image0"][0, 0], b["mask0"][0]
    assert img.shape == (320, 320)  # 640x480 -> 320x240, padded to a square
    assert mask.shape == (40, 40) and mask[:30].all() and not mask[30:].any()
    assert torch.allclose(b["scale0"][0], torch.tensor([2.0, 2.0]))
    assert (img[240:] == 0).all() and img[:240].std() > 0.05
    assert b["depth0"].shape == (1, 640, 640) and (b["depth0"][0, 480:] == 0).all() and (b["depth0"][0, :480] > 0).mean(dtype=torch.float) > 0.5
    nopad = make(320, pad=False)
    assert nopad["image0"].shape[-2:] == (240, 320) and "mask0" not in nopad


def test_coarse_ground_truth_on_real_pair(tum_batch):
    rec, make = tum_batch
    b = coarse_supervision(make(320), depth_check=False)
    b_ids, i_ids, j_ids = b["spv_b_ids"], b["spv_i_ids"], b["spv_j_ids"]
    assert len(i_ids) > 300  # small motion: most of the 40x30 valid cells have a match
    assert b["conf_matrix_gt"].sum() == len(i_ids)
    assert b["mask0"].flatten(1)[b_ids, i_ids].all() and b["mask1"].flatten(1)[b_ids, j_ids].all()  # never a padded cell
    # every ground-truth match reprojects within one coarse cell (8 px at 320 = 16 px at 640) of its cell centre
    d = (b["spv_w_pt0_i"][b_ids, i_ids] - b["spv_pt1_i"][b_ids, j_ids]).abs().amax(-1)
    assert (d <= 16 * 0.5 + 1e-3).all()
    # and the image content agrees: patches at matched cells correlate far better than at shuffled cells
    img0, img1 = b["image0"][0, 0].numpy(), b["image1"][0, 0].numpy()
    w = 40

    def patch(img, idx):
        y, x = 8 * (idx // w), 8 * (idx % w)
        return img[max(y - 8, 0):y + 8, max(x - 8, 0):x + 8]

    inner = [(i, j) for i, j in zip(i_ids.tolist(), j_ids.tolist()) if 2 <= i // w < 28 and 2 <= i % w < 38 and 2 <= j // w < 28 and 2 <= j % w < 38]
    rng = np.random.default_rng(0)
    shuffled = rng.permutation([j for _, j in inner])
    good = np.median([_ncc(patch(img0, i), patch(img1, j)) for i, j in inner])
    bad = np.median([_ncc(patch(img0, i), patch(img1, j)) for (i, _), j in zip(inner, shuffled)])
    same_cell = np.median([_ncc(patch(img0, i), patch(img1, i)) for i, _ in inner])  # "no motion" guess
    print("ncc", good, bad, same_cell)
    assert good > 0.4 and good > bad + 0.4 and good > same_cell + 0.1


def test_identity_pose_gives_identity_matches(tum_batch):
    rec, make = tum_batch
    b = make(320)
    b["image1"], b["depth1"], b["mask1"], b["scale1"] = b["image0"], b["depth0"], b["mask0"], b["scale0"]
    b["T_0to1"] = b["T_1to0"] = torch.eye(4)[None]
    coarse_supervision(b, depth_check=False)
    assert torch.equal(b["spv_i_ids"], b["spv_j_ids"])
    # exactly the valid cells (not cell 0) whose depth is present
    ys, xs = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    z = b["depth0"][0, (16 * ys).clamp(max=639), (16 * xs).clamp(max=639)]
    expect = (z > 0) & b["mask0"][0]
    expect.view(-1)[0] = False
    assert set(b["spv_i_ids"].tolist()) == set(torch.nonzero(expect.view(-1)).view(-1).tolist())


def test_fine_ground_truth_inside_window(tum_batch):
    rec, make = tum_batch
    b = coarse_supervision(make(320), depth_check=False)
    b.update(b_ids=b["spv_b_ids"], i_ids=b["spv_i_ids"], j_ids=b["spv_j_ids"], stride_f=2, W=5)
    fine_supervision(b)
    assert (b["expec_f_gt"].abs() <= 1.0 + 1e-4).all()  # a ground-truth cell is at most half a cell (0.5 window) away
    assert b["expec_f_gt"].abs().amax() > 0.3


@pytest.mark.parametrize("match_type", ["dual_softmax", "sinkhorn"])
def test_empty_ground_truth_no_crash_no_nan(tum_batch, match_type):
    rec, make = tum_batch
    b = make(256)
    b["depth0"].zero_()  # nothing can be warped
    b["depth1"].zero_()
    coarse_supervision(b, depth_check=False)
    assert b["conf_matrix_gt"].sum() == 0 and len(b["spv_b_ids"]) == 1
    torch.manual_seed(0)
    model = build_model({**SMALL_MODEL, "match_type": match_type})
    forward(model, b)
    fine_supervision(b)
    LoFTRLoss({"match_type": match_type})(b)
    assert_finite_loss_and_gradients(b, model)


def test_scene_balanced_sampler():
    scenes = ["a"] * 5 + ["b"] * 50
    s = SceneBalancedSampler(scenes, 10, shuffle=True, seed=1)
    idx = list(s)
    assert len(idx) == 20 and sum(i < 5 for i in idx) == 10  # same draws per scene whatever its size
    s.set_epoch(1)
    assert list(s) != idx
    ranks = [list(SceneBalancedSampler(scenes, 10, shuffle=True, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 10 and sorted(ranks[0] + ranks[1]) == sorted(idx)


@pytest.mark.parametrize("match_type", ["dual_softmax", "sinkhorn"])
def test_bf16_autocast_loss_finite(tum_batch, match_type):
    """precision: bf16-mixed must not turn the focal loss into inf (1 - 1e-6 rounds to 1 in bfloat16)."""
    rec, make = tum_batch
    b = coarse_supervision(make(192), depth_check=False)
    torch.manual_seed(0)
    model = build_model({**SMALL_MODEL, "block_dims": [16, 24, 32], "initial_dim": 16, "match_type": match_type})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        forward(model, b)
        fine_supervision(b)
        LoFTRLoss({"match_type": match_type})(b)
    assert_finite_loss_and_gradients(b, model)


@pytest.mark.parametrize("depth_check", [False, True])
def test_batch_padded_depth_gives_the_supervision_of_the_square(tmp_path, depth_check):
    """The training loaders pad depth maps to the batch's largest map plus one (collate_pairs) instead of the
    depth_max_size square: the ground truth is the same, for maps of different sizes in one batch, with and without
    the depth check, while the maps shrink from 2000 x 2000 to 481 x 641."""
    import h5py
    from types import SimpleNamespace

    from matchforge.loftr.data import collate_pairs

    rec = tum_pair(real_data("tum_rgbd"), tmp_path)
    with h5py.File(rec.depth1) as f:
        cropped = f["depth"][:440, :600]  # a smaller map: a warp can land between its edge and the other's
    with h5py.File(tmp_path / "cropped.h5", "w") as f:
        f["depth"] = cropped
    records = [rec, SimpleNamespace(**{**vars(rec), "depth1": tmp_path / "cropped.h5"})]
    layouts = {}
    for padding in ("square", "batch"):
        data = PairDataset(records, img_resize=320, depth_max_size=2000, pad=True, interpolation="linear",
                           depth_padding=padding)
        layouts[padding] = coarse_supervision(collate_pairs([data[0], data[1]], 2000), depth_check=depth_check)
    square, batch = layouts["square"], layouts["batch"]
    assert square["depth0"].shape == (2, 2000, 2000) and batch["depth0"].shape == (2, 481, 641)
    assert square["conf_matrix_gt"].sum() > 100
    for key in ("conf_matrix_gt", "spv_b_ids", "spv_i_ids", "spv_j_ids", "spv_w_pt0_i", "spv_pt1_i"):
        assert torch.equal(square[key], batch[key]), key


def assert_finite_loss_and_gradients(b: dict, model: torch.nn.Module) -> None:
    """The batch's loss is finite and so is every gradient its backward gives the model."""
    assert torch.isfinite(b["loss"])
    b["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
