"""Ground truth for LoFTR from depth, poses and intrinsics (the official definitions).

Coarse level (before the matcher): every coarse cell centre of image 0, in original-image pixels
(``8 * (x, y) * scale0``), is warped into image 1 with its depth, ``T_0to1`` and the intrinsics, and
rounded to the nearest coarse cell of image 1; the same is done from image 1 to image 0. A cell pair
(i, j) is a ground-truth match when i -> j and j -> i (mutual nearest neighbours); cell 0 never is.
Cells without depth have no defined warp and never get ground truth. (Upstream discards the whole
validity mask, so such cells all warp to the epipole and one of them can loop back to a spurious
match; that is the only deviation.) As upstream, the rest of the validity check (inside the image,
depth-consistent) is not used by default, the mutual check filtering most wrong warps;
``depth_check=True`` applies it.

Fine level (after the matcher, on its ``b/i/j_ids`` which include the ground-truth pads): the offset
of the warped cell centre from the centre of the 5x5 fine window in image 1, in units of the
window's half-size, so it lies in [-1, 1] when inside the window.

Conventions: poses world->camera, ``T_0to1`` (N, 4, 4) maps camera-0 to camera-1 coordinates, ``K``
at the original resolution, depth (N, Hd, Wd) at the original resolution (zero-padded, 0 = invalid),
in the same units as the translations.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from kornia.geometry import create_meshgrid

from matchforge.loftr.config import LoFTRTrain

log = logging.getLogger(__name__)


@torch.no_grad()
def warp_points(pts0: torch.Tensor, depth0: torch.Tensor, depth1: torch.Tensor, T_0to1: torch.Tensor,
                K0: torch.Tensor, K1: torch.Tensor, depth_tol: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Warp pixels ``pts0`` (N, L, 2) of image 0 into image 1.

    Depth is read at the rounded pixel, ``depth0[y, x]``. Returns ``(valid, warped)``: ``valid``
    (N, L) is depth present in image 0, projection inside image 1 and relative depth error against
    ``depth1`` below ``depth_tol``; ``warped`` (N, L, 2) are pixels of image 1.
    """
    n = pts0.shape[0]
    idx = pts0.round().long()
    hd0, wd0 = depth0.shape[1:]
    ix = idx[..., 0].clamp(0, wd0 - 1)
    iy = idx[..., 1].clamp(0, hd0 - 1)
    batch = torch.arange(n, device=pts0.device)[:, None]
    z0 = depth0[batch, iy, ix]
    has_depth = z0 > 0

    homog = torch.cat([pts0, torch.ones_like(pts0[..., :1])], -1) * z0[..., None]
    cam0 = torch.linalg.inv(K0) @ homog.transpose(1, 2)
    cam1 = T_0to1[:, :3, :3] @ cam0 + T_0to1[:, :3, 3:]
    z1_warped = cam1[:, 2]
    proj = (K1 @ cam1).transpose(1, 2)
    warped = proj[..., :2] / (proj[..., 2:] + 1e-4)

    hd1, wd1 = depth1.shape[1:]
    inside = (warped[..., 0] > 0) & (warped[..., 0] < wd1 - 1) & (warped[..., 1] > 0) & (warped[..., 1] < hd1 - 1)
    wl = warped.long()
    wx = torch.where(inside, wl[..., 0], torch.zeros_like(wl[..., 0]))
    wy = torch.where(inside, wl[..., 1], torch.zeros_like(wl[..., 1]))
    z1 = depth1[batch, wy, wx]
    consistent = ((z1 - z1_warped) / z1).abs() < depth_tol
    return has_depth & inside & consistent, warped, has_depth


