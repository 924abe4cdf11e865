"""Image retrieval for localization queries from the photos alone (no ground-truth model), as the Aachen protocol
retrieves database images for each query before matching.

hloc retrieves with a learned global descriptor (NetVLAD); matchforge has no network weights offline, so it uses
COLMAP's own retrieval, the one the SfM stage uses for large scenes: SIFT features of the database and query photos
(pycolmap), a visual vocabulary trained on the **database photos' descriptors only**
(:func:`matchforge.sfm.reconstruct.build_visual_index`), and ``pycolmap.match_vocabtree`` with each query as a
query image. Among the images it retrieves for a query, database images are ranked by the number of
geometrically verified SIFT matches (spatial re-ranking) and the first ``k`` kept. Single-threaded and seeded, so
the pairs repeat exactly.

``matchforge localization-pairs`` writes the list (``query db_image`` per line, hloc's pairs format) once per
test set; every method's matching and scoring then read the same list.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

# SIFT for retrieval only: enough features to tell views apart, few enough to be quick
EXTRACTION = {"max_image_size": 640, "max_num_features": 2048}


def retrieve(images: Path, database: list[str], queries: list[str], k: int, work: Path, seed: int) -> dict[str, list[str]]:
    """For each query, its ``k`` best database images (most verified SIFT matches among the retrieved ones)."""
    import pycolmap

    from matchforge.sfm.config import SfMSection
    from matchforge.sfm.reconstruct import build_visual_index

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    db_path = work / "retrieval.db"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = EXTRACTION["max_image_size"]
    extraction.sift.max_num_features = EXTRACTION["max_num_features"]
    extraction.num_threads = 1
    extraction.use_gpu = False
    for names in (database, queries):  # database first: the vocabulary is trained on its images only
        pycolmap.extract_features(db_path, images, image_names=names, camera_mode=pycolmap.CameraMode.PER_IMAGE,
                                  extraction_options=extraction, device=pycolmap.Device.cpu)
    index = work / "visual_index.bin"
    build_visual_index(SfMSection.of({"seed": seed}).to_dict(), db_path, index, names=set(database))  # deterministic
    (work / "queries.txt").write_text("".join(f"{q}\n" for q in queries))
    pairing = pycolmap.VocabTreePairingOptions()
    pairing.vocab_tree_path = str(index)
    pairing.num_images = k + len(queries)  # other queries may be retrieved too; they are dropped below
    pairing.match_list_path = str(work / "queries.txt")
    pairing.num_threads = 1
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = 1
    matching.use_gpu = False
    verify = pycolmap.TwoViewGeometryOptions()
    verify.ransac.random_seed = seed
    pycolmap.match_vocabtree(db_path, pairing_options=pairing, matching_options=matching, verification_options=verify,
                             device=pycolmap.Device.cpu)
    db = pycolmap.Database.open(db_path)
    try:
        ids = {img.name: img.image_id for img in db.read_all_images()}
        out = {}
        for q in queries:
            scored = [(-_inliers(db, ids[q], ids[d]), d) for d in database if db.exists_matches(ids[q], ids[d])]
            out[q] = [d for _, d in sorted(scored)[:k]]
    finally:
        db.close()
    return out


def _inliers(db: Any, a: int, b: int) -> int:
    """Geometrically verified matches of an image pair (0 when verification found no model)."""
    if not db.exists_two_view_geometry(a, b):
        return 0
    return len(db.read_two_view_geometry(a, b).inlier_matches)


def main(spec: Mapping[str, Any], out: str | Path) -> list[tuple[str, str]]:
    """Retrieve the database images of every query of an own-scene localization test set; write ``out``."""
    from matchforge.evaluation.config import LocalizationJob
    from matchforge.evaluation.localization import split_images
    from matchforge.io.aachen import write_pairs

    # the job's params hold only what retrieval depends on (wf.localization.pairs_conf), without the type
    spec = LocalizationJob.of({**spec, "type": "localization"}, "localization pairs").to_dict()
    database, queries = split_images(spec)
    out = Path(out)
    found = retrieve(Path(spec["sfm"]) / "images", database, queries, int(spec["query_k"]), out.parent / "retrieval",
                     int(spec["seed"]))
    pairs = [(q, d) for q in queries for d in found[q]]
    write_pairs(out, pairs)
    log.info("retrieval: %d queries, %d pairs (up to %d database images each) -> %s", len(queries), len(pairs),
             spec["query_k"], out)
    return pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--testset", required=True, help="localization test-set options (inline JSON or YAML file)")
    parser.add_argument("--out", required=True, help="the pair list to write (query db_image per line)")


def run(args: argparse.Namespace) -> None:
    from matchforge.conf import load_conf

    main(load_conf(args.testset), args.out)
