"""``matchforge recover-shape``: focal length and depth shift of one relative depth map (LeReS inference).

Order as in LeReS: focal, then shift, then focal again, one step each:

1. ``d = (d_rel - min + 0.5) / p98`` over valid pixels; ``f0 = (H // 2) / tan(30 deg)`` (60-degree FOV);
   principal point at the image centre.
2. focal net on the cloud unprojected with ``f0`` predicts ``alpha``; ``f1 = f0 / alpha``.
   (``alpha`` clamped to ``alpha_range``, default [0.5, 1.5], around the trained range [0.6, 1.25]).
3. shift net on the cloud unprojected with ``f1`` predicts ``delta`` (clamped to ``<= max_shift``);
   ``d1 = d - delta``.
4. focal net on ``d1`` (divided by its p98) unprojected with ``f1``; ``f2 = f1 / alpha2``.

The result is a depth ``d1`` (unitless, up to scale) and focal ``f2`` (pixels) whose unprojection is
the recovered 3D shape.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from matchforge.shiftfocal.config import ShiftFocalEval
from matchforge.errors import MatchforgeError
from matchforge.io.depth import read_depth_file
from matchforge.io.images import read_image
from matchforge.io.safe import load_torch
from matchforge.geometry.camera import centred_intrinsics, depth_from_disparity, guess_focal, normalize_depth, unproject, vfov_deg
from matchforge.shiftfocal.model import PointVoxelRegressor, build_model, flush_denormals
from matchforge.shiftfocal.sampling import p98, point_features
from matchforge.io.write import write_json

log = logging.getLogger(__name__)


@dataclass
class Recovery:
    """Result of :func:`recover_shape` (focal lengths in pixels, depths unitless)."""

    depth_input: np.ndarray = field(repr=False)  # normalised input (d - min + 0.5) / p98, 0 = invalid
    depth: np.ndarray = field(repr=False)  # depth_input - shift, 0 = invalid
    shift: float
    focal0: float
    focal1: float
    focal: float

    @property
    def K(self) -> np.ndarray:
        h, w = self.depth.shape
        return centred_intrinsics(self.focal, h, w)

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view (degrees) of the recovered focal."""
        return vfov_deg(self.focal, self.depth.shape[0])

    def points(self) -> np.ndarray:
        """(N, 3) recovered point cloud (valid pixels, row-major)."""
        return unproject(self.depth, self.K)[0]


def load_model(path: str | Path, device: torch.device | str = "cpu") -> PointVoxelRegressor:
    """A network written by ``shiftfocal-train`` (``<run>/<target>.pt``), in eval mode."""
    path = Path(path)
    if not path.exists():
        raise MatchforgeError("model file not found", fix="train it first (rule shiftfocal_train / matchforge shiftfocal-train)", path=path)
    ck = load_torch(path, "shift/focal model")
    if not (isinstance(ck, dict) and isinstance(ck.get("model_config"), dict) and isinstance(ck.get("state_dict"), dict)):
        raise MatchforgeError("not a shift/focal model written by matchforge (it lacks 'model_config' and 'state_dict')",
                              path=path, fix="give the folder of a shiftfocal run (results/models/shiftfocal/<run>, "
                                             "holding focal.pt and shift.pt) or the name of such a run")
    model = build_model(ck["model_config"])
    model.load_state_dict(ck["state_dict"])
    return model.to(device).eval()


@torch.no_grad()
def predict(model: PointVoxelRegressor, depth: np.ndarray, mask: np.ndarray, focal: float, num_points: int) -> float:
    """One scalar from the network for the cloud of ``depth`` unprojected with ``focal`` (centred principal point)."""
    device = next(model.parameters()).device
    coords, feats = point_features(depth, mask, focal, model.config.in_channels, None, num_points)
    c = torch.from_numpy(coords).unsqueeze(0).to(device)
    f = torch.from_numpy(feats).unsqueeze(0).to(device)
    return float(model(c, f))


