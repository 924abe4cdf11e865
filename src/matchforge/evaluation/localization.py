"""Visual localization as hloc runs Aachen Day-Night: triangulate the database, then localize the queries.

Two kinds of test set (``localization.testsets``):

- **own scene** (``dataset:``): one scene of a dataset split by viewpoint (docs/dataset.md). The database is
  its training photos with their SfM poses and intrinsics held fixed, the queries its test photos, whose SfM
  poses are the ground truth (the localization gets only their intrinsics, as Aachen's queries come with theirs).
- **Aachen layout** (``aachen:``): a folder laid out as Aachen Day-Night v1.1 (:mod:`matchforge.io.aachen`): its
  database model, its queries with intrinsics, its pair lists. The result holds the benchmark's submission file;
  errors and recall only when a ``ground_truth`` file (the submission format) is given, since the benchmark
  keeps its query poses private.

Steps (one code path for both):

1. Pairs (:func:`problem`): database pairs (each database image with its ``db_k`` most covisible database images,
   hloc's ``pairs_from_covisibility``, or the given list) and query pairs (each query with its ``query_k`` most
   covisible database images in the ground-truth model, an oracle retrieval stated in the result, or the given
   retrieval list).
2. The matcher matches every pair once (``matchforge match-pairs`` writes the match file).
3. Keypoints per image are the matched points of all its pairs, merged within ``merge_px`` (hloc's
   quantisation for detector-free matchers; detector-based features repeat exactly and merge exactly).
4. The database is triangulated from those matches with pycolmap (geometric verification, then
   ``triangulate_points`` into the fixed database cameras).
5. Each query: its 2D-3D correspondences through its matches to the database images' triangulated points,
   then ``pycolmap.estimate_and_refine_absolute_pose`` (RANSAC ``ransac_px``, then refinement).
6. Errors against the ground truth: rotation (degrees) and camera-centre distance. Recall at Aachen's
   thresholds (0.25 m, 2°), (0.5 m, 5°), (5 m, 10°): in metres when ``metres_per_unit`` (the scene's
   ``scenes.<s>.metres_per_unit``) is known, else with the metres replaced by multiples of the median
   database camera baseline (distance to the nearest other database camera), and the result says which.

Poses are world->camera; pixels are matchforge's (= COLMAP's: the top-left corner at (0, 0)).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping

import numpy as np

from matchforge.evaluation.config import testset_of
from matchforge.errors import MatchforgeError

log = logging.getLogger(__name__)

LOOSE = 0.005  # the tightest distance threshold is loose above this share of the database cameras' extent


@dataclass
class Problem:
    """What to localize: the database model and images, the queries' intrinsics, the pairs to match."""

    reference: Any  # pycolmap.Reconstruction: the database images' cameras and world->camera poses
    images: Path  # image names are paths below it
    db_pairs: list[tuple[str, str]]
    queries: dict[str, Any]  # query name -> pycolmap.Camera
    query_pairs: list[tuple[str, str]]  # (query, database image)
    truth: dict[str, np.ndarray] | None  # query name -> world->camera 4x4, when known
    retrieval: str
    database: list[str]  # the database images (registered in ``reference``, queries excluded)
    oracle_pairs: list[tuple[str, str]] | None = None  # own scene with visual retrieval: the covisibility oracle's
    oracle_retrieval: str = ""

    def oracle(self) -> "Problem":
        """The same problem with the oracle's query pairs (an upper bound of the retrieval)."""
        return replace(self, query_pairs=self.oracle_pairs or [], oracle_pairs=None, retrieval=self.oracle_retrieval)


