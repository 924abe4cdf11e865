"""HPatches-protocol homography evaluation (D2-Net): mutual-NN matching, MMA at 1..15 px, MMA score.

Works for any extractor: it takes keypoints + descriptors per image. Folders understood by
:func:`find_pairs` (searched recursively):

- HPatches sequences: ``<seq>/1.ppm .. 6.ppm`` + ``H_1_k`` (maps image 1 -> image k); pairs (1, k).
  Sequences named ``i_*`` count as illumination, ``v_*`` as viewpoint.
- Oxford affine: ``img1.ppm .. img6.ppm`` + ``H1to<k>p`` (maps image 1 -> image k).
- homogr benchmark: ``<name>A.*``, ``<name>B.*`` + ``<name>_model.txt``, which maps **B -> A**;
  we use its inverse so every pair's ``H`` maps image 0 (A) to image 1 (B).

Homographies act on pixel-index coordinates (pixel centres at integers), so matchforge keypoints
(pixel centres at +0.5) are shifted by -0.5 before projection. A match is correct when
``|H x0 - x1| <= thr``. MMA is the mean over pairs of the per-pair share of correct matches (0 for a
pair without matches); the MMA score is the mean of MMA@1..10 weighted by 1.9, 1.8, ..., 1.0 (PoSFeat).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.images import IMAGE_SUFFIXES
from matchforge.io.write import save_figure

# D2-Net protocol: HPatches sequences with images larger than 1600x1200 are left out.
D2NET_EXCLUDED = ("i_contruction", "i_crownnight", "i_dc", "i_pencils", "i_whitebuilding",
                  "v_artisans", "v_astronautis", "v_talent")
THRESHOLDS = tuple(range(1, 16))
SCORE_WEIGHTS = tuple(np.round(np.arange(1.9, 0.95, -0.1), 1))  # for MMA@1..10


@dataclass
class HomographyPair:
    name: str
    image0: str  # image names relative to the test-set root (keys of the feature file)
    image1: str
    H: np.ndarray  # 3x3, maps image-0 pixel indices to image-1 pixel indices
    category: str  # "illumination", "viewpoint" or "other"


def _image(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_SUFFIXES:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return None


def _read_h(path: Path) -> np.ndarray:
    try:
        H = np.loadtxt(path, dtype=np.float64).reshape(3, 3)
    except ValueError as err:
        raise MatchforgeError(f"cannot read a 3x3 homography ({err})", fix="check the file", path=path) from None
    return H


def find_pairs(root: str | Path, exclude: Sequence[str] = D2NET_EXCLUDED) -> list[HomographyPair]:
    """All image pairs with ground-truth homographies below ``root`` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise MatchforgeError("homography test set folder not found", fix="check posfeat testsets.<name>.path",
                              path=root)
    pairs: list[HomographyPair] = []
    for folder in sorted({p.parent for p in root.rglob("*") if p.is_file()}):
        rel = folder.relative_to(root).as_posix()
        if folder.name in exclude:
            continue
        prefix = "" if rel == "." else rel + "/"
        cat = {"i_": "illumination", "v_": "viewpoint"}.get(folder.name[:2], "other")
        for hfile in sorted(folder.glob("H_1_*")):  # HPatches
            k = hfile.name.split("_")[-1]
            a, b = _image(folder, "1"), _image(folder, k)
            if a and b:
                pairs.append(HomographyPair(f"{prefix}1-{k}", prefix + a.name, prefix + b.name, _read_h(hfile), cat))
        for hfile in sorted(folder.glob("H1to*p")):  # Oxford affine
            k = hfile.name[4:-1]
            a, b = _image(folder, "img1"), _image(folder, f"img{k}")
            if a and b:
                pairs.append(HomographyPair(f"{prefix}img1-img{k}", prefix + a.name, prefix + b.name,
                                            _read_h(hfile), cat))
        for hfile in sorted(folder.glob("*_model.txt")):  # homogr: model maps B -> A
            stem = hfile.name[: -len("_model.txt")]
            a, b = _image(folder, f"{stem}A"), _image(folder, f"{stem}B")
            if a and b:
                pairs.append(HomographyPair(f"{prefix}{stem}", prefix + a.name, prefix + b.name,
                                            np.linalg.inv(_read_h(hfile)), cat))
    if not pairs:
        raise MatchforgeError("no image pairs with homographies found (HPatches H_1_k, Oxford H1to<k>p or "
                              "homogr <name>_model.txt)", fix="check the test-set folder", path=root)
    return pairs


