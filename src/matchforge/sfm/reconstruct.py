"""Photos -> COLMAP sparse model -> undistorted PINHOLE model, with pycolmap (CPU or CUDA).

Outputs in ``out`` (docs/artifacts.md): ``sparse/`` (binary PINHOLE model), ``images/`` (the undistorted
images it refers to), ``stats.json``. Intermediate files (database, distorted models, staged photos)
stay in ``out/work/`` for inspection and reuse.

A scene may reuse an existing COLMAP project (``existing``): a sparse model (distorted, or already
undistorted) and/or a database with features and matches.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pycolmap
from PIL import Image

from matchforge.conf import load_conf
from matchforge.errors import MatchforgeError
from matchforge.config_check import require_config_path
from matchforge.sfm.config import SfMSection
from matchforge.sfm.inputs import StagedImages, require_folder, skipped_summary, stage_images
from matchforge.io.files import not_regular
from matchforge.io.write import require_free_space, set_aside, write_json
from matchforge.job_resources import sfm_pairs

logger = logging.getLogger(__name__)

CAMERA_MODES = {"auto": pycolmap.CameraMode.AUTO, "single": pycolmap.CameraMode.SINGLE,
                "per_folder": pycolmap.CameraMode.PER_FOLDER, "per_image": pycolmap.CameraMode.PER_IMAGE}


def choose_matcher(conf: dict[str, Any], num_images: int, has_gps: bool, scene: str = "") -> str:
    """The matcher ``auto`` resolves to: exhaustive up to ``exhaustive_max_images`` photos, else spatial when
    the photos carry GPS, else vocab_tree (image retrieval). Never sequential: pairing by file-name order
    suits video frames and pairs arbitrary photos of an unordered collection, so only the user asks for it."""
    if conf["matcher"] != "auto":
        return conf["matcher"]
    if num_images <= conf["exhaustive_max_images"]:
        return "exhaustive"
    choice = "spatial" if has_gps else "vocab_tree"
    logger.info("%s: %d photos (> sfm.exhaustive_max_images %d)%s: matcher auto chose %s", scene or "scene",
                num_images, conf["exhaustive_max_images"], ", with GPS" if has_gps else ", no GPS", choice)
    return choice


def visual_words(conf: dict[str, Any], num_images: int) -> int:
    """Words of a vocabulary built from the scene: ``vocab_tree_num_words``, else 32 per photo rounded to a
    power of two within [1024, 8192]. On the 33 photos of tests/integration/test_sfm_large.py (640 px, 2048 features),
    with 8 retrieved photos each, 1024 words found 86 of the 94 pairs that exhaustive matching verifies,
    256 words 60-72; more words cost k-means time (trained on 64 descriptors per word)."""
    if conf["vocab_tree_num_words"]:
        return int(conf["vocab_tree_num_words"])
    return int(min(8192, max(1024, 2 ** round(math.log2(max(1, 32 * num_images))))))


def build_visual_index(conf: dict[str, Any], database: Path, path: Path, names: set[str] | None = None) -> dict[str, Any]:
    """A COLMAP visual index (vocabulary + Hamming embedding, faiss k-means) trained on the SIFT descriptors in
    ``database`` (of the images ``names`` only, when given), written to ``path`` for :func:`pycolmap.match_vocabtree`;
    returns what was built.

    Training uses at most 64 descriptors per word, drawn with ``seed``; the pair list then depends only on
    the photos and the options."""
    db = pycolmap.Database.open(database)
    try:
        descriptors = [np.asarray(db.read_descriptors(img.image_id).to_float().data) for img in db.read_all_images()
                       if names is None or img.name in names]
    finally:
        db.close()
    words = visual_words(conf, len(descriptors))
    every = np.concatenate(descriptors).astype(np.float32)
    rng = np.random.default_rng(conf["seed"])
    sample = every[np.sort(rng.choice(len(every), min(len(every), 64 * words), replace=False))]
    options = pycolmap.VisualIndex.BuildOptions()
    options.num_visual_words = words
    options.num_iterations = 20
    options.num_rounds = 1
    options.num_threads = step_threads(conf)
    t = time.time()
    pycolmap.set_random_seed(conf["seed"])  # the vocabulary's k-means and embedding draw from COLMAP's generator
    index = pycolmap.VisualIndex.create(every.shape[1], 64)
    index.build(options, pycolmap.FeatureDescriptorsFloat(pycolmap.FeatureExtractorType.SIFT, sample))
    index.write(path)
    seconds = round(time.time() - t, 2)
    logger.info("visual index of %d words from %d of %d descriptors in %.1f s", words, len(sample), len(every), seconds)
    return {"source": "built from this scene", "num_words": words, "descriptors": int(len(sample)), "seconds": seconds}


def check_vocabulary(path: Path, scene: str) -> None:
    """COLMAP aborts the whole process (a failed CHECK) on a file that is not a vocabulary of its format, after
    feature extraction; read it first in a child process and turn a failure into one line naming the option."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import sys, pycolmap; pycolmap.VisualIndex.read(sys.argv[1])", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if "Check failed" in ln or "Error" in ln] or proc.stderr.splitlines()[-1:]
        cause = lines[0].split("] ")[-1].strip()[:160] if lines else f"exit status {proc.returncode}"
        raise MatchforgeError(f"sfm.vocab_tree_path is not a COLMAP >= 3.12 vocabulary ({cause})", scene=scene, path=path,
                              fix="download vocab_tree_faiss_flickr100K_words256K.bin from "
                                  "https://colmap.github.io/install.html#pre-built-binaries, or set sfm.vocab_tree_path: "
                                  "null to build a vocabulary from the scene's own photos")


