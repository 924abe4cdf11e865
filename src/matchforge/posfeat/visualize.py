"""Training snapshots: score map, keypoints, and mutual-NN matches coloured by their epipolar error."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from matchforge.matchers.stored import mutual_nn  # noqa: E402
from matchforge.posfeat.detect import describe, detect_keypoints, sift_keypoints  # noqa: E402
from matchforge.geometry.epipolar import fundamental_from_poses, symmetric_epipolar_pixels  # noqa: E402
from matchforge.posfeat.networks import PoSFeat, normalize  # noqa: E402
from matchforge.io.write import save_figure  # noqa: E402
from matchforge.posfeat.config import PoSFeatExtract  # noqa: E402

EXTRACT = PoSFeatExtract()  # snapshots detect as an extraction with the defaults


@torch.no_grad()
def snapshot(model: PoSFeat, batch: dict[str, torch.Tensor], path: Path, title: str, use_sift: bool,
             max_kp: int = 1024, err_thr: float = 2.0) -> dict[str, float]:
    """Save a figure for the first pair of ``batch`` and return its match statistics.

    ``use_sift``: keypoints from SIFT (description stage: the score map is not trained yet) instead of the
    score map. Matches are green when both symmetric epipolar distances are below ``err_thr`` pixels.
    """
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    imgs = [batch[f"image{k}"][:1].to(dev) for k in (0, 1)]
    H, W = imgs[0].shape[-2:]
    outs = [model(normalize(im)) for im in imgs]
    kps, descs = [], []
    for im, out in zip(imgs, outs):
        if use_sift:
            rgb = (im[0].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)
            xy, _, _ = sift_keypoints(rgb, max_kp)
            kp = torch.from_numpy(xy).to(dev)
        else:
            kp, _ = detect_keypoints(out["score_map"], EXTRACT.nms_radius, EXTRACT.thr, num_pts=max_kp, min_pts=64)
        kps.append(kp)
        descs.append(describe(out["local_map"], kp, W, H) if len(kp) else torch.zeros(0, out["local_map"].shape[1]))
    m = mutual_nn(descs[0].cpu(), descs[1].cpu())
    Fm = fundamental_from_poses(*(batch[k][:1].double() for k in ("K0", "K1", "T0", "T1")))[0].float().to(dev)
    k0, k1 = kps[0][m[:, 0]], kps[1][m[:, 1]]
    if len(m):
        e1, e0 = symmetric_epipolar_pixels(k0, k1, Fm)
        err = torch.maximum(e1.diagonal(), e0.diagonal()).cpu().numpy()
    else:
        err = np.zeros(0)
    good = err < err_thr
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1, 1, 2]})
    rgb0 = imgs[0][0].permute(1, 2, 0).cpu().numpy()
    rgb1 = imgs[1][0].permute(1, 2, 0).cpu().numpy()
    axes[0].imshow(outs[0]["score_map"][0, 0].cpu().numpy(), cmap="magma")
    axes[0].set_title("score map (image 0)")
    axes[1].imshow(rgb0)
    kp0 = kps[0].cpu().numpy()
    axes[1].scatter(kp0[:, 0] - 0.5, kp0[:, 1] - 0.5, s=3, c="yellow")
    axes[1].set_title(f"{'SIFT' if use_sift else 'detected'} keypoints: {len(kp0)}")
    axes[2].imshow(np.concatenate([rgb0, rgb1], 1))
    a, b = k0.cpu().numpy() - 0.5, k1.cpu().numpy() - 0.5
    for j in np.argsort(good):  # draw good matches last, on top
        axes[2].plot([a[j, 0], b[j, 0] + W], [a[j, 1], b[j, 1]], lw=0.6, color="lime" if good[j] else "red", alpha=0.8)
    axes[2].set_title(f"mutual NN: {len(m)} matches, {int(good.sum())} within {err_thr:g} px of the epipolar lines")
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=80)
    model.train(was_training)
    return {"vis_matches": float(len(m)), "vis_epipolar_precision": float(good.mean()) if len(m) else 0.0}
