"""Reconstruction-based evaluation of local features, the ETH local feature benchmark's protocol and columns.

Given keypoints + descriptors for every image of a scene: write them into a COLMAP database, match image
pairs by mutual nearest neighbour, verify the matches geometrically, run incremental mapping with the SfM
stage's retries (:func:`matchforge.sfm.reconstruct.map_with_retries`), and report the benchmark's columns
(:data:`ETH_COLUMNS`): images, registered images, sparse points, observations, mean track length,
observations per image, mean reprojection error (px), inlier pairs, inlier matches; and, only with a CUDA
build of pycolmap, the dense columns (PatchMatch stereo + fusion: dense points).

The database is either a benchmark dataset's own (:func:`eth_dataset`: ``<dataset>/images/`` +
``<dataset>/database.db`` with its images and cameras, and the pairs of ``match-list.txt`` when present,
copied so the original stays untouched) or a fresh one (any folder of images, optionally with known
PINHOLE intrinsics: a matchforge scene's undistorted model). Keypoints are matchforge pixels (pixel
centres at +0.5), which is COLMAP's convention too.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import shutil
import time
from contextlib import closing
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.sfm.reconstruct import map_with_retries, model_summary
from matchforge.sfm.config import SfMSection

log = logging.getLogger(__name__)

ETH_COLUMNS = ("num_images", "num_registered", "num_points3D", "num_observations", "mean_track_length",
               "mean_observations_per_image", "mean_reprojection_error", "num_verified_pairs", "num_inlier_matches")
DENSE_COLUMNS = ("num_dense_points",)


def eth_dataset(folder: str | Path) -> tuple[Path, Path, list[str], list[tuple[str, str]] | None]:
    """(images folder, database, image names, pairs or None for all) of an ETH benchmark dataset folder."""
    folder = Path(folder)
    images, database = folder / "images", folder / "database.db"
    if not images.is_dir() or not database.is_file():
        raise MatchforgeError("not an ETH local feature benchmark dataset (it needs images/ and database.db)", path=folder,
                              fix="point the test set's eth: at a dataset folder of the benchmark (e.g. Fountain, Herzjesu)")
    # read-only: opening it with pycolmap's Database would update the file (its schema, its indices)
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        names = sorted(name for (name,) in db.execute("SELECT name FROM images"))
    match_list = folder / "match-list.txt"
    pairs = [tuple(line.split()[:2]) for line in match_list.read_text().splitlines() if line.strip()] \
        if match_list.is_file() else None
    return images, database, names, pairs


def main(image_dir: str | Path, names: Sequence[str], features: Callable[[str], dict[str, np.ndarray]],
         matcher: Callable[[np.ndarray, np.ndarray], np.ndarray], work_dir: str | Path,
         pairs: Sequence[tuple[str, str]] | None = None, *, camera_mode: str,
         sfm: Mapping[str, Any] | None = None, intrinsics: Mapping[str, np.ndarray] | None = None,
         database: str | Path | None = None,
         dense: bool | None = None) -> dict[str, float]:
    """Map ``names`` (images under ``image_dir``) from the given features; ``pairs`` default to all pairs.

    ``camera_mode``: COLMAP camera grouping of the images (posfeat.testsets' ``camera_mode``). ``sfm``: options of
    the sfm stage that differ from its defaults (e.g. ``num_threads``). ``database``: an existing database holding these images and their cameras (an ETH benchmark dataset's),
    copied into ``work_dir``; else a fresh one is made. ``dense``: also run PatchMatch + fusion for the dense
    columns (None = when pycolmap has CUDA). ``work_dir`` receives ``database.db``, ``pairs.txt`` and
    ``sparse/<k>/``; it is recreated.
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
    if database is not None:
        shutil.copy2(database, db_path)
    else:
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
    # the SfM stage's mapping, retries included, so a test set is scored as the sfm stage would map it
    # single-threaded mapping: the score repeats exactly (10-50 images map in seconds); registration from 2D-3D
    # matches only, as the benchmark's COLMAP did (the structure-less fallback took 20-28 s per photo here)
    conf = {**SfMSection.of(sfm, "sfm").to_dict(), "mapping_threads": 1, "min_model_size": 2,
            "structure_less_fallback": False, "min_points3D": 0}
    verify = pycolmap.TwoViewGeometryOptions()
    verify.ransac.random_seed = conf["seed"]  # reproducible verification (COLMAP's default -1 is random)
    pycolmap.verify_matches(db_path, work / "pairs.txt", verify)
    db = pycolmap.Database.open(db_path)
    n_verified = db.num_verified_image_pairs() if hasattr(db, "num_verified_image_pairs") else -1
    n_inliers = db.num_inlier_matches() if hasattr(db, "num_inlier_matches") else -1
    db.close()
    best_dir, attempts = map_with_retries(conf, db_path, image_dir, work / "sparse", list(names))
    stats: dict[str, float] = {"num_images": len(names), "num_pairs": len(pairs),
                               "mean_num_matches": float(np.mean(num_matches)) if num_matches else 0.0,
                               "num_verified_pairs": int(n_verified), "num_inlier_matches": int(n_inliers),
                               "mapping_attempts": len(attempts),
                               "num_models": max((len(a["models"]) for a in attempts), default=0),
                               "mean_num_keypoints": float(np.mean([len(f["keypoints"]) for f in feats.values()]))}
    if best_dir is not None:
        stats.update(model_summary(pycolmap.Reconstruction(str(best_dir))))
        if dense if dense is not None else pycolmap.has_cuda:
            stats["num_dense_points"] = dense_points(best_dir, image_dir, work / "dense")
    else:
        stats.update(num_registered=0, num_points3D=0, num_observations=0, mean_track_length=0.0,
                     mean_observations_per_image=0.0, mean_reprojection_error=float("nan"))
    stats["seconds"] = time.time() - t0
    log.info("reconstruction of %d images: %s", len(names), stats)
    return stats


def dense_points(sparse_dir: str | Path, image_dir: str | Path, work: str | Path) -> int:
    """Points of COLMAP's dense fusion of the model (undistortion, PatchMatch stereo, fusion; needs CUDA): the
    benchmark's dense column."""
    import pycolmap

    work = Path(work)
    pycolmap.undistort_images(work, sparse_dir, image_dir)
    pycolmap.patch_match_stereo(work)
    (work / "fused").mkdir(exist_ok=True)
    return int(pycolmap.stereo_fusion(work / "fused", work).num_points3D())