def vocab_tree(conf: dict[str, Any], database: Path, work: Path, scene: str) -> tuple[Path, dict[str, Any]]:
    """The vocabulary for vocab_tree matching: ``vocab_tree_path``, else the scene's own (built once per database)."""
    if conf["vocab_tree_path"]:
        path = Path(conf["vocab_tree_path"])
        if path.is_dir():
            raise MatchforgeError("sfm.vocab_tree_path is a folder, not a vocabulary file", scene=scene, path=path,
                                  fix="give the .bin file itself (e.g. vocab_tree_faiss_flickr100K_words256K.bin), or "
                                      "set sfm.vocab_tree_path: null to build a vocabulary from the scene's own photos")
        if not path.is_file():
            raise MatchforgeError("sfm.vocab_tree_path does not exist", scene=scene, path=path,
                                  fix="download a COLMAP >= 3.12 vocabulary tree (vocab_tree_faiss_flickr100K_words256K.bin "
                                      "from https://colmap.github.io/install.html#pre-built-binaries) to this path, or "
                                      "set sfm.vocab_tree_path: null to build a vocabulary from the scene's own photos")
        check_vocabulary(path, scene)
        return path, {"source": str(path)}
    path = work / "visual_index.bin"
    if path.is_file():
        return path, {"source": "built from this scene (kept from an earlier run with this database)"}
    return path, build_visual_index(conf, database, path)


