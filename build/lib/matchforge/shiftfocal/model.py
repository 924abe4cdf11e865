"""A pure-PyTorch point-voxel regressor standing in for LeReS's torchsparse SPVCNN classifier.

The points of each sample are scaled isotropically into the unit cube (so the shape, which carries
the focal and shift cues, is kept), their features are scatter-averaged into a dense ``R^3`` grid,
and a masked 3D CNN (stem, then 4 stages of stride-2 down-convolution + 2 residual blocks, channels
``[32, 32, 64, 128, 256]`` by default as in SPVCNN) runs on it. The point branch devoxelises the stem
and the last stage onto the points (trilinear, ``grid_sample``), adds them, averages over points and
regresses one scalar. Occupancy masks after every block approximate sparse-convolution support.

Inputs: ``coords`` (B, N, 3) point positions, ``feats`` (B, N, C) with C = 3 (x, y, z) or
5 (x, y, z, (u - u0)/f, (v - v0)/f), ``mask`` (B, N) bool for padded batches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelConfig:
    in_channels: int = 3  # 3: x, y, z; 5: + normalised u, v
    resolution: int = 64  # voxels per axis (multiple of 16)
    channels: list[int] = field(default_factory=lambda: [32, 32, 64, 128, 256])
    bias_init: float = 0.0  # initial output (e.g. the mean target)
    norm: str = "group"  # "group" (GroupNorm: same in training and inference, robust to small batches) or "batch" (SPVCNN)

    def to_dict(self) -> dict:
        return asdict(self)


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(c)
    if kind == "group":
        return nn.GroupNorm(max(1, min(8, c // 4)), c)  # at least 4 channels per group (the last stage may be 1 voxel)
    raise ValueError(f"norm must be 'group' or 'batch', got {kind!r}")


def _block(cin: int, cout: int, k: int, norm: str, stride: int = 1) -> nn.Sequential:
    pad = (k - 1) // 2 if stride == 1 else 0
    return nn.Sequential(nn.Conv3d(cin, cout, k, stride, pad, bias=False), _norm(norm, cout), nn.ReLU(inplace=True))


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.Conv3d(cin, cout, 3, 1, 1, bias=False), _norm(norm, cout), nn.ReLU(inplace=True),
                                  nn.Conv3d(cout, cout, 3, 1, 1, bias=False), _norm(norm, cout))
        self.skip = nn.Identity() if cin == cout else nn.Sequential(nn.Conv3d(cin, cout, 1, bias=False), _norm(norm, cout))

    def forward(self, x: torch.Tensor, occ: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x)) * occ


def normalise_coords(coords: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Map each sample's valid points into ``[0, 1)^3`` with one scale for all axes (shape preserved)."""
    big = torch.finfo(coords.dtype).max
    m = mask.unsqueeze(-1)
    lo = torch.where(m, coords, torch.full_like(coords, big)).amin(dim=1, keepdim=True)
    hi = torch.where(m, coords, torch.full_like(coords, -big)).amax(dim=1, keepdim=True)
    extent = (hi - lo).amax(dim=-1, keepdim=True).clamp_min(1e-8)
    out = (coords - lo) / extent * (1 - 1e-4)
    return torch.where(m, out, torch.zeros_like(out))


class PointVoxelRegressor(nn.Module):
    """Global scalar regressor on a point cloud (see module docstring)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.resolution % 16:
            raise ValueError(f"resolution must be a multiple of 16, got {config.resolution}")
        self.config = config
        cs = config.channels
        c_in = config.in_channels
        nk = config.norm
        self.stem1 = _block(c_in, cs[0], 3, nk)
        self.stem2 = _block(cs[0], cs[0], 3, nk)
        self.downs = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for i in range(4):
            self.downs.append(_block(cs[i], cs[i], 2, nk, stride=2))
            self.blocks.append(nn.ModuleList([ResBlock(cs[i], cs[i + 1], nk), ResBlock(cs[i + 1], cs[i + 1], nk)]))
        point_norm = nn.BatchNorm1d(cs[4]) if nk == "batch" else nn.LayerNorm(cs[4])
        self.point_mlp = nn.Sequential(nn.Linear(cs[0], cs[4]), point_norm, nn.ReLU(inplace=True))
        self.head = nn.Linear(cs[4], 1)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
        nn.init.constant_(self.head.bias, config.bias_init)

    def voxelise(self, unit: torch.Tensor, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scatter-mean ``feats`` into (B, C, R, R, R) and return it with the occupancy (B, 1, R, R, R)."""
        B, N, C = feats.shape
        R = self.config.resolution
        idx = (unit * R).long().clamp_(0, R - 1)
        flat = (idx[..., 0] * R + idx[..., 1]) * R + idx[..., 2] + torch.arange(B, device=feats.device).unsqueeze(1) * R**3
        flat = flat[mask]
        grid = torch.zeros(B * R**3, C, device=feats.device, dtype=feats.dtype).index_add_(0, flat, feats[mask])
        count = torch.zeros(B * R**3, device=feats.device, dtype=feats.dtype).index_add_(0, flat, torch.ones_like(flat, dtype=feats.dtype))
        grid = grid / count.clamp_min(1).unsqueeze(1)
        grid = grid.view(B, R, R, R, C).permute(0, 4, 1, 2, 3).contiguous()
        occ = (count > 0).to(feats.dtype).view(B, 1, R, R, R)
        return grid, occ

    @staticmethod
    def devoxelise(grid: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """Trilinear interpolation of ``grid`` (B, C, D, H, W) at ``unit`` (B, N, 3) -> (B, N, C)."""
        g = (unit * 2 - 1)[..., [2, 1, 0]].unsqueeze(1).unsqueeze(1)  # grid_sample wants (x=W, y=H, z=D)
        out = F.grid_sample(grid, g, mode="bilinear", padding_mode="border", align_corners=False)
        return out[:, :, 0, 0, :].transpose(1, 2)

    def forward(self, coords: torch.Tensor, feats: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Returns (B,) predictions."""
        if mask is None:
            mask = torch.ones(coords.shape[:2], dtype=torch.bool, device=coords.device)
        unit = normalise_coords(coords, mask)
        x, occ = self.voxelise(unit, feats, mask)
        x = self.stem2(self.stem1(x) * occ) * occ
        z0 = self.devoxelise(x, unit)
        for down, (b1, b2) in zip(self.downs, self.blocks):
            occ = F.max_pool3d(occ, 2)
            x = down(x) * occ
            x = b2(b1(x, occ), occ)
        z1 = self.devoxelise(x, unit)
        m = mask.unsqueeze(-1).to(z1.dtype)
        z0_flat = self.point_mlp(z0[mask])
        z = torch.zeros_like(z1)
        z[mask] = z1[mask] + z0_flat
        pooled = (z * m).sum(1) / m.sum(1).clamp_min(1)
        return self.head(pooled).squeeze(-1)


def flush_denormals() -> None:
    """Treat subnormal floats as zero on CPU (no effect on CUDA). Tiny activations and optimiser
    moments of this network otherwise run 7-15x slower on x86 CPUs (measured on the test items)."""
    torch.set_flush_denormal(True)


def build_model(config: ModelConfig | dict) -> PointVoxelRegressor:
    if isinstance(config, dict):
        config = ModelConfig(**config)
    return PointVoxelRegressor(config)
