"""Every file and folder the workflow writes under ``results/``, defined once: the rule files name these as their
inputs and outputs, the glue builds a job's paths with :meth:`Artifact.of`, and the table of ``docs/artifacts.md`` is
generated from this module (``matchforge config-docs``; a test checks it is current).

Each artifact is its path pattern (a ``str``, so a rule file uses it as written) with Snakemake wildcards in braces
and a one-line description. Conventions of the files themselves (world->camera poses, pixel centres, SfM units,
MegaDepth depth H5) are in docs/dataset.md and docs/depth.md.
"""

from __future__ import annotations

import re
from typing import Any


class Artifact(str):
    """A path pattern under ``results/`` (with ``{wildcards}``) and what the file or folder holds."""

    what: str
    folder: bool

    def __new__(cls, pattern: str, what: str, folder: bool = False) -> "Artifact":
        obj = super().__new__(cls, pattern)
        obj.what, obj.folder = what, folder
        return obj

    def of(self, **wildcards: Any) -> str:
        """The path of one job's artifact, e.g. ``LOFTR_WEIGHTS.of(run="demo_ds")``."""
        return str.format(self, **wildcards)

    def shell(self) -> str:
        """The pattern as a rule's shell command writes it (``{scene}`` -> ``{wildcards.scene}``)."""
        return re.sub(r"\{(\w+)\}", r"{wildcards.\1}", str(self))

    def parent(self, up: int = 1) -> str:
        """The pattern of the folder ``up`` levels above."""
        return str(self).rsplit("/", up)[0]


# --- SfM (rules/sfm.smk) ---------------------------------------------------------------------------------------
SFM = Artifact("results/{scene}/sfm", "the scene's SfM folder", folder=True)
SFM_SPARSE = Artifact("results/{scene}/sfm/sparse", "undistorted PINHOLE COLMAP model (world->camera poses, SfM units)", folder=True)
SFM_IMAGES = Artifact("results/{scene}/sfm/images", "undistorted images of the registered photos", folder=True)
SFM_STATS = Artifact("results/{scene}/sfm/stats.json", "counts, reprojection error, track length, skipped inputs, matcher, photos extracted and pairs matched, seconds")
SFM_WORK = Artifact("results/{scene}/sfm/work", "database.db and its record database.json (kept across runs), visual_index.bin, distorted/attempt*/ models, input/ staged photos", folder=True)

# --- depth (rules/depth.smk) -----------------------------------------------------------------------------------
DEPTH = Artifact("results/{scene}/depth", "the scene's depth folder", folder=True)
DEPTH_INPUTS = Artifact("results/{scene}/depth/inputs.json", "single_images scenes: the photos the depth step reads")
DEPTH_IMAGES = Artifact("results/{scene}/depth/images", "single_images scenes: the photos, upright", folder=True)
DEPTH_RAW = Artifact("results/{scene}/depth/raw", "{stem}.png: 16-bit PNG of the depth network's output at the undistorted size, with what inverts the quantisation (docs/depth.md)", folder=True)
DEPTH_WORK = Artifact("results/{scene}/depth/work", "depth-network maps kept for a resumed job (docs/depth.md)", folder=True)
DEPTH_PREVIEW = Artifact("results/{scene}/depth/preview", "coloured depth previews (report)", folder=True)
DEPTH_ALIGNED = Artifact("results/{scene}/depth/aligned", "depth aligned to the SfM scale (MegaDepth H5)", folder=True)
DEPTH_ALIGN_REPORT = Artifact("results/{scene}/depth/align.json", "per-image fits and held-out AbsRel of the alignment")
DEPTH_H5 = Artifact("results/{scene}/depth/h5", "{stem}.h5: dataset depth, float32, undistorted size, SfM units, 0 = invalid, after the consistency check (what datasets read)", folder=True)
DEPTH_CONSISTENCY = Artifact("results/{scene}/depth/consistency.json", "pixels removed by the multi-view consistency check")
DEPTH_QA = Artifact("results/{scene}/depth/qa.json", "depth quality: AbsRel on held-out SfM points, coverage, track transfer")
DEPTH_QA_PLOT = Artifact("results/{scene}/depth/qa.png", "depth quality plots (report)")
DEPTH_SHAPE = Artifact("results/{scene}/depth/shape", "focal and point cloud per image from a shift/focal model", folder=True)
DEPTH_SHAPE_REPORT = Artifact("results/{scene}/depth/shape.json", "recovered focal lengths and shifts per image")
DEPTH_SHAPE_PLOT = Artifact("results/{scene}/depth/shape.png", "plot of the recovered focal lengths (report)")

