"""Reconstruction-based evaluation of local features (in the spirit of the ETH local-feature benchmark).

Given keypoints + descriptors for every image of a scene, import them into a fresh COLMAP database
(pycolmap), match image pairs by mutual nearest neighbour, verify the matches geometrically, run
incremental mapping with the SfM stage's retries (:func:`matchforge.sfm.reconstruct.map_with_retries`),
and report: registered images, 3D points, observations, mean track length and
mean reprojection error (pixels) of the largest model. Keypoints are matchforge pixels (pixel
centres at +0.5), which is COLMAP's convention too.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.sfm.reconstruct import map_with_retries, model_summary
from matchforge.workflow import schema_defaults

log = logging.getLogger(__name__)


def main(image_dir: str | Path, names: Sequence[str], features: Callable[[str], dict[str, np.ndarray]],
         matcher: Callable[[np.ndarray, np.ndarray], np.ndarray], work_dir: str | Path,
         pairs: Sequence[tuple[str, str]] | None = None, camera_mode: str = "AUTO",
         min_num_matches: int = 15, num_threads: int = -1, seed: int = 0,
         intrinsics: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
    """Map ``names`` (images under ``image_dir``) from the given features; ``pairs`` default to all pairs.

    ``work_dir`` receives ``database.db``, ``pairs.txt`` and ``sparse/<k>/``; it is recreated.
    """
    import pycolmap

    t0 = time.time()
    image_dir, work = Path(image_dir), Path(work_dir)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    db_path = work / "database.db"
    names = list(names)
    if len(names) < 2:
        raise MatchforgeError("reconstruction needs at least two images", fix="check the test set", path=image_dir)
    pycolmap.Database.open(db_path).close()  # import_images expects an existing database
    reader = pycolmap.ImageReaderOptions()
    pycolmap.import_images(db_path, image_dir, getattr(pycolmap.CameraMode, camera_mode.upper()), names, reader)
    db = pycolmap.Database.open(db_path)
    ids = {img.name: img.image_id for img in db.read_all_images()}
    missing = [n for n in names if n not in ids]
    if missing:
        db.close()
        raise MatchforgeError(f"{len(missing)} images could not be imported (e.g. {missing[0]})",
                              fix="check that the files are readable images", path=image_dir)
    if intrinsics:  # known cameras (a matchforge scene's undistorted model): PINHOLE with their focal as prior
        for n in names:
            cam = db.read_camera(db.read_image(ids[n]).camera_id)
            K = np.asarray(intrinsics[n], dtype=np.float64)
            known = pycolmap.Camera.create_from_model_name(cam.camera_id, "PINHOLE", float(K[0, 0]), cam.width, cam.height)
            known.params = [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]
            known.has_prior_focal_length = True
            db.update_camera(known)
    feats = {n: features(n) for n in names}
    for n in names:
        db.write_keypoints(ids[n], np.ascontiguousarray(feats[n]["keypoints"], dtype=np.float32))
    pairs = list(pairs) if pairs is not None else list(itertools.combinations(names, 2))
    num_matches = []
    for a, b in pairs:
        m = matcher(feats[a]["descriptors"], feats[b]["descriptors"])
        db.write_matches(ids[a], ids[b], np.ascontiguousarray(m, dtype=np.uint32))
        num_matches.append(len(m))
    db.close()
    (work / "pairs.txt").write_text("".join(f"{a} {b}\n" for a, b in pairs))
    verify = pycolmap.TwoViewGeometryOptions()
    verify.ransac.random_seed = seed  # reproducible verification (COLMAP's default -1 is random)
    pycolmap.verify_matches(db_path, work / "pairs.txt", verify)
    db = pycolmap.Database.open(db_path)
    n_verified = db.num_verified_image_pairs() if hasattr(db, "num_verified_image_pairs") else -1
    n_inliers = db.num_inlier_matches() if hasattr(db, "num_inlier_matches") else -1
    db.close()
    # the SfM stage's mapping, retries included, so a test set is scored as the sfm stage would map it
    # single-threaded mapping: the score repeats exactly (10-50 images map in seconds)
    conf = {**schema_defaults("sfm"), "min_num_matches": min_num_matches, "num_threads": num_threads,
            "mapping_threads": 1, "seed": seed, "min_model_size": 2}
    best_dir, attempts = map_with_retries(conf, db_path, image_dir, work / "sparse", len(names))
    stats: dict[str, float] = {"num_images": len(names), "num_pairs": len(pairs),
                               "mean_num_matches": float(np.mean(num_matches)) if num_matches else 0.0,
                               "num_verified_pairs": int(n_verified), "num_inlier_matches": int(n_inliers),
                               "mapping_attempts": len(attempts),
                               "num_models": max((len(a["models"]) for a in attempts), default=0),
                               "mean_num_keypoints": float(np.mean([len(f["keypoints"]) for f in feats.values()]))}
    if best_dir is not None:
        stats.update(model_summary(pycolmap.Reconstruction(str(best_dir))))
    else:
        stats.update(num_registered=0, num_points3D=0, num_observations=0, mean_track_length=0.0,
                     mean_reprojection_error=float("nan"))
    stats["seconds"] = time.time() - t0
    log.info("reconstruction of %d images: %s", len(names), stats)
    return stats
