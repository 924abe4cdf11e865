"""PoSFeat losses and networks: epipolar geometry, the line-to-window loss, DISK sampling, gradient flow."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from testkit import real_data
from matchforge.dataset.indices import read_imc
from matchforge.posfeat.data import PairDataset
from matchforge.geometry.epipolar import clip_lines, epipolar_lines, fundamental_from_poses, point_line_distance
from matchforge.posfeat.losses import (EpipolarLossConfig, epipolar_cost_loss, epipolar_loss,
                                       sample_keypoints, window_expectation)
from matchforge.posfeat.networks import PoSFeat
from matchforge.posfeat.train import set_modes, stage_loss
from matchforge.posfeat.config import DescStage, KpStage


def _reichstag_pair():
    pairs = read_imc(real_data("reichstag"), "0.1")
    return pairs[0]


def _project(K, T, X):
    x = (X @ T[:3, :3].T + T[:3, 3]) @ K.T
    return x[:, :2] / x[:, 2:3]


def _points_seen_by_both(pair, n=200, seed=0):
    """3D points in front of both cameras of a real Reichstag pair, and their exact projections."""
    rng = np.random.default_rng(seed)
    R0, t0 = pair.T0[:3, :3], pair.T0[:3, 3]
    xy = rng.uniform([0, 0], [800, 600], (n * 4, 2))
    depth = rng.uniform(2.0, 20.0, n * 4)
    rays = np.c_[xy, np.ones(len(xy))] @ np.linalg.inv(pair.K0).T
    X = ((rays * depth[:, None]) - t0) @ R0  # camera 0 -> world
    z1 = (X @ pair.T1[:3, :3].T + pair.T1[:3, 3])[:, 2]
    X = X[z1 > 0.1][:n]
    return _project(pair.K0, pair.T0, X), _project(pair.K1, pair.T1, X)


def test_epipolar_cost_is_zero_for_exact_matches_and_grows_with_distance():
    pair = _reichstag_pair()
    x0, x1 = _points_seen_by_both(pair)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)
    Fm = fundamental_from_poses(t(pair.K0), t(pair.K1), t(pair.T0), t(pair.T1))
    lines = epipolar_lines(Fm[None], t(x0)[None])
    std = torch.ones(1, len(x0), dtype=torch.float64)
    valid = torch.ones(1, len(x0), dtype=torch.bool)
    exact, _ = epipolar_cost_loss(t(x1)[None], lines, std, valid, cost_max=1e6)
    assert float(exact) < 1e-6
    normal = lines[0, :, :2] / lines[0, :, :2].norm(dim=-1, keepdim=True)
    losses = []
    for d in (0.5, 2.0, 8.0, 32.0):
        moved = t(x1) + d * normal  # perpendicular offset of d pixels
        loss, _ = epipolar_cost_loss(moved[None], lines, std, valid, cost_max=1e6)
        losses.append(float(loss))
        assert float(loss) == pytest.approx(d, rel=1e-6)
    assert losses == sorted(losses)
    # the reverse direction uses F^T with the roles of the images swapped
    back = point_line_distance(t(x0), epipolar_lines(Fm.T[None], t(x1)[None])[0])
    assert float(back.max()) < 1e-6
    # moving along the line costs nothing
    along = t(x1) + 5.0 * torch.stack([-normal[:, 1], normal[:, 0]], -1)
    assert float(point_line_distance(along, lines[0]).max()) < 1e-6


def test_uncertainty_weighting_prefers_confident_matches():
    lines = torch.tensor([[[0.0, 1.0, -10.0], [0.0, 1.0, -10.0]]])  # y = 10
    x = torch.tensor([[[5.0, 12.0], [5.0, 14.0]]])  # costs 2 and 4
    valid = torch.ones(1, 2, dtype=torch.bool)
    sure_of_first, _ = epipolar_cost_loss(x, lines, torch.tensor([[1.0, 100.0]]), valid, 1e6)
    sure_of_second, _ = epipolar_cost_loss(x, lines, torch.tensor([[100.0, 1.0]]), valid, 1e6)
    assert float(sure_of_first) < 3.0 < float(sure_of_second)
    # costs above the threshold are left out
    capped, diag = epipolar_cost_loss(x, lines, torch.ones(1, 2), valid, 3.0)
    assert diag["keep"].tolist() == [[True, False]] and float(capped) == pytest.approx(2.0)


def test_clip_lines_returns_border_points_on_the_line():
    lines = torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, -50.0], [1.0, 0.0, 500.0]])  # y=x, y=50, x=-500 (outside)
    start, end, valid = clip_lines(lines, 200, 100)
    assert valid.tolist() == [True, True, False]
    assert torch.allclose(point_line_distance(start[:2], lines[:2]), torch.zeros(2), atol=1e-4)
    assert torch.allclose(point_line_distance(end[:2], lines[:2]), torch.zeros(2), atol=1e-4)
    assert sorted([start[0].tolist(), end[0].tolist()]) == [[0.0, 0.0], [100.0, 100.0]]
    assert sorted([start[1][0].item(), end[1][0].item()]) == [0.0, 200.0]


def test_window_expectation_finds_the_matching_descriptor():
    """A descriptor map that matches the query only at one pixel gives that pixel as expected match."""
    D, h, w = 8, 16, 16
    W, H = 64, 64
    desc_map = torch.zeros(1, D, h, w)
    desc_map[:, 1] = 1.0  # everywhere "other"
    desc_map[0, :, 6, 9] = 0.0
    desc_map[0, 0, 6, 9] = 1.0  # the match: cell (r=6, c=9) -> pixel centre (9.5*4, 6.5*4)
    query = torch.zeros(1, 1, D)
    query[..., 0] = 1.0
    cfg = EpipolarLossConfig(temperature=60.0, window_size=0.5)
    centre = torch.tensor([[[36.0, 28.0]]])
    mean, std = window_expectation(query, desc_map, centre, W, H, cfg)
    assert torch.allclose(mean[0, 0], torch.tensor([38.0, 26.0]), atol=2.5)
    flat = torch.zeros_like(desc_map)
    flat[:, 1] = 1.0
    _, std_flat = window_expectation(query, flat, centre, W, H, cfg)
    assert float(std_flat) > 3 * float(std)  # an ambiguous map is less certain


def test_disk_sampling_one_proposal_per_cell():
    torch.manual_seed(0)
    score = torch.full((1, 1, 32, 48), 5.0, requires_grad=True)  # high score: almost all accepted
    kps = sample_keypoints(score, 8)[0]
    assert 20 <= len(kps["keypoints"]) <= 24  # 4 x 6 cells
    cells = {(int(x // 8), int(y // 8)) for x, y in kps["keypoints"].tolist()}
    assert len(cells) == len(kps["keypoints"])
    kps["logp"].sum().backward()
    assert score.grad is not None and score.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def tiny_batch():
    pair = _reichstag_pair()
    ds = PairDataset([pair], (96, 64), 80.0)
    return torch.utils.data.default_collate([ds[0]])


def _grads(module):
    return [p.grad for p in module.parameters()]


def test_gradients_flow_only_into_the_stage_net(tiny_batch):
    torch.manual_seed(0)
    model = PoSFeat("resnet18", 32)
    sconf = DescStage(grid_size=16, temperature=60.0, line_samples=20, window_size=0.2, loc_rand=0.0, cost_thr=1.0)
    set_modes(model, "desc")
    loss, _ = stage_loss(model, tiny_batch, "desc", sconf, torch.Generator().manual_seed(0))
    loss.backward()
    assert any(g is not None and g.abs().sum() > 0 for g in _grads(model.desc))
    assert all(g is None for g in _grads(model.det))
    assert model.det.training is False and model.desc.training is True

    model.zero_grad(set_to_none=True)
    set_modes(model, "kp")
    kconf = KpStage(cell=8, temperature=60.0, reward_thr=2.0, reward_pos=1.0, reward_neg=-0.25, kp_penalty=-0.001)
    loss, stats = stage_loss(model, tiny_batch, "kp", kconf, torch.Generator().manual_seed(0))
    loss.backward()
    assert stats["keypoints"] > 0
    assert any(g is not None and g.abs().sum() > 0 for g in _grads(model.det))
    assert all(g is None for g in _grads(model.desc))
    assert model.desc.training is False


def test_full_epipolar_loss_is_finite_and_uses_both_directions(tiny_batch):
    torch.manual_seed(0)
    model = PoSFeat("resnet18", 32)
    with torch.no_grad():
        out = model.desc(torch.cat([tiny_batch["image0"], tiny_batch["image1"]]))
    Fm = fundamental_from_poses(*(tiny_batch[k].double() for k in ("K0", "K1", "T0", "T1"))).float()
    q = torch.rand(1, 24, 2) * torch.tensor([96.0, 64.0])
    loss, stats = epipolar_loss(out["local_map"][:1], out["local_map"][1:], Fm, 96, 64,
                                EpipolarLossConfig(window_size=0.2, cost_thr=1.0), q, q)
    assert torch.isfinite(loss) and float(loss) > 0
    assert stats["kept_01"] > 0 and stats["kept_10"] > 0
    assert float(loss) == pytest.approx(stats["loss_01"] + stats["loss_10"], rel=1e-5)