def extract_and_match(conf: dict[str, Any], database: Path, images: StagedImages, scene: str,
                      matched: set[str] = frozenset()) -> dict[str, Any]:
    """SIFT features and geometrically verified matches into ``database``; returns what was done for stats.json:
    the matcher, photos extracted now, pairs matched now (COLMAP skips photos and pairs already in the database).
    ``matched``: photos whose matching an earlier run finished (:func:`reuse_database`). EXIF focal priors COLMAP
    cannot use are dropped before matching and named in ``images.metadata_problems`` (:func:`distrust_focal_priors`)."""
    device = pycolmap.Device.cuda if conf["use_gpu"] else pycolmap.Device.cpu
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = conf["camera_model"]
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = conf["max_image_size"]
    extraction.num_threads = step_threads(conf)
    extraction.use_gpu = conf["use_gpu"]
    extraction.sift.max_num_features = conf["max_num_features"]
    images_before, pairs_before = database_counts(database)
    t = time.time()
    pycolmap.extract_features(database, images.folder, image_names=images.names,
                              camera_mode=CAMERA_MODES[conf["camera_mode"]], reader_options=reader,
                              extraction_options=extraction, device=device)
    extracted = database_counts(database)[0] - images_before
    logger.info("extracted features of %d new images (%d already in the database) in %.1f s", extracted,
                images_before, time.time() - t)
    images.metadata_problems.extend(distrust_focal_priors(database, scene))

    matching = pycolmap.FeatureMatchingOptions()
    matching.max_num_matches = conf["max_num_matches"]
    matching.num_threads = step_threads(conf)
    matching.use_gpu = conf["use_gpu"]
    matching.guided_matching = conf["guided_matching"]
    verify = pycolmap.TwoViewGeometryOptions()
    verify.ransac.random_seed = conf["seed"]  # COLMAP's -1 seeds RANSAC from the clock: the model would vary per run
    kwargs = {"matching_options": matching, "verification_options": verify, "device": device}
    if conf["matcher"] in ("auto", "spatial") and images.gps and not images.has_gps:
        problems = images.gps_problems()
        logger.warning("%s: GPS not used for pairing (%d photo(s) without a valid position, e.g. %s)", scene,
                       len(problems), "; ".join(problems[:5]))
    matcher = choose_matcher(conf, len(images.names), images.has_gps, scene)
    done: dict[str, Any] = {"matcher": matcher}
    record = database.parent / "database.json"
    new = [name for name in images.names if name not in matched]
    t = time.time()
    if not new:
        logger.info("every photo was matched by an earlier run with these options")
    elif matcher == "exhaustive":
        pycolmap.match_exhaustive(database, **kwargs)
    elif matcher == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = conf["sequential_overlap"]
        pycolmap.match_sequential(database, pairing_options=pairing, **kwargs)
    elif matcher == "spatial":
        pycolmap.match_spatial(database, **kwargs)
    elif matcher == "vocab_tree":
        path, done["vocabulary"] = vocab_tree(conf, database, database.parent, scene)
        pairing = pycolmap.VocabTreePairingOptions()
        pairing.vocab_tree_path = str(path)
        pairing.num_images = conf["retrieval_num_images"]
        pairing.num_threads = step_threads(conf)
        if matched:  # photos added to a matched scene: only they query (COLMAP skips pairs it holds anyway)
            queries = database.parent / "retrieval_queries.txt"
            queries.write_text("".join(f"{name}\n" for name in new))
            pairing.match_list_path = str(queries)
        pycolmap.match_vocabtree(database, pairing_options=pairing, **kwargs)
    write_json(record, {**json.loads(record.read_text()), "matched": sorted(matched | set(images.names))}, indent=1)
    pairs_after = database_counts(database)[1]
    n = len(images.names)
    done.update(extracted=extracted, pairs_matched=pairs_after - pairs_before, pairs_in_database=pairs_after,
                exhaustive_pairs=n * (n - 1) // 2, matching_seconds=round(time.time() - t, 2))
    logger.info("%s matching: %d new pairs (%d in the database; exhaustive would be %d) in %.1f s", matcher,
                done["pairs_matched"], pairs_after, done["exhaustive_pairs"], time.time() - t)
    return done


def distrust_focal_priors(database: Path, scene: str) -> list[str]:
    """Cameras whose focal length COLMAP took from EXIF but which no lens gives (focal / long side outside the
    mapper's own bounds, 0.1-10: e.g. a 35 mm-equivalent of 65535 mm) lose the prior: their focal becomes COLMAP's
    default guess (1.2 x long side) and is estimated, as for a photo without EXIF. Runs before matching, whose
    two-view verification trusts a prior. Returns one line per camera for the log and stats.json."""
    bounds = pycolmap.IncrementalMapperOptions()
    lo, hi = bounds.min_focal_length_ratio, bounds.max_focal_length_ratio
    db = pycolmap.Database.open(database)
    try:
        names: dict[int, list[str]] = {}
        for image in db.read_all_images():
            names.setdefault(image.camera_id, []).append(image.name)
        problems = []
        for cam in db.read_all_cameras():
            side = max(cam.width, cam.height)
            ratio = cam.mean_focal_length() / side
            if not cam.has_prior_focal_length or lo <= ratio <= hi:
                continue
            params = cam.params
            params[cam.focal_length_idxs()] = pycolmap.ImageReaderOptions().default_focal_length_factor * side
            cam.params, cam.has_prior_focal_length = params, False
            db.update_camera(cam)
            problems.append(f"{', '.join(sorted(names.get(cam.camera_id, [])))}: the EXIF focal length gives "
                            f"{ratio * side:.0f} px for a {cam.width}x{cam.height} photo (focal / long side "
                            f"{ratio:.3g}, outside {lo:g}-{hi:g}); treated as absent")
    finally:
        db.close()
    for problem in problems:
        logger.warning("%s: %s", scene, problem)
    return problems


def database_counts(database: Path) -> tuple[int, int]:
    """(images, image pairs matched) in a COLMAP database; (0, 0) when it does not exist yet."""
    if not database.exists():
        return 0, 0
    db = pycolmap.Database.open(database)
    try:
        return db.num_images(), db.num_matched_image_pairs()
    finally:
        db.close()


# deterministic is a feature option: features extracted on several threads differ from single-threaded ones
FEATURE_OPTIONS = ("camera_model", "camera_mode", "max_image_size", "max_num_features", "use_gpu", "deterministic")
MATCHING_OPTIONS = ("max_num_matches", "guided_matching", "seed", "matcher", "sequential_overlap", "vocab_tree_path",
                    "vocab_tree_num_words", "retrieval_num_images", "exhaustive_max_images")


def reuse_database(conf: dict[str, Any], work: Path, staged: StagedImages) -> tuple[dict[str, Any], set[str]]:
    """Keep ``work/database.db`` across runs (retries, requeues, added photos) when that is safe.

    ``work/database.json`` records the feature options, the matching options and each photo's pixel digest the
    database was built with. Changed feature options or a replaced photo (same name, other pixels) start a new
    database; changed matching options clear the matches only. Photos added since are extracted (COLMAP
    skips the images it holds) and matched (the record's ``matched`` lists the photos whose matching
    finished; with vocab_tree only the others query); removed photos stay in the database and are left out
    of mapping. Returns (``{"reused": bool, "reason": str}`` for stats.json, the photos already matched)."""
    database, record = work / "database.db", work / "database.json"
    want = {"features": {k: conf[k] for k in FEATURE_OPTIONS}, "matching": {k: conf[k] for k in MATCHING_OPTIONS}}
    old, damage = _kept_state(database, record)
    reason = None
    if damage:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for path in (database, record):
            if path.exists():
                set_aside(path, stamp)
        reason = f"the kept database was damaged ({damage}): set aside as *.damaged-{stamp}"
        logger.warning("%s", reason)
    elif old is None:
        reason = "no database from an earlier run"
    elif old.get("features") != want["features"]:
        changed = sorted(k for k in FEATURE_OPTIONS if old["features"].get(k) != conf[k])
        reason = f"feature options changed ({', '.join(changed)})"
    else:
        replaced = sorted(n for n, d in staged.digests.items() if old["photos"].get(n, d) != d)
        if replaced:
            reason = f"{len(replaced)} photo(s) replaced ({', '.join(replaced[:3])}{', ...' if len(replaced) > 3 else ''})"
    if reason is not None:
        database.unlink(missing_ok=True)
        (work / "visual_index.bin").unlink(missing_ok=True)
        photos: dict[str, str] = {}
        matched: list[str] = []
    else:
        photos, matched = dict(old["photos"]), old.get("matched", [])
        if old.get("matching") != want["matching"]:
            changed = sorted(k for k in MATCHING_OPTIONS if old["matching"].get(k) != conf[k])
            reason = f"matching options changed ({', '.join(changed)}): features kept, matches cleared"
            db = pycolmap.Database.open(database)
            try:
                db.clear_two_view_geometries()
                db.clear_matches()
            finally:
                db.close()
            (work / "visual_index.bin").unlink(missing_ok=True)
            matched = []
    reused = old is not None and database.is_file()
    photos.update(staged.digests)  # written before extraction: a killed job's database matches this record
    write_json(record, {**want, "photos": photos, "matched": matched}, indent=1)
    logger.info("database: %s", "reused" + (f" ({reason})" if reason else "") if reused else f"new ({reason})")
    return {"reused": reused, "reason": reason or "same options and photos"}, set(matched)


def _kept_state(database: Path, record: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the record of the kept database, None) when both are usable; (None, what is wrong) when either is damaged
    (a database cut short, a record of the wrong shape), so that the run starts anew instead of failing on every
    retry; (None, None) when there is nothing kept."""
    if not database.is_file() or not record.is_file():
        return None, None
    try:
        old = json.loads(record.read_text())
    except (ValueError, OSError) as err:
        return None, f"{record.name} unreadable: {err}"
    if not (isinstance(old, dict) and all(isinstance(old.get(k), dict) for k in ("features", "matching", "photos"))
            and isinstance(old.get("matched", []), list)):
        return None, f"{record.name} is not a database record (expected features, matching, photos, matched)"
    try:
        db = pycolmap.Database.open(database)
        try:
            db.read_all_images()
        finally:
            db.close()
    except Exception as err:  # pycolmap raises RuntimeError, and others for other kinds of damage
        return None, f"{database.name} unreadable: {str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__}"
    return old, None


def sfm_space_mb(conf: dict[str, Any], staged: StagedImages) -> float:
    """A generous estimate (MB) of the disk SfM needs: SIFT keypoints + descriptors per photo, matches per
    candidate pair, a few models and the undistorted images (about twice the photos' size).

    COLMAP aborts in C++ when its database cannot grow, leaving a half-written database and no message,
    so the stage refuses to start without this much free space."""
    n = len(staged.names)
    photos = sum((staged.folder / name).stat().st_size for name in staged.names) / 2**20
    features = n * conf["max_num_features"] * (128 + 24) / 2**20
    pairs = sfm_pairs(conf, n)
    matches = pairs * min(conf["max_num_matches"], conf["max_num_features"]) * 8 / 2**20 * 0.1  # ~10 % survive
    return 2 * photos + features + matches + 5 * n * 0.05 + 10


def mapping_threads(conf: dict[str, Any]) -> int:
    """Threads for mapping: 1 when ``deterministic``, else ``mapping_threads``, or ``num_threads`` when it is null.

    Which image pair mapping starts from depends on thread timing, so single-threaded mapping makes the
    registered photos repeat at little cost.
    """
    if conf["deterministic"]:
        return 1
    return conf["num_threads"] if conf.get("mapping_threads") is None else conf["mapping_threads"]


def step_threads(conf: dict[str, Any]) -> int:
    """Threads for feature extraction, matching, verification and the visual index: 1 when ``deterministic``, else
    ``num_threads``. Each of them changes the model with the thread count: on the 10-photo demo, 1432 points with 2
    threads and 1417 with 8; single-threaded matching and mapping alone still left 1435 vs 1419 (extraction)."""
    return 1 if conf["deterministic"] else conf["num_threads"]


def map_scene(conf: dict[str, Any], database: Path, image_dir: Path, out: Path,
              seed: int, image_names: list[str] | None = None) -> dict[int, pycolmap.Reconstruction]:
    """One incremental or global mapping run over ``image_names`` (None: every image in the database);
    returns all models found (possibly several, possibly none)."""
    out.mkdir(parents=True, exist_ok=True)
    pycolmap.set_random_seed(seed)
    if conf["mapper"] == "global":
        options = pycolmap.GlobalPipelineOptions()
        if image_names:
            options.image_names = image_names
        options.min_num_matches = conf["min_num_matches"]
        options.num_threads = mapping_threads(conf)
        options.random_seed = seed
        return pycolmap.global_mapping(database, image_dir, out, options=options)
    options = pycolmap.IncrementalPipelineOptions()
    if image_names:
        options.image_names = image_names
    options.min_num_matches = conf["min_num_matches"]
    options.min_model_size = conf["min_model_size"]
    options.num_threads = mapping_threads(conf)
    options.random_seed = seed
    options.ba_global_function_tolerance = conf["ba_global_function_tolerance"]
    options.structure_less_registration_fallback = conf["structure_less_fallback"]
    return pycolmap.incremental_mapping(database, image_dir, out, options=options)


def _model_size(rec: pycolmap.Reconstruction) -> tuple[int, int]:
    return rec.num_reg_images(), rec.num_points3D()


def map_with_retries(conf: dict[str, Any], database: Path, image_dir: Path, out: Path, names: list[str],
                     ) -> tuple[Path | None, list[dict[str, Any]]]:
    """Map up to ``mapping_attempts`` times (seeds ``seed``, ``seed+1``, ...) until the largest model
    registers at least ``retry_below`` of the photos ``names`` and holds at least ``min_points3D`` points (a
    sparser model would fail the scene; on the demo at 640 px, seed 0 gives 5 of 10 photos and 181 points).

    A poor initial pair can end incremental mapping with a 2-3 image model and no second start, and
    which pair is tried first depends on the seed and on thread timing. A genuine split is not retried:
    when the models of a run register ``retry_below`` of the photos together and no verified pair with
    ``min_num_matches`` inliers joins two of them (internet collections of several buildings), no seed
    can merge them. Returns the folder of the largest model over all runs (most images, then most points;
    None when no run built one) and a summary of every run for stats.json.
    """
    best: tuple[tuple[int, int], int, int] | None = None  # (size, attempt, model index)
    attempts: list[dict[str, Any]] = []
    num_photos = len(names)
    with_extra = set(database_image_names(database)) != set(names)  # removed photos stay in the database
    for attempt in range(conf["mapping_attempts"]):
        seed = conf["seed"] + attempt
        t = time.time()
        models = map_scene(conf, database, image_dir, out / f"attempt{attempt}", seed=seed,
                           image_names=names if with_extra else None)
        logger.info("%s mapping (seed %d): %d model(s), sizes %s, in %.1f s", conf["mapper"], seed, len(models),
                    [m.num_reg_images() for m in models.values()], time.time() - t)
        attempts.append({"seed": seed, "seconds": round(time.time() - t, 2),
                         "models": [{"index": int(k), **model_summary(m)} for k, m in sorted(models.items())]})
        for key, model in models.items():
            if best is None or _model_size(model) > best[0]:
                best = (_model_size(model), attempt, int(key))
        if best is None or best[0][1] < conf["min_points3D"]:
            pass
        elif best[0][0] >= conf["retry_below"] * num_photos:
            break
        elif genuine_split(conf, database, models, num_photos):
            attempts[-1]["genuine_split"] = True
            logger.info("the photos split into %d models that no verified pair joins (%s registered); kept the "
                        "largest without mapping again", len(models), [m.num_reg_images() for m in models.values()])
            break
        if attempt + 1 < conf["mapping_attempts"]:
            registered, points = best[0] if best else (0, 0)
            logger.warning("largest model so far registers %d of %d photos with %d points; mapping again with seed %d",
                           registered, num_photos, points, seed + 1)
    if best is None:
        return None, attempts
    attempts[best[1]]["kept_model"] = best[2]
    return out / f"attempt{best[1]}" / str(best[2]), attempts


def database_image_names(database: Path) -> list[str]:
    """Names of the images in a COLMAP database."""
    db = pycolmap.Database.open(database)
    try:
        return [img.name for img in db.read_all_images()]
    finally:
        db.close()


def genuine_split(conf: dict[str, Any], database: Path, models: dict[int, pycolmap.Reconstruction],
                  num_photos: int) -> bool:
    """Whether several models of one run register ``retry_below`` of the photos together while no verified
    image pair with ``min_num_matches`` inliers has its two photos in different models."""
    if len(models) < 2:
        return False
    model_of: dict[str, set[int]] = {}  # COLMAP may register a photo in two models
    for key, model in models.items():
        for img in model.images.values():
            if img.has_pose:
                model_of.setdefault(img.name, set()).add(key)
    if len(model_of) < conf["retry_below"] * num_photos:
        return False
    db = pycolmap.Database.open(database)
    try:
        names = {img.image_id: img.name for img in db.read_all_images()}
        pair_ids, inliers = db.read_two_view_geometry_num_inliers()
    finally:
        db.close()
    for pair_id, n in zip(pair_ids, inliers):
        if n < conf["min_num_matches"]:
            continue
        a, b = (model_of.get(names[i]) for i in pycolmap.pair_id_to_image_pair(pair_id))
        if a and b and not a & b:
            return False
    return True


def undistort(conf: dict[str, Any], model_dir: Path, image_dir: Path, out: Path) -> None:
    """PINHOLE undistortion into ``out/sparse`` and ``out/images`` (replacing what was there)."""
    tmp = out / "work" / "undistorted"
    if tmp.exists():
        shutil.rmtree(tmp)
    options = pycolmap.UndistortCameraOptions()
    options.max_image_size = conf["undistort_max_image_size"]
    pycolmap.undistort_images(tmp, model_dir, image_dir, output_type="COLMAP", undistort_options=options)
    for name in ("sparse", "images"):
        if (out / name).exists():
            shutil.rmtree(out / name)
        shutil.move(tmp / name, out / name)
    shutil.rmtree(tmp)


def model_summary(rec: pycolmap.Reconstruction) -> dict[str, Any]:
    """Registered images, points, observations, mean track length, reprojection error (px) of a model."""
    n_pts = rec.num_points3D()
    return {"num_registered": rec.num_reg_images(), "num_points3D": n_pts,
            "num_observations": int(rec.compute_num_observations()),
            "mean_reprojection_error": rec.compute_mean_reprojection_error() if n_pts else float("nan"),
            "mean_track_length": rec.compute_mean_track_length() if n_pts else 0.0,
            "mean_observations_per_image": rec.compute_mean_observations_per_reg_image()}


def drop_misfit_photos(rec: pycolmap.Reconstruction, image_dir: Path, scene: str) -> list[dict[str, str]]:
    """Deregister the images of an imported model whose photo is not the size its camera says (from the photo's
    header, nothing decoded): their keypoints and intrinsics refer to other pixels, so their depth and pairs would be
    wrong. Returns ``{"file", "reason"}`` per dropped photo (missing photos are left to the step that reads them);
    fails when fewer than 2 registered images remain."""
    dropped = []
    for image in list(rec.images.values()):
        path = image_dir / image.name
        if not image.has_pose or not path.is_file() or not_regular(path):
            continue
        cam = rec.cameras[image.camera_id]
        try:
            with Image.open(path) as im:
                size = im.size
        except Exception as err:  # PIL raises many types for broken files
            size, why = None, f"unreadable ({str(err) or type(err).__name__})"
        else:
            why = f"the photo is {size[0]}x{size[1]} px, its camera {cam.camera_id} says {cam.width}x{cam.height}"
        if size != (cam.width, cam.height):
            rec.deregister_frame(image.frame_id)
            dropped.append({"file": image.name, "reason": f"{why}; left out of the imported model"})
            logger.warning("%s: %s: %s", scene, image.name, dropped[-1]["reason"])
    if dropped and rec.num_reg_images() < 2:
        raise MatchforgeError(f"{len(dropped)} of the imported model's photos do not fit its cameras (e.g. "
                              f"{dropped[0]['file']}: {dropped[0]['reason']}) and fewer than 2 remain", scene=scene,
                              path=image_dir, fix=f"point scenes.{scene}.images at the photos the model was built "
                                                  "from (same files, same sizes)")
    return dropped


def _copy_undistorted(rec: pycolmap.Reconstruction, image_dir: Path, out: Path, scene: str) -> None:
    for cam in rec.cameras.values():
        if cam.model.name not in ("PINHOLE", "SIMPLE_PINHOLE"):
            raise MatchforgeError(f"colmap.undistorted is true but camera {cam.camera_id} is {cam.model.name}",
                                  scene=scene, fix="set colmap.undistorted: false so that matchforge undistorts it")
    for name in ("sparse", "images"):
        if (out / name).exists():
            shutil.rmtree(out / name)
    (out / "sparse").mkdir(parents=True)
    rec.write(out / "sparse")
    for image in rec.images.values():
        src = image_dir / image.name
        if not src.exists():
            raise MatchforgeError(f"the model refers to image '{image.name}' which is not in the images folder",
                                  scene=scene, path=src, fix="point `images` at the folder the model was built from")
        (out / "images" / image.name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out / "images" / image.name)


def main(conf: dict[str, Any], images: str | Path, out: str | Path, scene: str = "scene",
         existing: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run SfM for one scene and write ``out/{sparse,images,stats.json}``; returns the stats.

    Args:
        conf: SfM options (:class:`matchforge.sfm.config.SfMSection`); missing keys take its defaults.
        images: folder of photos (searched recursively).
        out: output folder, ``results/{scene}/sfm`` in the workflow.
        scene: scene name, for messages.
        existing: optional ``{"sparse": dir, "database": file, "undistorted": bool}`` to reuse a COLMAP project.
    """
    conf = SfMSection.of(conf, "sfm").to_dict()
    images, out = Path(images), Path(out)
    existing = existing or {}
    start = time.time()
    pycolmap.set_random_seed(conf["seed"])
    require_folder(images, scene)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    stats: dict[str, Any] = {"scene": scene, "pycolmap": pycolmap.__version__, "options": conf}
    try:
        _reconstruct(conf, images, out, scene, existing, stats)
    except MatchforgeError as err:
        # Snakemake deletes a failed job's outputs: the record of what was found and skipped stays in work/
        stats.update(error=str(err), seconds=round(time.time() - start, 2))
        try:
            write_json(work / "stats.json", stats, indent=2)
        except MatchforgeError:  # the disk is full: the error itself says so
            pass
        raise

    final = pycolmap.Reconstruction(out / "sparse")
    stats.update(model_summary(final))
    stats["seconds"] = round(time.time() - start, 2)
    write_json(out / "stats.json", stats, indent=2)
    skipped = f"; {len(stats['skipped'])} file(s) skipped: {skipped_summary(stats['skipped'])}" if stats["skipped"] else ""
    logger.info("scene %s: %d/%d photos registered, %d points, reprojection error %.3f px%s",
                scene, stats["num_registered"], stats["num_images"], stats["num_points3D"],
                stats["mean_reprojection_error"], skipped)
    return stats


def database_image_sizes(database: str | Path, scene: str) -> dict[str, tuple[int, int]]:
    """Image name -> (width, height) of its camera in an existing COLMAP database (the size its keypoints refer to)."""
    path = require_config_path(database, f"scenes.{scene}.colmap.database", "the COLMAP database",
                               "a COLMAP database.db of these photos", scene=scene)
    db = pycolmap.Database.open(path)
    try:
        cameras = {c.camera_id: c for c in db.read_all_cameras()}
        return {img.name: (cameras[img.camera_id].width, cameras[img.camera_id].height) for img in db.read_all_images()}
    finally:
        db.close()


def _reconstruct(conf: dict[str, Any], images: Path, out: Path, scene: str, existing: dict[str, Any],
                 stats: dict[str, Any]) -> None:
    """The SfM of :func:`main` into ``out/{sparse,images}``, filling ``stats`` as it goes."""
    work = out / "work"
    if existing.get("sparse"):
        sparse = require_config_path(existing["sparse"], f"scenes.{scene}.colmap.sparse", "the existing sparse model folder",
                                     "a COLMAP sparse model folder (cameras.bin, images.bin, points3D.bin)", scene=scene)
        rec = pycolmap.Reconstruction(sparse)
        stats.update(source="existing sparse model", num_images=rec.num_images(), attempts=[],
                     skipped=drop_misfit_photos(rec, images, scene))
        if stats["skipped"]:
            sparse = work / "imported"
            sparse.mkdir(parents=True, exist_ok=True)
            rec.write(sparse)
            rec = pycolmap.Reconstruction(sparse)  # written without the deregistered photos
        if existing.get("undistorted"):
            _copy_undistorted(rec, images, out, scene)
        else:
            undistort(conf, sparse, images, out)
        return
    sizes = database_image_sizes(existing["database"], scene) if existing.get("database") else None
    staged = stage_images(images, work / "input", conf["max_image_size"], sizes)
    # num_images: the readable photos SfM was given; skipped files (unreadable, duplicates) are listed apart
    stats.update(num_images=len(staged.names), num_files=staged.num_found, skipped=staged.skipped,
                 rotated_from_exif=staged.rotated, resized_to_working_size=staged.resized,
                 photo_digests=staged.digests, photo_hashes=staged.hashes,
                 gps={"usable": staged.has_gps, "problems": staged.gps_problems()},
                 metadata_problems=staged.metadata_problems)
    record = f"; skipped: {skipped_summary(staged.skipped)} (all listed in {work / 'stats.json'})" if staged.skipped else ""
    if not staged.names:
        raise MatchforgeError(f"no readable photos ({staged.num_found} image files found{record})", scene=scene,
                              path=images, fix="put JPEG/PNG photos of the scene in this folder")
    if len(staged.names) < 2:
        raise MatchforgeError(f"only 1 readable photo ({staged.names[0]}){record}; SfM needs at least 2 overlapping "
                              "photos", scene=scene, path=images,
                              fix=f"add more photos of the scene taken from different positions, or, for unrelated "
                                  f"single photos (depth only), set scenes.{scene}.single_images: true")
    database = work / "database.db"
    require_free_space(work, sfm_space_mb(conf, staged), f"SfM of {len(staged.names)} photos (features, matches, "
                       "models and undistorted images)", scene=scene)
    if existing.get("database"):
        shutil.copy2(require_config_path(existing["database"], f"scenes.{scene}.colmap.database", "the COLMAP database",
                                         "a COLMAP database.db of these photos", scene=scene), database)
        stats["matcher"] = "existing database"
    else:
        stats["database"], matched = reuse_database(conf, work, staged)
        stats.update(extract_and_match(conf, database, staged, scene, matched))
    distorted = work / "distorted"
    if distorted.exists():
        shutil.rmtree(distorted)
    best, stats["attempts"] = map_with_retries(conf, database, staged.folder, distorted, staged.names)
    kept = pycolmap.Reconstruction(best) if best is not None else None
    if kept is None or kept.num_reg_images() < 2:
        raise MatchforgeError(
            f"no model could be built: none of the {len(staged.names)} photos registered "
            f"(not enough overlapping views or matches)", scene=scene, path=images,
            fix="use photos that overlap (each scene point seen from several positions), try sfm.matcher: "
                "exhaustive, sfm.camera_mode: single, or a larger sfm.max_image_size")
    stats["distorted_model"] = str(best.relative_to(out))
    registered = {img.name for img in kept.images.values() if img.has_pose}
    stats["unregistered"] = sorted(set(staged.names) - registered)
    stats.update({f"kept_{k}": v for k, v in model_summary(kept).items() if k in ("num_registered", "num_points3D")})
    if kept.num_points3D() < conf["min_points3D"]:
        raise MatchforgeError(
            f"the best model has {kept.num_points3D()} 3D points (sfm.min_points3D is {conf['min_points3D']}); "
            f"{kept.num_reg_images()}/{len(staged.names)} photos registered", scene=scene, path=images,
            fix="a model this sparse gives no usable depth or pairs: check that the photos overlap and are not "
                "much larger than sfm.max_image_size (very large photos keep few features at the default size), "
                "try sfm.matcher: exhaustive or a larger sfm.max_num_features; lower sfm.min_points3D only for "
                "tiny test scenes")
    undistort(conf, best, staged.folder, out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, type=Path, help="folder of photos")
    parser.add_argument("--out", required=True, type=Path, help="output folder (results/{scene}/sfm)")
    parser.add_argument("--scene", default="scene", help="scene name, for messages")
    parser.add_argument("--conf", help="SfM options as inline JSON or a YAML file (defaults: config/README.md)")
    parser.add_argument("--existing", help="existing COLMAP project as JSON: {sparse, database, undistorted}")
    parser.add_argument("--num-threads", type=int, help="overrides conf num_threads")


def run(args: argparse.Namespace) -> None:
    conf = load_conf(args.conf)
    if args.num_threads:
        conf["num_threads"] = args.num_threads
    existing = json.loads(args.existing) if args.existing else None
    main(conf, args.images, args.out, scene=args.scene, existing=existing)