# --- datasets (rules/dataset.smk) ------------------------------------------------------------------------------
SCENE_INFO = Artifact("results/{scene}/scene_info", "{scene}_{lo}_{hi}.npz per overlap bucket (a pickled dict the upstream LoFTR loader reads), with plots and tables", folder=True)
DATASET_SCENES = Artifact("results/datasets/{dataset}/inputs/scenes.json", "the dataset's scenes and their folders")
DATASET_CONF = Artifact("results/datasets/{dataset}/inputs/conf.json", "the dataset's options")
DATASET = Artifact("results/datasets/{dataset}/dataset.json", "splits, pairs and paths of the dataset (what training reads)")
DATASET_LOFTR_CONFIG = Artifact("results/datasets/{dataset}/loftr_data_config.py", "LoFTR data config of the dataset")
DATASET_INDEX = Artifact("results/datasets/{dataset}/index", "MegaDepth-layout index: scene-info .npz and list files", folder=True)
DATASET_TRAIN = Artifact("results/datasets/{dataset}/train", "MegaDepth-layout images and depth of the training split (links)", folder=True)
DATASET_TEST = Artifact("results/datasets/{dataset}/test", "MegaDepth-layout images and depth of the test split (links)", folder=True)
DATASET_GLUEFACTORY = Artifact("results/datasets/{dataset}/gluefactory", "the dataset in glue-factory's MegaDepth layout", folder=True)

# --- LoFTR (rules/loftr.smk) -----------------------------------------------------------------------------------
LOFTR_RUN = Artifact("results/models/loftr/{run}", "a LoFTR run's folder (checkpoints/ inside resume an interrupted run)", folder=True)
LOFTR_WEIGHTS = Artifact("results/models/loftr/{run}/weights.pt", "trained weights (kornia / official state-dict names)")
LOFTR_MODEL = Artifact("results/models/loftr/{run}/model.json", "the run's options and architecture")
LOFTR_OFFICIAL = Artifact("results/models/loftr/{run}/weights_official.ckpt", "the weights as an official LoFTR checkpoint")
LOFTR_METRICS = Artifact("results/models/loftr/{run}/metrics.csv", "training and validation curves")
LOFTR_CURVE = Artifact("results/models/loftr/{run}/curve.png", "training curves (report)")
LOFTR_MATCHES = Artifact("results/eval/matches/loftr/{run}/{testset}.h5", "a run's matches on a test set (pair-keyed H5)")
LOFTR_INIT_MATCHES = Artifact("results/eval/matches/loftr-init/{run}/{testset}.h5",
                              "matches of a fine-tuning run's initial weights (its \"before\")")
LOFTR_EVAL = Artifact("results/eval/loftr/{run}/{testset}.json", "a run's scores on a test set, with intervals and rows per pair")
LOFTR_EVAL_PICTURE = Artifact("results/eval/loftr/{run}/{testset}_matches.jpg", "a run's matches drawn on the first pair")
SIFT_RATIO_MATCHES = Artifact("results/eval/matches/sift/ratio/{testset}.h5", "the SIFT ratio baseline's matches on a test set")
SIFT_RATIO_EVAL = Artifact("results/eval/sift/ratio/{testset}.json", "the SIFT ratio baseline's scores on a test set")
SIFT_RATIO_PICTURE = Artifact("results/eval/sift/ratio/{testset}_matches.jpg", "the SIFT ratio baseline's matches drawn")
LOCALIZATION_PAIRS = Artifact("results/eval/localization/{testset}/pairs-query.txt",
                              "retrieved database images of each query of an own-scene localization test set")

