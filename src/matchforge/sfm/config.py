"""Options of the SfM stage (section ``sfm``, overridable per scene)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from matchforge.options import Options, extra
from matchforge.limits import Count, SidePx


class SfMSection(Options):
    """SfM stage options (pycolmap): feature extraction, matching, mapping, undistortion."""

    camera_model: Literal['SIMPLE_PINHOLE', 'PINHOLE', 'SIMPLE_RADIAL', 'RADIAL', 'OPENCV', 'FULL_OPENCV', 'SIMPLE_RADIAL_FISHEYE', 'RADIAL_FISHEYE', 'OPENCV_FISHEYE'] = Field('SIMPLE_RADIAL',
        description="COLMAP camera model fitted to the photos (distortion is removed afterwards)")
    camera_mode: Literal['auto', 'single', 'per_folder', 'per_image'] = Field('auto',
        description="`single` (one camera for the scene, e.g. a video), `per_image` (internet photo collections), "
                    "`per_folder`, `auto` (COLMAP groups by EXIF and size)")
    max_image_size: SidePx = Field(1600, ge=100, description='long side (px) used for SIFT extraction')
    max_num_features: Count = Field(8192, ge=100, description='SIFT features per image')
    matcher: Literal['auto', 'exhaustive', 'sequential', 'vocab_tree', 'spatial'] = Field('auto',
        description="`exhaustive`, `sequential`, `vocab_tree`, `spatial`; `auto` = exhaustive up to "
                    "`exhaustive_max_images`, then spatial if the photos carry GPS, else `vocab_tree` (image "
                    "retrieval). `auto` never picks `sequential` (file-name order: right for video frames, wrong for "
                    "unordered collections)")
    exhaustive_max_images: Count = Field(150, ge=2,
        description="matcher auto matches every pair up to this many photos (n(n-1)/2 pairs), and retrieves pairs "
                    "above it")
    sequential_overlap: Count = Field(10, ge=1, description='neighbours matched by the sequential matcher')
    vocab_tree_path: str | None = Field(None, json_schema_extra=extra(path=True),
        description="a COLMAP ≥ 3.12 vocabulary tree (`vocab_tree_faiss_*.bin`) for `vocab_tree`; null builds a "
                    "vocabulary from the scene's own SIFT features (`work/visual_index.bin`, kept with the database)")
    vocab_tree_num_words: Count | None = Field(None, ge=16,
        description="visual words of a vocabulary built from the scene (null: 32 per photo as a power of two, 1024 to"
                    " 8192)")
    retrieval_num_images: Count = Field(30, ge=1,
        description="vocab_tree: each photo is matched with this many most similar photos (about n x this many pairs "
                    "instead of n(n-1)/2)")
    max_num_matches: Count = Field(32768, ge=100, description='per pair')
    guided_matching: bool = Field(False,
        description="re-match each verified pair guided by its two-view geometry (COLMAP's guided matching). For "
                    "internet photos with one unknown camera each it fixes cameras whose focal is poorly constrained "
                    "(Reichstag: worst rotation error 2.3° → 0.8°), but the tracks get looser (mean reprojection "
                    "error 0.38 → 0.76 px, demo depth track transfer within 2 px 97 % → 88 %) and matching takes "
                    "about 3x longer on CPU")
    mapper: Literal['incremental', 'global'] = Field('incremental',
        description="or `global` (GLOMAP-style global SfM in pycolmap >= 3.12)")
    mapping_attempts: int = Field(3, ge=1,
        description="mapping (incremental or global) is re-run with seeds `seed+1`, `seed+2`, ... (this many runs at "
                    "most) while its largest model registers fewer than `retry_below` of the readable photos; the "
                    "largest model of all runs (most registered photos, then most 3D points) is kept and `stats.json`"
                    " lists every run under `attempts`. A genuine split is not retried: when the models of a run "
                    "register `retry_below` of the photos together and no verified pair joins two of them (a "
                    "collection of several buildings), the run is marked `genuine_split`. A bad initial pair can "
                    "otherwise leave a 2-3 image model (demo scene: 1 seed in 15)")
    retry_below: float = Field(0.5, ge=0, le=1,
        description="share of the readable photos the largest model must register for mapping not to be retried")
    min_points3D: int = Field(200, ge=0,
        description="the scene fails (with the numbers and a fix) when the best model has fewer 3D points: such a "
                    "model gives all-invalid depth and no pairs. 0 accepts any model")
    min_model_size: int = Field(10, ge=2,
        description="incremental mapping drops models that register fewer photos (COLMAP's default 10); a landmark "
                    "with fewer photos in a mixed collection needs a smaller value")
    min_num_matches: int = Field(15, ge=5, description='inlier matches for a pair to be used in mapping')
    ba_global_function_tolerance: float = Field(1e-06, gt=0, description='bundle-adjustment stopping tolerance')
    structure_less_fallback: bool = Field(True,
        description="register a photo that sees too few 3D points from its 2D-2D matches instead (COLMAP ≥ 3.13); "
                    "tens of seconds per such photo on CPU. The ETH-style reconstruction evaluation turns it off (the"
                    " benchmark's COLMAP had none)")
    undistort_max_image_size: SidePx = Field(2000,
        description="long side (px) of the undistorted images; -1 keeps the full size. LoFTR pads depth to 2000 px, "
                    "so larger images break its loader")
    num_threads: int = Field(-1,
        description="with deterministic: false, threads for feature extraction, matching and (unless mapping_threads "
                    "is set) mapping; -1 = all cores given to the job")
    deterministic: bool = Field(True,
        description="every SfM step (feature extraction, matching, geometric verification, the visual index, mapping) "
                    "runs single-threaded, so the model is the same bit for bit for every thread count and machine "
                    "load; false: they use num_threads, faster on many cores, but the model then changes with the "
                    "thread count (docs/sfm.md: cost and spread measured)")
    mapping_threads: int | None = Field(None,
        description="with deterministic: false, threads for mapping only (null = `num_threads`). Above 1, which image "
                    "pair starts the model depends on thread timing")
    use_gpu: bool = Field(False, description='SIFT extraction/matching on GPU (needs a CUDA build of pycolmap)')
    seed: int = Field(0, description='random seed for RANSAC and mapping')
