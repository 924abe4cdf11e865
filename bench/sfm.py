"""SfM overhead: matchforge's SfM stage vs the same pycolmap calls made directly, on Reichstag.

Both run the same options (SIFT at 1600 px, exhaustive matching, incremental mapping, PINHOLE
undistortion) and the same work: one mapping run each (matchforge's retries with other seeds are
off, ``mapping_attempts: 1``), in one process, alternating, so machine load affects both alike.
Prints the median time of each and matchforge/plain; exits 1 when the target (<= 1.10) is missed.

    .venv/bin/python bench/sfm.py [--repeats 2] [--images DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pycolmap

from matchforge.sfm.reconstruct import main as sfm_main
from matchforge.sfm.config import SfMSection

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO / "resources" / "testsets" / "reichstag" / "images"


def plain_pycolmap(conf: dict, images: Path, out: Path) -> None:
    """The minimal pycolmap sequence a user would write by hand, with the same options."""
    out.mkdir(parents=True)
    db = out / "database.db"
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = conf["camera_model"]
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = conf["max_image_size"]
    extraction.sift.max_num_features = conf["max_num_features"]
    extraction.use_gpu = False
    pycolmap.extract_features(db, images, camera_mode=pycolmap.CameraMode.PER_IMAGE, reader_options=reader,
                              extraction_options=extraction, device=pycolmap.Device.cpu)
    matching = pycolmap.FeatureMatchingOptions()
    matching.max_num_matches = conf["max_num_matches"]
    matching.guided_matching = conf["guided_matching"]
    matching.use_gpu = False
    pycolmap.match_exhaustive(db, matching_options=matching, device=pycolmap.Device.cpu)
    options = pycolmap.IncrementalPipelineOptions()
    options.min_num_matches = conf["min_num_matches"]
    options.random_seed = conf["seed"]
    options.ba_global_function_tolerance = conf["ba_global_function_tolerance"]
    models = pycolmap.incremental_mapping(db, images, out / "sparse", options=options)
    best = max(models, key=lambda k: models[k].num_reg_images())
    undistort = pycolmap.UndistortCameraOptions()
    undistort.max_image_size = conf["undistort_max_image_size"]
    pycolmap.undistort_images(out / "dense", out / "sparse" / str(best), images, undistort_options=undistort)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    conf = SfMSection.of({"camera_mode": "per_image", "matcher": "exhaustive", "mapping_attempts": 1}).to_dict()
    times: dict[str, list[float]] = {"plain pycolmap": [], "matchforge": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for name in times:
                out = Path(tmp) / f"{name.replace(' ', '_')}_{i}"
                t = time.perf_counter()
                if name == "matchforge":
                    sfm_main(conf, args.images, out, scene="bench")
                else:
                    plain_pycolmap(conf, args.images, out)
                times[name].append(time.perf_counter() - t)
                shutil.rmtree(out)
    plain, ours = (statistics.median(times[k]) for k in ("plain pycolmap", "matchforge"))
    print(f"images: {args.images} ({len(list(args.images.iterdir()))} files), repeats: {args.repeats}")
    print(f"plain pycolmap : {plain:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times['plain pycolmap'])})")
    print(f"matchforge sfm : {ours:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times['matchforge'])})")
    ok = ours / plain <= 1.10
    print(f"ratio matchforge/plain: {ours / plain:.3f}  (target <= 1.10: {'met' if ok else 'MISSED'})")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