def _cell_index(pts_c: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Flat index x + y * w of rounded coarse coordinates; 0 for those outside the (h, w) grid."""
    r = pts_c.round().long()
    idx = r[..., 0] + r[..., 1] * w
    outside = (r[..., 0] < 0) | (r[..., 0] >= w) | (r[..., 1] < 0) | (r[..., 1] >= h)
    return idx.masked_fill(outside, 0)


@torch.no_grad()
def coarse_ground_truth(data: dict[str, Any], stride: int = 8, *, depth_check: bool) -> dict[str, torch.Tensor]:
    """The ground-truth coarse matches of a batch: ``b_ids``, ``i_ids``, ``j_ids`` (possibly empty), the warped
    cell centres ``w_pt0`` (N, L, 2) and the cell centres ``pt1`` (N, S, 2), original-image pixels.
    Inputs as :func:`coarse_supervision`."""
    device = data["image0"].device
    n, _, H0, W0 = data["image0"].shape
    _, _, H1, W1 = data["image1"].shape
    h0, w0, h1, w1 = H0 // stride, W0 // stride, H1 // stride, W1 // stride
    s0 = stride * data["scale0"][:, None] if "scale0" in data else stride
    s1 = stride * data["scale1"][:, None] if "scale1" in data else stride

    grid0 = create_meshgrid(h0, w0, False, device).reshape(1, h0 * w0, 2).repeat(n, 1, 1)
    grid1 = create_meshgrid(h1, w1, False, device).reshape(1, h1 * w1, 2).repeat(n, 1, 1)
    pt0 = grid0 * s0
    pt1 = grid1 * s1
    if "mask0" in data:  # padded cells -> pixel (0, 0), as upstream
        pt0 = pt0 * data["mask0"].flatten(1)[..., None]
        pt1 = pt1 * data["mask1"].flatten(1)[..., None]

    K0, K1 = data["K0"].to(pt0.dtype), data["K1"].to(pt0.dtype)
    T01, T10 = data["T_0to1"].to(pt0.dtype), data["T_1to0"].to(pt0.dtype)
    valid0, w_pt0, has_depth0 = warp_points(pt0, data["depth0"], data["depth1"], T01, K0, K1)
    valid1, w_pt1, has_depth1 = warp_points(pt1, data["depth1"], data["depth0"], T10, K1, K0)

    nearest1 = _cell_index(w_pt0 / s1, h1, w1)  # (N, L) cell of image 1 hit by each cell of image 0
    nearest0 = _cell_index(w_pt1 / s0, h0, w0)  # (N, S)
    keep0, keep1 = (valid0, valid1) if depth_check else (has_depth0, has_depth1)
    nearest1 = nearest1.masked_fill(~keep0, 0)
    nearest0 = nearest0.masked_fill(~keep1, 0)
    loop_back = torch.gather(nearest0, 1, nearest1)
    correct = loop_back == torch.arange(h0 * w0, device=device)[None]
    correct[:, 0] = False

    b_ids, i_ids = torch.where(correct)
    return {"b_ids": b_ids, "i_ids": i_ids, "j_ids": nearest1[b_ids, i_ids], "w_pt0": w_pt0, "pt1": pt1}


@torch.no_grad()
def coarse_supervision(data: dict[str, Any], stride: int = 8, *, depth_check: bool) -> dict[str, Any]:
    """Add ``conf_matrix_gt`` (N, L, S), ``spv_b_ids/i_ids/j_ids``, ``spv_w_pt0_i``, ``spv_pt1_i`` to ``data``.

    Needs ``image0/1``, ``depth0/1``, ``T_0to1``, ``T_1to0``, ``K0/1`` and optionally ``scale0/1``
    and coarse ``mask0/1``. With no ground-truth match in the batch the ids are a single dummy
    (0, 0, 0) so that the matcher's ground-truth padding still works; the loss gives it no weight
    because ``conf_matrix_gt`` stays all zero.
    """
    gt = coarse_ground_truth(data, stride, depth_check=depth_check)
    b_ids, i_ids, j_ids, w_pt0, pt1 = gt["b_ids"], gt["i_ids"], gt["j_ids"], gt["w_pt0"], gt["pt1"]
    n, _, H0, W0 = data["image0"].shape
    _, _, H1, W1 = data["image1"].shape
    device = data["image0"].device
    conf_gt = torch.zeros(n, (H0 // stride) * (W0 // stride), (H1 // stride) * (W1 // stride), device=device)
    conf_gt[b_ids, i_ids, j_ids] = 1
    if len(b_ids) == 0:
        log.warning("no ground-truth coarse match in pairs %s", data.get("pair_names"))
        b_ids = i_ids = j_ids = torch.zeros(1, dtype=torch.long, device=device)
    data.update(conf_matrix_gt=conf_gt, spv_b_ids=b_ids, spv_i_ids=i_ids, spv_j_ids=j_ids,
                spv_w_pt0_i=w_pt0, spv_pt1_i=pt1)
    return data


@torch.no_grad()
def fine_supervision(data: dict[str, Any]) -> dict[str, Any]:
    """Add ``expec_f_gt`` (M, 2): ground-truth fine offsets of the matcher's ``b/i/j_ids``, window units."""
    stride_f = data.get("stride_f", 2)
    radius = data.get("W", 5) // 2
    b, i, j = data["b_ids"], data["i_ids"], data["j_ids"]
    scale = stride_f * data["scale1"][b] if "scale1" in data else stride_f
    gt = (data["spv_w_pt0_i"][b, i] - data["spv_pt1_i"][b, j]) / scale / radius
    data["expec_f_gt"] = gt
    return data


@torch.no_grad()
def coarse_match_counts(records: list[Any], img_resize: int | None, depth_check: bool) -> list[int]:
    """Ground-truth coarse matches of each pair (``PairRecord`` s with depth) at the training resolution
    ``img_resize``: exactly what :func:`coarse_supervision` gives training for that pair."""
    from torch.utils.data import default_collate

    from matchforge.loftr.data import PairDataset

    run = LoFTRTrain()  # the loader of a run that keeps the defaults
    data = PairDataset(records, img_resize=img_resize, pad=run.pad, depth_max_size=None, interpolation=run.interpolation)
    return [len(coarse_ground_truth(default_collate([data[k]]), depth_check=depth_check)["b_ids"]) for k in range(len(data))]