def split_images(spec: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(database names, query names) of an own-scene test set: its scene's train and test images in the dataset."""
    meta = json.loads(Path(spec["dataset"]).read_text())
    scenes = meta["scenes"]
    scene = spec.get("scene") or (next(iter(scenes)) if len(scenes) == 1 else None)
    if scene not in scenes:
        raise MatchforgeError(f"localization needs one scene of the dataset (it has {sorted(scenes)})", path=spec["dataset"],
                              fix="set the test set's scene:")
    images = scenes[scene]["images"]
    if scenes[scene].get("split") != "images" or not images.get("test") or not images.get("train"):
        raise MatchforgeError(f"scene '{scene}' has no held-out photos beside training ones in this dataset (it is split "
                              "by scene): localization needs both", path=spec["dataset"],
                              fix="use a dataset of one scene (split.by: images)")
    return list(images["train"]), list(images["test"])


def _covisible(model: Any, names: list[str], candidates: list[str], k: int) -> dict[str, list[str]]:
    """For each of ``names``, its ``k`` candidates sharing the most 3D points (at least one), most first."""
    points = {img.name: {p.point3D_id for p in img.points2D if p.has_point3D()} for img in model.images.values()}
    out = {}
    for n in names:
        shared = sorted(((len(points[n] & points[c]), c) for c in candidates if c != n), key=lambda s: (-s[0], s[1]))
        out[n] = [c for s, c in shared[:k] if s > 0]
    return out


def _db_covisibility(model: Any, names: list[str], k: int) -> list[tuple[str, str]]:
    return sorted({tuple(sorted((a, b))) for a, nb in _covisible(model, names, names, k).items() for b in nb})


def _pose(image: Any) -> np.ndarray:
    T = np.eye(4)
    T[:3] = (image.cam_from_world() if callable(image.cam_from_world) else image.cam_from_world).matrix()
    return T


def problem(spec: Mapping[str, Any]) -> Problem:
    """The :class:`Problem` of a test set spec (own scene: ``dataset`` + ``sfm``; Aachen layout: ``aachen``). An own
    scene's query pairs are the retrieved ones (``query_pairs``, from ``matchforge localization-pairs``), with each
    query's most covisible database images in the ground-truth model as ``oracle_pairs``; with
    ``retrieval: covisibility`` the oracle's are the query pairs."""
    import pycolmap

    spec = testset_of(spec).to_dict()
    if spec.get("aachen"):
        return _aachen_problem(spec)
    sfm = Path(spec["sfm"])
    reference = pycolmap.Reconstruction(str(sfm / "sparse"))
    by_name = {img.name: img for img in reference.images.values()}
    db, queries = split_images(spec)
    covisible = [(q, d) for q, nb in _covisible(reference, queries, db, int(spec["query_k"])).items() for d in nb]
    oracle = (f"oracle: each query's {spec['query_k']} most covisible database images in the ground-truth model "
              "(an upper bound: a real query has no such model)")
    if spec["retrieval"] == "visual":
        from matchforge.io.aachen import read_pairs

        if not spec.get("query_pairs"):
            raise MatchforgeError("retrieval: visual needs the retrieved pair list (query_pairs)",
                                  fix="run matchforge localization-pairs for the test set first (the workflow does), or "
                                      "set retrieval: covisibility")
        query_pairs = [(q, d) for q, d in read_pairs(spec["query_pairs"]) if q in set(queries) and d in set(db)]
        retrieval = (f"visual: up to {spec['query_k']} database images per query by COLMAP visual-word retrieval, "
                     "re-ranked by verified SIFT matches")
        oracle_pairs = covisible
    else:
        query_pairs, retrieval, oracle_pairs = covisible, oracle, None
    db_pairs = _db_covisibility(reference, db, int(spec["db_k"]))
    cameras = {q: reference.cameras[by_name[q].camera_id] for q in queries}
    truth = {q: _pose(by_name[q]) for q in queries}
    for q in queries:
        reference.deregister_frame(by_name[q].frame_id)
    return Problem(reference, sfm / "images", db_pairs, cameras, query_pairs, truth, retrieval, sorted(db),
                   oracle_pairs, oracle)


def _aachen_problem(spec: Mapping[str, Any]) -> Problem:
    import pycolmap

    from matchforge.io import aachen

    root = Path(spec["aachen"])
    reference = pycolmap.Reconstruction(str(aachen.model_dir(root)))
    db_names = sorted(img.name for img in reference.images.values())
    queries = aachen.read_queries(root)
    query_pairs = aachen.read_pairs(spec["query_pairs"]) if spec.get("query_pairs") else []
    unknown = sorted({q for q, _ in query_pairs if q not in queries} | {d for _, d in query_pairs if d not in set(db_names)})
    if unknown or not query_pairs:
        raise MatchforgeError(f"the query pair list must pair queries (queries/*_with_intrinsics.txt) with database "
                              f"images of the model; {len(unknown)} unknown names, e.g. {unknown[:3]}" if unknown
                              else "no query pairs", path=spec.get("query_pairs") or root,
                              fix="give query_pairs: a retrieval pair list ('query_name db_name' per line)")
    queries = {q: queries[q] for q in sorted({q for q, _ in query_pairs})}
    if spec.get("db_pairs"):
        db_pairs = aachen.read_pairs(spec["db_pairs"])
    elif reference.num_points3D():
        db_pairs = _db_covisibility(reference, db_names, int(spec["db_k"]))
    else:
        raise MatchforgeError("the database model has no 3D points to pick covisible database pairs from",
                              path=aachen.model_dir(root), fix="give db_pairs: a pair list of database images")
    truth = {}
    if spec.get("ground_truth"):
        by_file = aachen.read_submission(spec["ground_truth"])
        truth = {q: by_file[Path(q).name] for q in queries if Path(q).name in by_file}
    return Problem(reference, root / aachen.IMAGES, db_pairs, queries, query_pairs, truth or None,
                   f"given: {Path(spec['query_pairs']).name}", db_names)


def records(spec: Mapping[str, Any]) -> list[Any]:
    """Every pair to match (the retrieved and the oracle's query pairs once each), as records with
    ``image0``/``image1`` paths (for ``match-pairs``)."""
    p = problem(spec)
    pairs = list(dict.fromkeys(p.db_pairs + p.query_pairs + (p.oracle_pairs or [])))
    return [SimpleNamespace(scene="localization", image0=p.images / a, image1=p.images / b) for a, b in pairs]


def image_names(spec: Mapping[str, Any]) -> tuple[Path, list[str]]:
    """(image folder, every image name a pair uses): what a feature extractor must cover."""
    p = problem(spec)
    return p.images, sorted({n for pair in p.db_pairs + p.query_pairs + (p.oracle_pairs or []) for n in pair})


class Keypoints:
    """hloc's keypoint assignment for detector-free matchers (``match_dense.assign_keypoints``), in pixels of the
    size the matcher saw: each image's keypoints are gathered over all of its pairs, one per occupied ``cell_px``
    cell (at the mean of the matched points in it); :meth:`assign` maps points to existing keypoints of an image
    (nearest within ``max_error_px``) without adding any, as hloc does for the database side of query pairs.
    ``scale`` maps an image name to (file pixels) / (pixels the matcher saw)."""

    def __init__(self, cell_px: float, max_error_px: float, scale: Any):
        self.cell, self.max_error, self.scale = float(cell_px), float(max_error_px), scale
        self.xy: dict[str, np.ndarray] = {}
        self._cells: dict[str, dict[tuple[int, int], int]] = {}
        self._trees: dict[str, Any] = {}

    def build(self, points: Mapping[str, list[np.ndarray]]) -> None:
        """Keypoints of each image from all its matched points (file pixels)."""
        for name, chunks in points.items():
            xy = np.concatenate(chunks) if chunks else np.zeros((0, 2))
            keys = np.floor(xy / (self.cell * self.scale(name))).astype(np.int64)
            cells, inverse = np.unique(keys, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            sums = np.zeros((len(cells), 2))
            np.add.at(sums, inverse, xy)
            self.xy[name] = sums / np.bincount(inverse, minlength=len(cells))[:, None]
            self._cells[name] = {tuple(c): k for k, c in enumerate(cells.tolist())}

    def ids(self, name: str, xy: np.ndarray) -> np.ndarray:
        """Keypoint ids of points that took part in :meth:`build` (their cell's keypoint)."""
        keys = np.floor(np.asarray(xy) / (self.cell * self.scale(name))).astype(np.int64)
        return np.array([self._cells[name][tuple(k)] for k in keys.tolist()], np.int64)

    def assign(self, name: str, xy: np.ndarray) -> np.ndarray:
        """Ids of the nearest keypoints within ``max_error_px``, -1 where there is none."""
        from scipy.spatial import cKDTree

        kp = self.xy.get(name, np.zeros((0, 2)))
        if not len(kp) or not len(xy):
            return np.full(len(xy), -1, np.int64)
        tree = self._trees.get(name) or self._trees.setdefault(name, cKDTree(kp))
        dist, idx = tree.query(np.asarray(xy), distance_upper_bound=self.max_error * self.scale(name))
        return np.where(np.isfinite(dist), idx, -1).astype(np.int64)

    def array(self, name: str) -> np.ndarray:
        return np.asarray(self.xy.get(name, np.zeros((0, 2))), np.float64).reshape(-1, 2)


def _unique(m: np.ndarray) -> np.ndarray:
    return np.unique(m, axis=0) if len(m) else np.zeros((0, 2), np.int64)


def assign_matches(reader: Any, db_pairs: list[tuple[str, str]], query_pairs: list[tuple[str, str]], cell_px: float,
                   max_error_px: float, scale: Callable[[str], float],
                   size: Callable[[str], tuple[int, int]] | None = None) -> tuple[Keypoints, dict, dict]:
    """(keypoints, database matches, query matches): every pair's matches as (M, 2) keypoint ids. Database images
    get their keypoints from the database pairs; a query pair's database points go to the nearest of those within
    ``max_error_px`` (or are dropped), its query points to keypoints gathered over all of the query's pairs.
    ``scale``: image name -> (file pixels) / (pixels the matcher saw); ``size``: image name -> (w, h), for the
    reader's check that the matches lie inside the images."""
    kps = Keypoints(cell_px, max_error_px, scale)
    stored = {pair: reader(*pair, sizes=tuple(map(size, pair)) if size else None) for pair in db_pairs + query_pairs}
    points: dict[str, list[np.ndarray]] = {}
    for a, b in db_pairs:
        points.setdefault(a, []).append(stored[(a, b)][0])
        points.setdefault(b, []).append(stored[(a, b)][1])
    for q, _ in query_pairs:
        points.setdefault(q, []).append(stored[(q, _)][0])
    kps.build(points)
    db_matches = {(a, b): _unique(np.stack([kps.ids(a, stored[(a, b)][0]), kps.ids(b, stored[(a, b)][1])], 1))
                  for a, b in db_pairs}
    q_matches = {}
    for q, d in query_pairs:
        kq, kd = stored[(q, d)]
        m = np.stack([kps.ids(q, kq), kps.assign(d, kd)], 1)
        q_matches[(q, d)] = _unique(m[m[:, 1] >= 0])
    return kps, db_matches, q_matches


def triangulate(p: Problem, kps: Keypoints, db_matches: Mapping[tuple[str, str], np.ndarray], work: Path) -> Any:
    """The database model triangulated from the matches into the fixed reference cameras (pycolmap)."""
    import pycolmap

    reference = pycolmap.Reconstruction(p.reference)
    reference.delete_all_points2D_and_points3D()
    ids = {img.name: img.image_id for img in reference.images.values()}
    db_path = work / "database.db"
    db = pycolmap.Database.open(db_path)
    for camera in reference.cameras.values():
        db.write_camera(camera, use_camera_id=True)
    for rig in reference.rigs.values():
        db.write_rig(rig, use_rig_id=True)
    for frame in reference.frames.values():
        db.write_frame(frame, use_frame_id=True)
    for image in reference.images.values():
        db.write_image(image, use_image_id=True)
        db.write_keypoints(image.image_id, np.ascontiguousarray(kps.array(image.name), np.float32))
    for (a, b), m in db_matches.items():
        db.write_matches(ids[a], ids[b], np.ascontiguousarray(m, np.uint32))
    db.close()
    (work / "pairs.txt").write_text("".join(f"{a} {b}\n" for a, b in db_matches))
    verify = pycolmap.TwoViewGeometryOptions()
    verify.ransac.random_seed = 0
    pycolmap.verify_matches(db_path, work / "pairs.txt", verify)
    (work / "triangulated").mkdir()
    return pycolmap.triangulate_points(reference, db_path, p.images, work / "triangulated")


def image_frames(images: Path, working: float | None) -> tuple[Callable[[str], float], Callable[[str], tuple[int, int]]]:
    """(name -> (file pixels) / (pixels the matcher saw), name -> (w, h) of the file); each header is read once."""
    from functools import cache

    from matchforge.io.images import image_size

    size = cache(lambda name: image_size(images / name))
    return (lambda name: max(size(name)) / float(working) if working else 1.0), size


def localize(p: Problem, matches: str | Path, work: str | Path, spec: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """Per query ``{query, localized, T (world->camera 4x4 or None), num_correspondences, num_inliers}``, and the
    triangulated database model; ``work`` (emptied first) holds the database and the model. A query is localized
    when the pose has at least ``min_inliers`` RANSAC inliers."""
    import pycolmap

    from matchforge.io.matches import MatchReader

    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    with MatchReader(matches) as reader:
        scale, size = image_frames(p.images, reader.matcher.get("working_size"))
        kps, db_matches, q_matches = assign_matches(reader, p.db_pairs, p.query_pairs, spec["cell_px"],
                                                    spec["max_error_px"], scale, size)
    model = triangulate(p, kps, db_matches, work)
    db_ids = {img.name: img.image_id for img in model.images.values()}
    estimation = pycolmap.AbsolutePoseEstimationOptions()
    estimation.ransac.max_error = float(spec["ransac_px"])
    estimation.ransac.random_seed = 0
    rows = []
    for q, camera in p.queries.items():
        pts2d, pts3d, seen = [], [], set()
        xy = kps.array(q)
        for (qq, d), m in q_matches.items():
            if qq != q or not len(m):
                continue
            image = model.images[db_ids[d]]
            for kq, kd in m:
                p2d = image.points2D[int(kd)]
                if p2d.has_point3D() and (int(kq), p2d.point3D_id) not in seen:
                    seen.add((int(kq), p2d.point3D_id))
                    pts2d.append(xy[int(kq)])
                    pts3d.append(model.points3D[p2d.point3D_id].xyz)
        est = None
        if len(pts2d) >= 4:
            est = pycolmap.estimate_and_refine_absolute_pose(np.asarray(pts2d, np.float64), np.asarray(pts3d, np.float64),
                                                            camera, estimation)
        inliers = int(np.sum(est["inlier_mask"])) if est is not None else 0
        T = None
        if est is not None and inliers >= int(spec["min_inliers"]):
            T = np.eye(4)
            T[:3] = est["cam_from_world"].matrix()
        rows.append({"query": q, "localized": T is not None, "T": T, "num_correspondences": len(pts2d),
                     "num_inliers": inliers})
    return rows, model


def errors(T_est: np.ndarray, T_gt: np.ndarray) -> tuple[float, float]:
    """(camera-centre distance in the model's units, rotation error in degrees) of two world->camera poses."""
    R_err = np.degrees(np.arccos(np.clip((np.trace(T_est[:3, :3] @ T_gt[:3, :3].T) - 1) / 2, -1, 1)))
    centre = lambda T: -T[:3, :3].T @ T[:3, 3]  # noqa: E731
    return float(np.linalg.norm(centre(T_est) - centre(T_gt))), float(R_err)


def score(spec: Mapping[str, Any], matches: str | Path, work: str | Path) -> dict[str, Any]:
    """Localize every query of test set ``spec`` from the stored ``matches``; the result dict. An Aachen-layout
    set also gets its submission file, ``<work>/submission.txt``; an own scene with visual retrieval also the
    oracle retrieval's result under ``oracle`` (an upper bound)."""
    t0 = time.time()
    spec = testset_of(spec).to_dict()
    p = problem(spec)
    out = _score_problem(p, spec, matches, Path(work))
    if p.oracle_pairs is not None:
        oracle = _score_problem(p.oracle(), spec, matches, Path(work) / "oracle")
        out["oracle"] = {k: v for k, v in oracle.items() if k != "options"}
    return {**out, "seconds": round(time.time() - t0, 2)}


def _score_problem(p: Problem, spec: Mapping[str, Any], matches: str | Path, work: Path) -> dict[str, Any]:
    from matchforge.io.aachen import write_submission

    rows, model = localize(p, matches, work, spec)
    out: dict[str, Any] = {"num_queries": len(rows), "num_db": len(p.database),
                           "num_db_pairs": len(p.db_pairs), "num_query_pairs": len(p.query_pairs),
                           "num_points3D": model.num_points3D(), "retrieval": p.retrieval,
                           "localized": float(np.mean([r["localized"] for r in rows]) * 100) if rows else 0.0}
    if spec.get("aachen"):
        out["submission"] = str(work / "submission.txt")
        write_submission(out["submission"], {r["query"]: r["T"] for r in rows if r["localized"]})
    for r in rows:
        T = r.pop("T")
        r["t_error"], r["R_error"] = (errors(T, p.truth[r["query"]]) if T is not None and p.truth and r["query"] in p.truth
                                      else (None, None))
        r["pose"] = T.tolist() if T is not None else None
    if p.truth:
        truth_rows = [r for r in rows if r["query"] in p.truth]
        out.update(summarize(truth_rows, p.reference, spec, p.database))
    else:
        out.update({f"recall@{k}": None for k in (1, 2, 3)}, unit=None, note="no ground truth: see the submission file")
    return {**out, "options": dict(spec), "queries": rows}


def camera_centres(model: Any, names: list[str]) -> np.ndarray:
    by_name = {img.name: img for img in model.images.values()}
    return np.array([by_name[n].projection_center() for n in names if n in by_name and by_name[n].has_pose]).reshape(-1, 3)


def median_baseline(centres: np.ndarray) -> float:
    """Median distance (model units) of each camera to its nearest other one."""
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(1)))


def _finite(v: float) -> float | None:
    """JSON-safe: None for an error that is infinite (more than half the queries not localized)."""
    return float(v) if np.isfinite(v) else None


def summarize(rows: list[dict[str, Any]], reference: Any, spec: Mapping[str, Any], database: list[str]) -> dict[str, Any]:
    """Recall at the test set's thresholds (%, with 95 % intervals over queries) and median errors; an unlocalized
    query has infinite error. Distances are in metres with ``metres_per_unit``, else in median database camera
    baselines; ``loose`` says when the tightest metric threshold is loose for the scene (over 0.5 % of the extent
    of the database cameras)."""
    from matchforge.evaluation.stats import FEW_PAIRS, intervals, weighted_mean

    centres = camera_centres(reference, database)
    if spec.get("metres_per_unit"):
        scale, unit = float(spec["metres_per_unit"]), "m"
    else:
        scale, unit = 1.0 / median_baseline(centres), "median baseline"
    t = np.array([r["t_error"] * scale if r["localized"] else np.inf for r in rows], np.float64)
    R = np.array([r["R_error"] if r["localized"] else np.inf for r in rows], np.float64)
    thresholds = [tuple(map(float, th)) for th in spec["thresholds"]]
    hits = np.array([[(ti <= dt) & (ri <= dr) for dt, dr in thresholds] for ti, ri in zip(t, R)], np.float64)
    hits = hits.reshape(len(rows), len(thresholds)) * 100
    extent = float(np.linalg.norm(centres.max(0) - centres.min(0))) * scale if len(centres) > 1 else float("nan")
    out: dict[str, Any] = {"num_queries": len(rows), "unit": unit, "few_pairs": len(rows) < FEW_PAIRS,
                           "median_t_error": _finite(np.median(t)) if len(t) else None,
                           "median_R_error": _finite(np.median(R)) if len(R) else None,
                           "units_per_sfm_unit": scale, "database_extent": extent}
    cis = intervals(hits, [(r["query"],) for r in rows], weighted_mean, [True] * len(thresholds)) if rows else []
    for k, (dt, dr) in enumerate(thresholds, 1):
        out[f"recall@{k}"] = float(hits[:, k - 1].mean()) if rows else 0.0
        if rows:
            out[f"recall@{k}_ci"] = cis[k - 1]
        out[f"threshold@{k}"] = f"{dt:g} {unit}, {dr:g} deg"
    if unit == "m" and np.isfinite(extent) and thresholds and thresholds[0][0] > LOOSE * extent:
        out["loose"] = (f"{thresholds[0][0]:g} {unit} is loose for this scene (database cameras span {extent:.3g} {unit}): "
                        "set the test set's thresholds")
    return out


def _hits(result: Mapping[str, Any], names: list[str]) -> np.ndarray:
    """(queries, thresholds) success (1/0) of each named query at each threshold of ``result``."""
    scale = float(result["units_per_sfm_unit"])
    by_name = {q["query"]: q for q in result["queries"]}
    thresholds = [tuple(map(float, th)) for th in result["options"]["thresholds"]]
    out = np.zeros((len(names), len(thresholds)))
    for i, n in enumerate(names):
        q = by_name[n]
        if q["localized"] and q["t_error"] is not None:
            out[i] = [(q["t_error"] * scale <= dt) and (q["R_error"] <= dr) for dt, dr in thresholds]
    return out * 100


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Paired comparison of localization result ``b`` against ``a`` on the same queries: per recall threshold the
    difference, its interval, the exact sign test (McNemar's) and the verdict. None when the queries, thresholds or
    units differ, or there is no ground truth."""
    from matchforge.evaluation.stats import paired, weighted_mean

    if a.get("recall@1") is None or b.get("recall@1") is None:
        return None
    names = sorted(q["query"] for q in a["queries"])
    if names != sorted(q["query"] for q in b["queries"]) or a["options"]["thresholds"] != b["options"]["thresholds"] \
            or a["units_per_sfm_unit"] != b["units_per_sfm_unit"]:
        return None
    ha, hb = _hits(a, names), _hits(b, names)
    units = [(n,) for n in names]
    return {f"recall@{k + 1}": paired(f"recall@{k + 1}", ha[:, k], hb[:, k], units, weighted_mean,
                                      per_unit_a=ha[:, k], per_unit_b=hb[:, k], share=True)
            for k in range(ha.shape[1])}
