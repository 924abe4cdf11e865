"""Test sets for relative-pose evaluation, all read into ``PairRecord``s.

Types of ``loftr.testsets`` (models in :mod:`matchforge.evaluation.config`):

- ``dataset``: a split of a dataset built by ``matchforge dataset`` (``results/datasets/<name>/dataset.json``).
- ``imc``: any Image Matching Challenge (phototourism) scene folder: photos + calibration files
  (``calibration_<stem>.h5`` with ``K``, world->camera ``R``, ``T``) and co-visible pairs
  ``new-vis-pairs/keys-th-<t>.npy`` (``"stemA-stemB"``); Reichstag ships in ``resources/testsets/reichstag``.
- ``megadepth``: official MegaDepth-1500 scene-info files + a list, with the user's images.
- ``scannet``: official ScanNet-1500 ``test.npz`` + ``intrinsics.npz``, with the user's frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping


from matchforge.errors import MatchforgeError
from matchforge.evaluation.config import testset_of


def testset_available(ts: Mapping[str, Any]) -> bool:
    """Whether the images a test set needs are present (MegaDepth/ScanNet need the user's data root)."""
    if ts["type"] in ("megadepth", "scannet"):
        return bool(ts.get("data_root")) and Path(ts["data_root"]).is_dir()
    return True


def load_testset(ts: Mapping[str, Any], dataset_json: str | Path | None = None, name: str = "") -> list[Any]:
    """Pairs of test set ``ts`` (one entry of ``loftr.testsets``), truncated to ``max_pairs``."""
    from matchforge.dataset import indices

    ts = testset_of(ts, f"loftr.testsets.{name}" if name else "--testset").to_dict()
    kind = ts["type"]
    if kind == "dataset":
        if dataset_json is None:
            raise MatchforgeError(f"test set '{name}' needs the dataset.json of dataset '{ts['dataset']}'", fix="pass --dataset")
        records = indices.read_dataset(dataset_json, ts["split"], 0.0)
    elif kind == "imc":
        records = indices.read_imc(ts["root"], str(ts["vis_threshold"]))
    elif kind == "megadepth":
        if not testset_available(ts):
            raise MatchforgeError(f"MegaDepth images not found for test set '{name}'", path=ts.get("data_root"),
                                  fix="download the MegaDepth-1500 images (LoFTR README) and set data_root to their folder")
        records = indices.read_megadepth_list(ts["npz_root"], ts["list"], ts["data_root"], 0.0)
    elif kind == "scannet":
        if not testset_available(ts):
            raise MatchforgeError(f"ScanNet frames not found for test set '{name}'", path=ts.get("data_root"),
                                  fix="download the ScanNet-1500 test frames (LoFTR README) and set data_root to their folder")
        records = indices.read_scannet_index(ts["test_npz"], ts["intrinsics_npz"], ts["data_root"])
    else:
        raise MatchforgeError(f"test set '{name}' of type {kind} has no relative-pose pairs of LoFTR's",
                              fix="evaluate it with the commands of its family (docs/evaluation.md)")
    if ts.get("max_pairs"):
        records = records[: int(ts["max_pairs"])]
    if not records:
        raise MatchforgeError(f"test set '{name}' has no pairs", path=dataset_json, fix="check the split / index files")
    return records


# Options that only change how stored matches are scored: editing them rescores, it never rematches.
SCORING_KEYS = ("ransac_thresh", "epi_err_thr", "ransac_frame", "estimator", "cell_px", "max_error_px", "ransac_px",
                "min_inliers", "thresholds", "metres_per_unit", "ground_truth")


def matching_options(testset: Mapping[str, Any]) -> dict[str, Any]:
    """What a test set's matching depends on (its pairs, image sizes): everything but :data:`SCORING_KEYS`."""
    return {k: v for k, v in testset.items() if k not in SCORING_KEYS}


def pose_records(testset: Mapping[str, Any], dataset_json: str | Path | None = None, name: str = "") -> list[Any]:
    """Pose pairs of an entry of ``loftr.testsets`` or a ``pose`` entry of ``posfeat.testsets``."""
    if testset["type"] != "pose":
        return load_testset(testset, dataset_json, name)
    spec = dict(testset)
    if dataset_json is not None:
        spec["dataset"] = str(dataset_json)
    return pose_pairs(spec)[0]


def testset_root(testset: Mapping[str, Any], dataset_json: str | Path | None = None) -> Path:
    """The folder a feature test set's image names are relative to (see :func:`testset_images`)."""
    if testset.get("type") == "homography":
        return Path(testset["path"]).resolve()
    if testset.get("type") == "localization":
        from matchforge.evaluation.localization import image_names

        return image_names(testset)[0].resolve()
    return Path(dataset_json or testset["dataset"]).resolve().parent


def homography_records(root: str | Path) -> list[Any]:
    """The pairs of a homography test set as records with image paths, ``H`` (image 0 -> 1) and a category."""
    from types import SimpleNamespace

    from matchforge.evaluation.homography import find_pairs

    root = Path(root)
    return [SimpleNamespace(scene=p.name, name=p.name, image0=root / p.image0, image1=root / p.image1, H=p.H,
                            category=p.category) for p in find_pairs(root)]


# --- feature test sets (posfeat.testsets): the images to extract ------------------------------------


def pose_pairs(spec: dict[str, Any]) -> tuple[list[Any], Path]:
    """Pairs of a ``pose`` feature test set (a dataset split) and the folder image names are relative to."""
    from matchforge.dataset.indices import read_dataset

    spec = testset_of(spec).to_dict()
    pairs = read_dataset(spec["dataset"], spec["split"], spec["min_overlap"])
    if spec.get("max_pairs"):
        pairs = pairs[: spec["max_pairs"]]
    return pairs, Path(spec["dataset"]).resolve().parent


def image_name(path: Path, root: Path) -> str:
    """Name of an image in a feature file: its path relative to ``root`` (or absolute, without the leading /)."""
    path = Path(path).resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix().lstrip("/")


def testset_images(spec: dict[str, Any]) -> list[tuple[str, Path]]:
    """(name, path) of every image a test set needs; the names key the feature file."""
    kind = spec.get("type")
    if kind == "homography":
        from matchforge.evaluation.homography import find_pairs

        root = Path(spec["path"])
        names = sorted({n for p in find_pairs(root) for n in (p.image0, p.image1)})
        return [(n, root / n) for n in names]
    if kind == "pose":
        pairs, root = pose_pairs(spec)
        out = {}
        for p in pairs:
            for im in (p.image0, p.image1):
                out[image_name(im, root)] = Path(im)
        return sorted(out.items())
    if kind == "reconstruction":
        from matchforge.io.images import list_images

        return list_images(spec["images"] if spec.get("images") else Path(spec["eth"]) / "images")
    if kind == "localization":
        from matchforge.evaluation.localization import image_names

        root, names = image_names(spec)
        return [(n, root / n) for n in names]
    raise MatchforgeError(f"unknown test set type '{kind}'", fix="use homography, pose or reconstruction")
