"""PoSFeat losses: line-to-window epipolar loss (description net) and the DISK-style reward (detection net).

All coordinates are full-resolution pixels (see ``geometry``); ``F`` maps image-0 points to image-1
lines (``x1^T F x0 = 0``), and ``F^T`` serves the reverse direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from matchforge.geometry.epipolar import clip_lines, epipolar_lines, point_line_distance, symmetric_epipolar_pixels
from matchforge.posfeat.sampling import sample_descriptors


def random_grid_points(batch: int, height: int, width: int, cell: int, generator: torch.Generator | None = None,
                       device: torch.device | str = "cpu") -> torch.Tensor:
    """One uniformly random point per ``cell`` x ``cell`` block: (B, N, 2) pixels."""
    gy, gx = height // cell, width // cell
    ys, xs = torch.meshgrid(torch.arange(gy), torch.arange(gx), indexing="ij")
    base = torch.stack([xs, ys], -1).reshape(1, -1, 2).float() * cell
    jitter = torch.rand(batch, gy * gx, 2, generator=generator) * cell
    return (base + jitter).to(device)


@dataclass
class EpipolarLossConfig:
    temperature: float = 60.0
    line_samples: int = 100
    window_size: float = 0.1  # half-width of the search window in [-1, 1] image coordinates
    loc_rand: float = 0.707  # uniform jitter of the window centre, in window half-widths
    cost_thr: float = 0.1  # keep correspondences whose epipolar cost < cost_thr * shorter image side


def line_search(desc0: torch.Tensor, desc1_map: torch.Tensor, lines: torch.Tensor, width: int, height: int,
                cfg: EpipolarLossConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Best match of each query along its epipolar line (no gradient).

    desc0 (B, N, D) query descriptors, desc1_map (B, D, h, w), lines (B, N, 3) in image 1.
    Returns centre (B, N, 2) pixels and valid (B, N).
    """
    with torch.no_grad():
        start, end, valid = clip_lines(lines, width, height)
        t = torch.linspace(0, 1, cfg.line_samples, device=lines.device).view(1, 1, -1, 1)
        pts = start[:, :, None] + t * (end - start)[:, :, None]  # (B, N, S, 2)
        d1 = sample_descriptors(desc1_map, pts, width, height)  # (B, N, S, D)
        sim = torch.einsum("bnd,bnsd->bns", desc0, d1)
        best = sim.argmax(-1)
        centre = torch.gather(pts, 2, best[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)
    return centre, valid


def window_expectation(desc0: torch.Tensor, desc1_map: torch.Tensor, centre: torch.Tensor, width: int, height: int,
                       cfg: EpipolarLossConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax-weighted expected match inside a window around ``centre`` (differentiable in the descriptors).

    The window spans +-window_size in normalised coordinates, sampled on an
    ``int(window_size * h) x int(window_size * w)`` grid (h, w = descriptor-map size).
    Returns expected position (B, N, 2) pixels and its spread std_x + std_y (B, N) pixels.
    """
    h, w = desc1_map.shape[-2:]
    ny, nx = max(int(cfg.window_size * h), 2), max(int(cfg.window_size * w), 2)
    hy, hx = cfg.window_size * height / 2, cfg.window_size * width / 2
    oy = torch.linspace(-hy, hy, ny, device=centre.device)
    ox = torch.linspace(-hx, hx, nx, device=centre.device)
    gy, gx = torch.meshgrid(oy, ox, indexing="ij")
    offsets = torch.stack([gx, gy], -1).reshape(1, 1, -1, 2)
    pts = centre[:, :, None] + offsets  # (B, N, S, 2)
    d1 = sample_descriptors(desc1_map, pts, width, height)
    prob = torch.softmax(cfg.temperature * torch.einsum("bnd,bnsd->bns", desc0, d1), -1)
    mean = (prob[..., None] * pts).sum(2)
    var = (prob[..., None] * pts**2).sum(2) - mean**2
    std = var.clamp_min(1e-10).sqrt().sum(-1)
    return mean, std


def epipolar_cost_loss(x_hat: torch.Tensor, lines: torch.Tensor, std: torch.Tensor, valid: torch.Tensor,
                       cost_max: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Uncertainty-weighted mean distance (pixels) of predicted matches ``x_hat`` to their epipolar lines.

    weight = (1/std) / mean(1/std) over the kept correspondences (detached); kept = valid and
    cost < ``cost_max``. Returns the loss and diagnostics. A loss of 0 means every kept match lies on its line.
    """
    cost = point_line_distance(x_hat, lines)
    keep = valid & (cost < cost_max) & torch.isfinite(cost)
    if not keep.any():
        return cost.sum() * 0.0, {"cost": cost.detach(), "keep": keep}
    inv = (1.0 / std.clamp_min(1e-6)).detach()
    w = inv / inv[keep].mean()
    loss = (w * cost)[keep].mean()
    return loss, {"cost": cost.detach(), "keep": keep}


def epipolar_loss(desc_map0: torch.Tensor, desc_map1: torch.Tensor, Fm: torch.Tensor, width: int, height: int,
                  cfg: EpipolarLossConfig, queries0: torch.Tensor, queries1: torch.Tensor,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Line-to-window epipolar loss in both directions (0->1 with F, 1->0 with F^T).

    desc_map* (B, D, h, w) raw descriptor maps (normalised here), Fm (B, 3, 3), queries* (B, N, 2) pixels.
    """
    total = desc_map0.new_zeros(())
    stats: dict[str, float] = {}
    for name, dq_map, dt_map, q, Fd in (("01", desc_map0, desc_map1, queries0, Fm),
                                        ("10", desc_map1, desc_map0, queries1, Fm.transpose(-1, -2))):
        dq = sample_descriptors(dq_map, q, width, height)
        lines = epipolar_lines(Fd, q)
        centre, valid = line_search(dq, dt_map, lines, width, height, cfg)
        if cfg.loc_rand > 0:
            u = torch.rand(centre.shape, generator=generator).to(centre.device) * 2 - 1
            half = centre.new_tensor([cfg.window_size * width / 2, cfg.window_size * height / 2])
            centre = centre + u * cfg.loc_rand * half
        valid = valid & (centre[..., 0] >= 0) & (centre[..., 0] <= width) & (centre[..., 1] >= 0) & (centre[..., 1] <= height)
        x_hat, std = window_expectation(dq, dt_map, centre, width, height, cfg)
        loss, diag = epipolar_cost_loss(x_hat, lines, std, valid, cfg.cost_thr * min(width, height))
        total = total + loss
        stats[f"loss_{name}"] = float(loss.detach())
        stats[f"kept_{name}"] = float(diag["keep"].float().mean())
    return total, stats


@dataclass
class DiskLossConfig:
    cell: int = 8
    temperature: float = 60.0
    reward_thr: float = 2.0  # pixels, both symmetric epipolar distances below it -> positive reward
    reward_pos: float = 1.0
    reward_neg: float = -0.25
    kp_penalty: float = -0.001


def sample_keypoints(score_map: torch.Tensor, cell: int) -> list[dict[str, torch.Tensor]]:
    """DISK sampling: per cell, a proposal ~ Categorical(cell scores), kept ~ Bernoulli(sigmoid(score)).

    score_map (B, 1, H, W) with H, W multiples of ``cell``. Returns per image the accepted keypoints
    (N, 2) pixels (pixel centres) and their log-probabilities (N,) (differentiable).
    """
    B, _, H, W = score_map.shape
    gh, gw = H // cell, W // cell
    s = score_map[:, 0, : gh * cell, : gw * cell].reshape(B, gh, cell, gw, cell).permute(0, 1, 3, 2, 4)
    s = s.reshape(B, gh * gw, cell * cell)
    proposal = torch.distributions.Categorical(logits=s)
    idx = proposal.sample()
    logp_prop = proposal.log_prob(idx)
    s_sel = torch.gather(s, -1, idx[..., None])[..., 0]
    accept = torch.distributions.Bernoulli(logits=s_sel)
    acc = accept.sample()
    logp = logp_prop + accept.log_prob(acc)
    cy, cx = torch.div(torch.arange(gh * gw, device=s.device), gw, rounding_mode="floor"), torch.arange(gh * gw, device=s.device) % gw
    y = cy[None] * cell + torch.div(idx, cell, rounding_mode="floor") + 0.5
    x = cx[None] * cell + idx % cell + 0.5
    xy = torch.stack([x, y], -1).float()
    out = []
    for b in range(B):
        m = acc[b] > 0
        out.append({"keypoints": xy[b][m], "logp": logp[b][m]})
    return out


def disk_loss(score0: torch.Tensor, score1: torch.Tensor, desc_map0: torch.Tensor, desc_map1: torch.Tensor,
              Fm: torch.Tensor, cfg: DiskLossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Policy-gradient loss of the detection net; descriptors and match probabilities carry no gradient.

    loss = -sum r * P * (log P + logp0 + logp1) - kp_penalty * sum logp(accepted), averaged over the batch,
    with P the dual-softmax match distribution of the frozen descriptors and r the epipolar reward.
    """
    H, W = score0.shape[-2:]
    kps0 = sample_keypoints(score0, cfg.cell)
    kps1 = sample_keypoints(score1, cfg.cell)
    total = score0.new_zeros(())
    n_kp, n_good, reward_sum = 0.0, 0.0, 0.0
    B = score0.shape[0]
    for b in range(B):
        k0, k1 = kps0[b], kps1[b]
        if len(k0["keypoints"]) == 0 or len(k1["keypoints"]) == 0:
            total = total - cfg.kp_penalty * (k0["logp"].sum() + k1["logp"].sum())
            continue
        with torch.no_grad():
            d0 = sample_descriptors(desc_map0[b : b + 1], k0["keypoints"][None], W, H)[0]
            d1 = sample_descriptors(desc_map1[b : b + 1], k1["keypoints"][None], W, H)[0]
            aff = -cfg.temperature * (1 - d0 @ d1.T)
            logP = torch.log_softmax(aff, 1) + torch.log_softmax(aff, 0)
            P = logP.exp()
            e1, e0 = symmetric_epipolar_pixels(k0["keypoints"], k1["keypoints"], Fm[b])
            good = (e1 < cfg.reward_thr) & (e0 < cfg.reward_thr)
            reward = torch.where(good, torch.full_like(e1, cfg.reward_pos), torch.full_like(e1, cfg.reward_neg))
        logp_pair = k0["logp"][:, None] + k1["logp"][None, :] + logP
        total = total - (reward * P * logp_pair).sum() - cfg.kp_penalty * (k0["logp"].sum() + k1["logp"].sum())
        n_kp += 0.5 * (len(k0["keypoints"]) + len(k1["keypoints"]))
        n_good += float((P * good).sum())
        reward_sum += float((P * reward).sum())
    return total / B, {"keypoints": n_kp / B, "expected_good_matches": n_good / B, "expected_reward": reward_sum / B}