# --- PoSFeat (rules/posfeat.smk) -------------------------------------------------------------------------------
POSFEAT_DESC = Artifact("results/models/posfeat/{posfeat_run}/desc/model.pt", "the description net (stage desc)")
POSFEAT_DESC_CURVE = Artifact("results/models/posfeat/{posfeat_run}/desc/curve.png", "training curve of stage desc (report)")
POSFEAT_KP = Artifact("results/models/posfeat/{posfeat_run}/kp/model.pt", "the detection net with its description net (stage kp)")
POSFEAT_KP_CURVE = Artifact("results/models/posfeat/{posfeat_run}/kp/curve.png", "training curve of stage kp (report)")
POSFEAT_FEATURES = Artifact("results/eval/posfeat/{posfeat_run}/features/{posfeat_testset}.h5", "a run's features of a test set's images")
POSFEAT_MATCHES = Artifact("results/eval/matches/posfeat/{posfeat_run}/{posfeat_testset}.h5", "mutual nearest neighbours of a run's features")
POSFEAT_EVAL = Artifact("results/eval/posfeat/{posfeat_run}/{posfeat_testset}.json", "a run's scores on a test set")
SIFT_MNN_FEATURES = Artifact("results/eval/sift/mnn/features/{posfeat_testset}.h5", "SIFT features of a test set's images")
SIFT_MNN_MATCHES = Artifact("results/eval/matches/sift/mnn/{posfeat_testset}.h5", "mutual nearest neighbours of the SIFT features")
SIFT_MNN_EVAL = Artifact("results/eval/sift/mnn/{posfeat_testset}.json", "the SIFT mutual-NN baseline's scores on a test set")

# --- shift/focal (rules/shiftfocal.smk) ------------------------------------------------------------------------
SHIFTFOCAL_DATA = Artifact("results/shiftfocal/data/{source}", "a source's items: depth, camera, split", folder=True)
SHIFTFOCAL_RUN = Artifact("results/models/shiftfocal/{shiftfocal_run}", "a shift/focal run's folder (<target>.pt per network)", folder=True)
SHIFTFOCAL_FOCAL = Artifact("results/models/shiftfocal/{shiftfocal_run}/focal.pt", "the focal network")
SHIFTFOCAL_SHIFT = Artifact("results/models/shiftfocal/{shiftfocal_run}/shift.pt", "the shift network")
SHIFTFOCAL_METRICS = Artifact("results/models/shiftfocal/{shiftfocal_run}/metrics.json", "training losses and held-out errors")
SHIFTFOCAL_CURVES = Artifact("results/models/shiftfocal/{shiftfocal_run}/curves.png", "training curves (report)")
SHIFTFOCAL_EVAL = Artifact("results/eval/shiftfocal/{shiftfocal_run}/{source}.json", "recovery errors on a source's held-out items")
SHIFTFOCAL_EVAL_PLOT = Artifact("results/eval/shiftfocal/{shiftfocal_run}/{source}.png", "recovery errors before and after (report)")
SHIFTFOCAL_EVAL_BEFORE = Artifact("results/eval/shiftfocal/{shiftfocal_run}/{source}_before.ply", "a held-out cloud before recovery")
SHIFTFOCAL_EVAL_AFTER = Artifact("results/eval/shiftfocal/{shiftfocal_run}/{source}_after.ply", "the same cloud after recovery")
SHIFTFOCAL_EVAL_GT = Artifact("results/eval/shiftfocal/{shiftfocal_run}/{source}_gt.ply", "the same cloud from ground truth")

# --- summary (rules/report.smk) --------------------------------------------------------------------------------
SUMMARY = Artifact("results/summary", "tables and figures of every result, one per kind", folder=True)
SUMMARY_SCENES = Artifact("results/summary/scenes.csv", "one row per scene: photos, registration, depth quality")
SUMMARY_TABLE = Artifact("results/summary/{kind}.csv", "one kind of result (relpose, homography, localization, ...) as a table")
SUMMARY_FIGURE = Artifact("results/summary/{kind}.png", "the same kind as a figure (report)")


def every() -> dict[str, Artifact]:
    """Name -> artifact, in the order of this module."""
    return {name: value for name, value in globals().items() if isinstance(value, Artifact)}


def table() -> str:
    """The table of ``docs/artifacts.md`` (between its ``artifacts`` markers): every artifact with what it holds."""
    rows = ["| path | name in `matchforge.artifacts` | holds |", "|---|---|---|"]
    for name, a in every().items():
        rows.append(f"| `{a}{'/' if a.folder else ''}` | `{name}` | {a.what} |")
    return "\n".join(rows) + "\n"