def recover_shape(depth_rel: np.ndarray, focal_model: PointVoxelRegressor, shift_model: PointVoxelRegressor,
                  mask: np.ndarray | None = None, *, fov_deg: float, max_shift: float,
                  num_points: int, alpha_range: tuple[float, float]) -> Recovery:
    """LeReS shape recovery of a relative (affine-invariant) depth map; see the module docstring.

    Each predicted ``alpha`` is clamped to ``alpha_range`` (training samples alpha in [0.6, 1.25]; a
    prediction far outside is extrapolation), as LeReS clamps the shift to ``max_shift``.
    """
    depth_rel = np.asarray(depth_rel, dtype=np.float64)
    if mask is None:
        mask = np.isfinite(depth_rel) & (depth_rel > 0)
    if mask.sum() < 16:
        raise MatchforgeError("fewer than 16 valid depth pixels", fix="give a depth map with valid (positive, finite) values")
    h, w = depth_rel.shape
    d = normalize_depth(depth_rel, mask)
    f0 = guess_focal(h, fov_deg)
    lo, hi = alpha_range
    f1 = f0 / float(np.clip(predict(focal_model, d, mask, f0, num_points), lo, hi))
    shift = min(predict(shift_model, d, mask, f1, num_points), max_shift)
    d1 = np.where(mask, d - shift, 0.0)
    valid = mask & (d1 > 0)
    d1[~valid] = 0
    scaled = d1 / p98(d1[valid])
    f2 = f1 / float(np.clip(predict(focal_model, scaled, valid, f1, num_points), lo, hi))
    return Recovery(d, d1, float(shift), float(f0), float(f1), float(f2))


def main(model_dir: str | Path, depth_path: str | Path, out: str | Path, image: str | Path | None = None,
         inverse: bool = False, *, fov_deg: float, max_shift: float, num_points: int,
         alpha_range: tuple[float, float]) -> Recovery:
    """Recover one depth map with the run in ``model_dir``; write ``recovery.json``, ``depth.npy`` and
    ``before.ply`` (60-degree guess, no shift) / ``after.ply`` (recovered) in ``out``."""
    from matchforge.io.ply import write_ply
    from matchforge.device import pick_device

    flush_denormals()
    device = pick_device()
    focal_model = load_model(Path(model_dir) / "focal.pt", device)
    shift_model = load_model(Path(model_dir) / "shift.pt", device)
    d = read_depth_file(depth_path)
    mask = np.isfinite(d) & (d > 0)
    if inverse:  # disparity-like output (MiDaS, Depth-Anything): larger = nearer
        d = depth_from_disparity(d)
    rec = recover_shape(d, focal_model, shift_model, mask, fov_deg=fov_deg, max_shift=max_shift, num_points=num_points,
                       alpha_range=tuple(alpha_range))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    colors = None
    if image:
        rgb = read_image(image, required=False)
        if rgb is not None and rgb.shape[:2] == d.shape:
            colors = rgb
    h, w = d.shape
    before = unproject(rec.depth_input, centred_intrinsics(rec.focal0, h, w), mask)[0]
    write_ply(out / "before.ply", before, None if colors is None else colors[mask])
    valid = rec.depth > 0
    write_ply(out / "after.ply", rec.points(), None if colors is None else colors[valid])
    np.save(out / "depth.npy", rec.depth.astype(np.float32))
    info = {"focal0_px": rec.focal0, "focal1_px": rec.focal1, "focal_px": rec.focal, "shift": rec.shift,
            "vfov_deg": rec.vfov_deg, "K": rec.K.tolist()}
    write_json(out / "recovery.json", info, indent=1)
    log.info("focal %.1f px (guess %.1f), shift %.3f -> %s", rec.focal, rec.focal0, rec.shift, out)
    return rec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, help="run folder with focal.pt and shift.pt")
    parser.add_argument("--depth", required=True, help="relative depth (.npy/.npz/.h5/16-bit .png); 0 = invalid")
    parser.add_argument("--image", help="colour image of the same size (colours the PLY)")
    parser.add_argument("--inverse", action="store_true", help="the input is inverse depth (disparity-like)")
    defaults = ShiftFocalEval()  # the evaluation's recovery options
    parser.add_argument("--fov", type=float, default=defaults.fov_deg, help="initial vertical field of view (deg)")
    parser.add_argument("--max-shift", type=float, default=defaults.max_shift)
    parser.add_argument("--num-points", type=int, default=defaults.num_points)
    parser.add_argument("--alpha-range", type=float, nargs=2, default=defaults.alpha_range,
                        help="clamp of each focal ratio prediction")
    parser.add_argument("--out", required=True, help="output folder")


def run(args: argparse.Namespace) -> None:
    main(args.model_dir, args.depth, args.out, args.image, args.inverse, fov_deg=args.fov, max_shift=args.max_shift,
         num_points=args.num_points, alpha_range=args.alpha_range)