def project(H: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to (N, 2) points."""
    p = np.c_[xy, np.ones(len(xy))] @ H.T
    return p[:, :2] / p[:, 2:3]


def match_errors(kp0: np.ndarray, kp1: np.ndarray, matches: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Reprojection error (pixels) of each match (i, j): |H (kp0[i] - 0.5) - (kp1[j] - 0.5)|."""
    if len(matches) == 0:
        return np.zeros(0)
    a = project(H, kp0[matches[:, 0]] - 0.5)
    b = kp1[matches[:, 1]] - 0.5
    return np.linalg.norm(a - b, axis=1)


def mma_curve(errors: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> np.ndarray:
    """Share of matches with error <= each threshold (0 for no matches)."""
    if len(errors) == 0:
        return np.zeros(len(thresholds))
    return np.array([np.mean(errors <= t) for t in thresholds])


def mma_score(curve_1_to_10: Sequence[float]) -> float:
    """PoSFeat's MMA score: mean of MMA@1..10 weighted by 1.9, 1.8, ..., 1.0."""
    w = np.asarray(SCORE_WEIGHTS)
    return float(np.sum(w * np.asarray(curve_1_to_10)[:10]) / w.sum())


def evaluate(pairs: Sequence[HomographyPair], features: Callable[[str], dict[str, np.ndarray]],
             matcher: Callable[[np.ndarray, np.ndarray], np.ndarray],
             thresholds: Sequence[float] = THRESHOLDS) -> dict:
    """MMA over ``pairs``; ``features(name)`` gives keypoints/descriptors, ``matcher`` the (M, 2) matches."""
    per_pair = []
    for p in pairs:
        f0, f1 = features(p.image0), features(p.image1)
        m = matcher(f0["descriptors"], f1["descriptors"])
        err = match_errors(f0["keypoints"], f1["keypoints"], m, p.H)
        per_pair.append({"pair": p.name, "category": p.category, "num_features": 0.5 * (len(f0["keypoints"]) + len(f1["keypoints"])),
                         "num_matches": int(len(m)), "mma": mma_curve(err, thresholds).tolist()})
    out: dict = {"thresholds": list(thresholds), "num_pairs": len(per_pair), "pairs": per_pair}
    groups = {"overall": per_pair}
    for cat in ("illumination", "viewpoint"):
        sel = [r for r in per_pair if r["category"] == cat]
        if sel:
            groups[cat] = sel
    for g, rows in groups.items():
        curve = np.mean([r["mma"] for r in rows], axis=0)
        res = {"mma": curve.tolist(), "num_pairs": len(rows),
               "num_features": float(np.mean([r["num_features"] for r in rows])),
               "num_matches": float(np.mean([r["num_matches"] for r in rows]))}
        for t in (1, 3, 5, 10):
            if t in thresholds:
                res[f"mma@{t}"] = float(curve[list(thresholds).index(t)])
        if all(t in thresholds for t in range(1, 11)):
            res["mma_score"] = mma_score([curve[list(thresholds).index(t)] for t in range(1, 11)])
        out[g] = res
    return out


def plot_curves(results: dict[str, dict], path: str | Path, title: str = "MMA (HPatches protocol)") -> None:
    """One MMA-vs-threshold curve (1..10 px) per method; ``results`` maps a label to an :func:`evaluate` result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in ("overall", "illumination", "viewpoint") if any(g in r for r in results.values())]
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, g in zip(axes[0], groups):
        for label, r in results.items():
            if g not in r:
                continue
            th = np.asarray(r["thresholds"])
            sel = th <= 10
            ax.plot(th[sel], np.asarray(r[g]["mma"])[sel], marker="o", ms=3,
                    label=f"{label} (MMA score {r[g].get('mma_score', float('nan')):.3f})")
        ax.set(title=f"{g} ({next(iter(results.values()))[g]['num_pairs']} pairs)", xlabel="threshold (px)",
               ylabel="MMA", ylim=(0, 1), xlim=(1, 10))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=100)
