"""Options of scene-info files and of the datasets built from them (sections ``scene_info`` and ``datasets``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, RootModel

from matchforge.options import Options, extra
from matchforge.limits import Count, SidePx


class SceneInfoSection(Options):
    """Scene-info stage options: D2-Net overlap buckets written as MegaDepth scene-info files (per scene overridable)."""

    buckets: list[Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=2, max_length=2)]] = Field(default_factory=lambda: [[0.1, 0.3], [0.3, 0.5], [0.5, 0.7]], min_length=1,
        description="overlap ranges [lo, hi); one file {scene}_{lo}_{hi}.npz per range (LoFTR trains on [0.1, 0.7) in"
                    " three buckets)")
    pair_overlap: Literal['min', 'max', 'mean'] = Field('min',
        description="one score per unordered pair from the two directed scores `|Pi∩Pj|/|Pi|`, `|Pi∩Pj|/|Pj|`: `min`,"
                    " `max` or `mean`")
    max_scale_ratio: float | None = Field(None, ge=1,
        description="drop pairs whose D2-Net scale ratio (min over shared points of the normalised-depth ratio) "
                    "exceeds this; null = no limit")
    min_shared_points: int = Field(1, ge=1, description='fewest shared SfM points for a pair to be considered')
    require_depth: bool = Field(True,
        description="images without a valid depth H5 are left out (None), as in MegaDepth; false keeps them with "
                    "depth None (evaluation-only data)")
    min_depth_coverage: float = Field(0.0, ge=0, le=1,
        description="share of valid (> 0) depth pixels an H5 needs to count as valid; 0 = at least one valid pixel")
    max_pairs_per_bucket: Count | None = Field(None, ge=1,
        description="keep at most this many pairs per bucket, drawn at random with seed (the official test files hold"
                    " 300); null = all")
    seed: int = Field(0, description='random seed for max_pairs_per_bucket')
    gt_img_resize: SidePx | None = Field(None, ge=64,
        description="long side (px) at which each pair's ground-truth coarse matches are counted (`pairs.csv`); null = "
                    "the training size of the LoFTR runs that use the scene (the smallest when they differ; else its "
                    "datasets' loftr.img_resize, else 640)")
    min_gt_matches: int = Field(1, ge=0,
        description="pairs with fewer ground-truth coarse matches at gt_img_resize are dropped (listed in stats.json "
                    "and the log); 0 keeps every pair")


class DatasetSplit(Options):
    by: Literal['auto', 'scene', 'images'] = Field('auto',
        description="scene: whole scenes go to train/val/test; images: each scene is split by viewpoint (compact "
                    "groups of cameras, docs/dataset.md) and pairs across splits are dropped; auto = scene with "
                    "several scenes, images with one")
    val_fraction: float = Field(0.1, ge=0, le=0.5,
        description="share of scenes (by scene) or images (by images) for validation; when it gives no pairs, "
                    "val_list.txt repeats the test list")
    test_fraction: float = Field(0.2, gt=0, le=0.5,
        description="share of scenes (by scene) or images (by images) held out for testing")
    seed: int = Field(0, description='the split is a deterministic function of this seed and the scene infos')
    tries: int | None = Field(None, ge=1,
        description="by images: seed cameras tried for the held-out group (in a seeded random order); the candidate "
                    "with pairs in every split, separated from training, keeping most pairs wins (docs/dataset.md). "
                    "null = min(500, max(10, 20000 / images)): each try costs O(images^2)")
    max_buffer_fraction: float = Field(0.2, ge=0, le=0.5,
        description="by images: at most this share of a scene's photos is left out between training and held-out "
                    "cameras so that no held-out photo's nearest training camera is closer than the held-out photos' "
                    "own spacing")
    near_duplicate_bits: int = Field(8, ge=0, le=32,
        description="photos whose perceptual hashes differ by at most this many of 64 bits are one photo (re-encoded,"
                    " resized, copied): kept in one split, and left out of val/test when a copy is in any scene's "
                    "train split")


class DatasetLoFTR(Options):
    """fields of the generated LoFTR data config (loftr_data_config.py)"""

    data_prefix: str | None = Field(None,
        description="path under which LoFTR sees this dataset folder (e.g. data/demo after `ln -s "
                    "results/datasets/demo LoFTR/data/demo`); null writes the dataset's absolute path")
    img_resize: SidePx = Field(640, ge=64, description='cfg.DATASET.MGDPT_IMG_RESIZE (long side, px)')
    n_samples_per_subset: Count = Field(100, ge=1,
        description="cfg.TRAINER.N_SAMPLES_PER_SUBSET written into loftr_data_config.py for the official LoFTR code: "
                    "pairs drawn per scene-info file per epoch (matchforge's own training reads "
                    "loftr.train.n_samples_per_subset, same meaning)")
    min_overlap_train: float = Field(0.0, ge=0, le=1, description='cfg.DATASET.MIN_OVERLAP_SCORE_TRAIN')
    min_overlap_test: float = Field(0.0, ge=0, le=1, description='cfg.DATASET.MIN_OVERLAP_SCORE_TEST')


class Dataset(Options):
    """One entry of datasets: its scenes, how they are split, the fields of its LoFTR data config."""

    scenes: list[str] = Field(min_length=1, json_schema_extra=extra(unique=True),
        description="scenes (keys of `scenes:`) whose scene-info files make up the dataset")
    split: DatasetSplit = Field(default_factory=lambda: DatasetSplit(), json_schema_extra={"default": {}})
    loftr: DatasetLoFTR = Field(default_factory=lambda: DatasetLoFTR(), json_schema_extra={"default": {}},
        description="fields of the generated LoFTR data config (loftr_data_config.py)")


class DatasetsSection(RootModel[dict[str, Dataset]]):
    """Datasets: name -> scenes, split and LoFTR data config. Each is built under results/datasets/<name>/ in MegaDepth
    layout."""

    root: dict[str, Dataset] = Field(default_factory=dict)
