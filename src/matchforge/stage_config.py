"""Typed options of the stage sections (sfm, depth, scene_info, datasets, localization, slurm): each option's type,
bounds, default and description, written only here (the training families' are in :mod:`matchforge.run_config`).

``src/matchforge/schemas/<stage>.schema.yaml`` and the option tables of ``config/README.md`` are generated from these
models by ``matchforge config-docs`` (a test checks both are current). A stage command parses its options once with
its section's model (:func:`matchforge.config_schema.with_defaults`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping

from pydantic import ConfigDict, Field, RootModel, WithJsonSchema, model_validator

from matchforge.run_config import LoFTRSection, Options, PoSFeatSection, ShiftFocalSection, extra
from matchforge.limits import Batch, Count, SidePx, Workers


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


class DepthSparse(Options):
    """options of the sparse backend"""

    radius: int = Field(8, ge=0,
        description="pixels within this distance (px) of an SfM observation may take its depth; 0 = only the "
                    "observation pixels")
    max_rel_spread: float = Field(0.05, ge=0,
        description="a pixel is filled only if all points in its (2*radius+1)^2 window agree: (z_max - z_min) / z_min"
                    " <= this")


class DepthAnything(Options):
    """options of the depth_anything backend (transformers AutoModelForDepthEstimation)"""

    model: str = Field('depth-anything/Depth-Anything-V2-Small-hf',
        description="hub id (downloaded once into the Hugging Face cache) or a local directory with config.json, "
                    "weights and preprocessor_config.json")
    kind: Literal['auto', 'relative', 'metric'] = Field('auto',
        description="output type; auto reads config.depth_estimation_type (relative = affine-invariant disparity, "
                    "metric = metres)")
    batch_size: Batch = Field(4, ge=1, description='images per forward pass (grouped by network input size)')
    device: str = Field('auto', description='`auto` = CUDA when available, else CPU; or e.g. `cuda:1`')
    local_files_only: bool = Field(False, description='never contact the hub (a local directory implies it)')
    fp16: bool = Field(False, description='half precision on CUDA')


class DepthMvs(Options):
    """options of the mvs backend (COLMAP PatchMatch stereo through pycolmap; depth in SfM units, docs/depth.md)"""

    max_image_size: SidePx = Field(-1,
        description="long side (px) PatchMatch works at; -1 = the undistorted images' size (maps are brought back to "
                    "it)")
    num_sources: Count = Field(20, ge=1, description='source views per image, picked by COLMAP from the sparse model')
    num_iterations: int = Field(5, ge=1, description='PatchMatch propagation iterations')
    window_radius: int = Field(5, ge=1, description='half-size (px) of the NCC window')
    geom_consistency: bool = Field(True,
        description="COLMAP's geometric consistency pass (the MegaDepth recipe); the .geometric maps are used")
    filter_min_num_consistent: int = Field(2, ge=0,
        description="COLMAP's own filter: views that must agree with a pixel")
    gpu_index: str = Field('-1', description='CUDA device(s) as COLMAP names them; -1 = all')
    keep_workspace: bool = Field(False, description='keep results/<scene>/depth/mvs (normal maps, consistency graphs)')


class DepthAlign(Options):
    """fit of the raw prediction to the SfM depths of the points each image observes"""

    min_points: int = Field(30, ge=2, description='fewer SfM points for the fit = poor fit')
    ransac_iterations: Count = Field(256, ge=1, description='2-point RANSAC samples before the IRLS refinement')
    inlier_threshold: float = Field(0.1, gt=0,
        description="inlier if the relative inverse-depth error |z(a·d+b) − 1| is below this")
    max_abs_rel: float = Field(0.15, gt=0,
        description="median |z_pred/z - 1| over the fit points above this = poor fit")
    min_inlier_ratio: float = Field(0.5, ge=0, le=1, description='inlier share below this = poor fit')
    max_depth_ratio: float = Field(5.0, ge=0,
        description="aligned depth beyond this times the farthest SfM point of the image is set invalid (sky); 0 = no"
                    " limit")
    holdout_percent: float = Field(10, ge=0, le=90,
        description="share (%) of SfM points kept out of the fit, for the QA's AbsRel (same points in every image)")
    on_poor_fit: Literal['invalid', 'exclude', 'keep'] = Field('invalid',
        description="invalid = write an all-zero map; exclude = write no H5 and list the image under `excluded` in "
                    "depth/align.json; keep = write it anyway (flagged)")
    seed: int = Field(0, description='RANSAC random seed')


class DepthConsistency(Options):
    """multi-view consistency filter between alignment and the H5 files (docs/depth.md): a pixel is kept when at least min_views of its top_k most covisible images confirm its depth"""

    enabled: bool = Field(True,
        description="multi-view consistency filter between alignment and `depth/h5` (false: the aligned maps "
                    "unfiltered)")
    top_k: Count = Field(5, ge=1, description='neighbour images checked per image (most shared SfM points first)')
    min_views: int = Field(1, ge=1, description="neighbours that must confirm a pixel's depth")
    rel_threshold: float = Field(0.06, gt=0,
        description="a neighbour confirms when |z - d_j| <= rel_threshold * d_j (z: the pixel's depth seen from the "
                    "neighbour, d_j: the neighbour's depth there)")


class DepthH5(Options):
    """how depth/h5/{stem}.h5 is written (readable by plain h5py, no hdf5plugin needed)"""

    compression: Literal['fast_deflate', 'lzf', 'gzip', 'none'] = Field('fast_deflate',
        description="fast_deflate = a standard shuffle+gzip dataset whose chunks matchforge compresses itself (raw "
                    "blocks for noise-like byte planes, run-length deflate for the rest, all-zero chunks skipped, "
                    "threaded); lzf/gzip = h5py's own filters")
    threads: Workers = Field(0, ge=0, description='threads compressing chunks for fast_deflate; 0 = min(8, CPU count)')
    gzip_level: int = Field(4, ge=0, le=9, description='level when compression is gzip')
    shuffle: bool = Field(True,
        description="byte-shuffle filter before lzf/gzip (much smaller float32 files); fast_deflate always shuffles")
    chunk: SidePx = Field(256, ge=16, description='chunk edge (px) of the chunked layout')
    max_long_side: SidePx = Field(2000,
        description="LoFTR pads depth to 2000 px; maps with a longer side follow `oversize`; <= 0 disables the check")
    oversize: Literal['error', 'allow', 'skip'] = Field('error',
        description="error = stop with a message (fix: sfm.undistort_max_image_size); allow = write and warn (raise "
                    "LoFTR's MGDPT_DEPTH_PAD); skip = write no H5, list under `oversize_skipped`")


class DepthShape(Options):
    """optional last step: focal length and point cloud of every depth map from a trained shift/focal model (docs/depth.md); the only 3D output of single_images scenes"""

    run: str | None = Field(None,
        description="name of a `shiftfocal.runs` entry: adds the shape step (`depth_shape`: focal length, recovered "
                    "depth and a PLY point cloud per image; against the SfM focal where there is SfM); null = off. "
                    "The demo scene sets `demo`")
    num_points: Count = Field(20000, ge=64, description='points the shift/focal networks see per image')
    max_shift: float = Field(0.6, description='clamp of the predicted depth shift (LeReS)')
    fov_deg: float = Field(60.0, gt=0, lt=180, description='initial vertical field of view guess (LeReS: 60)')
    alpha_range: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [0.5, 1.5], min_length=2, max_length=2,
        description="clamp of each predicted focal ratio")
    ply_points: Count = Field(100000, ge=1, description='at most this many points per PLY (random subset)')
    device: str = Field('auto', description='auto = cuda when available, else cpu')


class DepthQa(Options):
    """depth QA"""

    seed_recipe_baseline: bool = Field(True,
        description="also report the track-transfer error of the public recipe's depth (8-bit disparity / 100) built "
                    "from the same raw maps")


class DepthSection(Options):
    """Depth stage options: backend, alignment to the SfM scale, H5 writing, QA. Any of them can be overridden per
    scene."""

    backend: Literal['sparse', 'depth_anything', 'mvs'] = Field('sparse',
        description="sparse = SfM points densified where safe (offline, the demo); depth_anything = a transformers depth "
                    "model; mvs = COLMAP PatchMatch stereo (needs a CUDA build of pycolmap: pip install "
                    "'matchforge[gpu]'; refused before anything runs otherwise)")
    sparse: DepthSparse = Field(default_factory=lambda: DepthSparse(), json_schema_extra={"default": {}})
    depth_anything: DepthAnything = Field(default_factory=lambda: DepthAnything(), json_schema_extra={"default": {}})
    mvs: DepthMvs = Field(default_factory=lambda: DepthMvs(), json_schema_extra={"default": {}})
    align: DepthAlign = Field(default_factory=lambda: DepthAlign(), json_schema_extra={"default": {}})
    consistency: DepthConsistency = Field(default_factory=lambda: DepthConsistency(), json_schema_extra={"default": {}})
    h5: DepthH5 = Field(default_factory=lambda: DepthH5(), json_schema_extra={"default": {}})
    shape: DepthShape = Field(default_factory=lambda: DepthShape(), json_schema_extra={"default": {}})
    qa: DepthQa = Field(default_factory=lambda: DepthQa(), json_schema_extra={"default": {}})


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


class LocalizationTestset(Options):
    dataset: str | None = Field(None, json_schema_extra=extra(unset=True),
        description="own scene: a key of datasets: with one scene split by images (viewpoint)")
    aachen: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="instead of dataset: an Aachen Day-Night v1.1 root (3D-models/aachen_v_1_1, "
                    "images/images_upright, queries/*_with_intrinsics.txt)")
    query_pairs: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="aachen: the retrieval pair list, 'query db_image' per line (hloc's pairs-query-*.txt)")
    db_pairs: str | None = Field(None, json_schema_extra=extra(path=True),
        description="aachen: the database pair list (null: each database image with its db_k most covisible ones in "
                    "the model)")
    ground_truth: str | None = Field(None, json_schema_extra=extra(path=True),
        description="aachen: query poses in the submission format, for recall (the benchmark keeps its own private)")
    scene: str | None = Field(None, description="the scene (null: the dataset's only scene)")
    img_resize: SidePx = Field(640, ge=64, description='long side (px) LoFTR and SIFT see')
    db_k: Count = Field(10, ge=1,
        description="database pairs (own scene, or aachen without db_pairs): each database image with its db_k most "
                    "covisible database images")
    query_k: Count = Field(5, ge=1,
        description="own scene: each query is matched to query_k database images, chosen by retrieval")
    retrieval: Literal['visual', 'covisibility'] = Field('visual',
        description="own scene: how a query's database images are chosen. visual: COLMAP's visual-word retrieval "
                    "from the photos alone, re-ranked by verified SIFT matches (as Aachen retrieves); covisibility: the "
                    "query_k database images sharing the most points in the ground-truth model, an oracle. With "
                    "visual, the oracle is scored too, as an upper-bound row")
    seed: int = Field(0, description="own scene: random seed of the retrieval's vocabulary and verification")
    cell_px: float = Field(4.0, gt=0,
        description="scoring: each image's matched points, gathered over all its pairs, become one keypoint per cell of "
                    "this size (px of the size the matcher saw; hloc's loftr_aachen: 8 at 1024 px; measured: "
                    "docs/evaluation.md)")
    max_error_px: float = Field(2.0, gt=0,
        description="scoring: a query pair's database point goes to the nearest database keypoint within this distance "
                    "(px of the size the matcher saw; hloc's loftr_aachen: 2), else its match is dropped")
    ransac_px: float = Field(12.0, gt=0, description="scoring: RANSAC threshold (px) of the absolute pose (hloc's 12)")
    min_inliers: int = Field(12, ge=4,
        description="scoring: a query counts as localized only with at least this many RANSAC inliers (else it is a "
                    "failure with infinite error)")
    thresholds: list[tuple[float, float]] = Field([(0.25, 2.0), (0.5, 5.0), (5.0, 10.0)], min_length=1,
        description="scoring: recall thresholds as [distance, degrees], tightest first (Aachen's by default); distance "
                    "in metres with the scene's metres_per_unit, else in median database camera baselines")

    model_config = ConfigDict(**Options.model_config,
                              json_schema_extra={"oneOf": [{"required": ["dataset"]}, {"required": ["aachen", "query_pairs"]}]})

    @model_validator(mode="after")
    def _one_source(self) -> "LocalizationTestset":
        if (self.dataset is None) == (self.aachen is None or self.query_pairs is None):
            raise ValueError("give either dataset, or aachen and query_pairs")
        return self


class LocalizationSection(Options):
    """Visual localization, as hloc runs Aachen Day-Night (docs/evaluation.md). On the user's own scene (dataset:), the
    training photos of a single-scene dataset are the database (SfM poses held fixed), its test photos the queries; on
    a folder in the Aachen v1.1 layout (aachen:), its model, queries and pair lists, and the result holds the
    benchmark's submission file. Every LoFTR run, the SIFT baseline (loftr.baseline) and every PoSFeat run is
    evaluated on every test set here, into results/eval/<family>/<run>/<testset>.json."""

    testsets: dict[str, LocalizationTestset] = Field(default_factory=dict,
        description="name -> a localization test set (names must differ from loftr.testsets and posfeat.testsets)")


class SlurmSection(Options):
    """Where jobs go on a SLURM cluster (`snakemake --workflow-profile slurm`; docs/slurm.md). Each value may also come from the environment: MATCHFORGE_SLURM_ACCOUNT, MATCHFORGE_SLURM_CPU_PARTITION, MATCHFORGE_SLURM_GPU_PARTITION (the config wins when both are set). Unset values are left to the cluster's defaults. Ignored when jobs run locally."""

    account: str | None = Field(None, description='sbatch `--account` of every job (or `MATCHFORGE_SLURM_ACCOUNT`)')
    cpu_partition: str | None = Field(None,
        description="partition of jobs whose rule asks for no GPU (or `MATCHFORGE_SLURM_CPU_PARTITION`)")
    gpu_partition: str | None = Field(None,
        description="partition of every job whose rule asks for gpu > 0 (derived from the rule's resources, no list "
                    "of rules)")
    warn_signal_seconds: int = Field(120, ge=0,
        description="SLURM sends SIGUSR1 this long before a job's time limit; training jobs checkpoint and exit 75, "
                    "and Snakemake's retry resumes them (0 = off)")


# --- the top level: scenes and the sections ---------------------------------------------------------------------


class ColmapProject(Options):
    """An existing COLMAP project to reuse instead of running SfM from scratch."""

    sparse: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="a sparse model folder (cameras/images/points3D .bin or .txt)")
    database: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="a COLMAP database.db with features and matches")
    undistorted: bool = Field(False, description="the sparse model is already PINHOLE and matches `images`")


class JobResources(Options):
    """Cluster time and memory of one of a scene's jobs."""

    runtime: int | str | None = Field(None, json_schema_extra=extra(unset=True),
        description='minutes, or a Snakemake duration such as "12h"')
    mem_mb: int | None = Field(None, ge=100, json_schema_extra=extra(unset=True), description="memory (MB)")


ScaledJob = Literal["sfm", "depth_predict", "depth_align", "depth_consistency", "scene_info"]


class Scene(Options):
    """One entry of scenes: where its photos are, and its own options."""

    images: str = Field(json_schema_extra=extra(path=True),
        description="folder of photos (searched recursively; relative to the working directory or absolute)")
    single_images: bool = Field(False,
        description="no SfM: only depth (`depth.backend: depth_anything`) and, with `depth.shape.run`, a focal length "
                    "and point cloud per photo; such a scene cannot be in a dataset")
    colmap: ColmapProject | None = Field(None, json_schema_extra=extra(unset=True),
        description="reuse an existing COLMAP project (`sparse`, `database`, `undistorted`)")
    sfm: dict[str, Any] | None = Field(None, json_schema_extra=extra(unset=True),
        description="overrides of the sfm section for this scene")
    depth: dict[str, Any] | None = Field(None, json_schema_extra=extra(unset=True),
        description="overrides of the depth section for this scene")
    scene_info: dict[str, Any] | None = Field(None, json_schema_extra=extra(unset=True),
        description="overrides of the scene_info section for this scene")
    metres_per_unit: float | None = Field(None,
        description="metres per SfM unit, when known (a measured distance between two cameras / its SfM length): "
                    "localization thresholds are then in metres, else in median camera baselines")
    resources: dict[ScaledJob, JobResources] | None = Field(None, json_schema_extra=extra(unset=True),
        description="cluster time and memory of this scene's sfm, depth_predict, depth_align, depth_consistency, "
                    "scene_info jobs, e.g. `{sfm: {runtime: 12h, mem_mb: 64000}}`; unset values grow with the scene's "
                    "photo count (src/matchforge/job_resources.py, docs/slurm.md)")


def _section(model: type, stage: str) -> Any:
    """A section of the config file typed by ``model``; the top-level schema leaves its keys to
    ``<stage>.schema.yaml`` (each section's schema is exported on its own)."""
    return Annotated[model, WithJsonSchema({"anyOf": [{"additionalProperties": True, "type": "object"}, {"type": "null"}],
                                             "description": f"see {stage}.schema.yaml"})]


class ConfigFile(Options):
    """matchforge configuration: the scenes, then one section per stage. Parsed once at planning into this model
    (:func:`matchforge.config_schema.validate_config`), which fills every default; a section left empty takes all
    of its defaults."""

    scenes: dict[str, Scene] = Field(
        description="scene name -> where its photos are, plus per-scene overrides of stage options ({} when runs "
                    "train on official indices only)")
    sfm: _section(SfMSection, "sfm") = Field(default_factory=lambda: SfMSection(), json_schema_extra={"default": {}})
    depth: _section(DepthSection, "depth") = Field(default_factory=lambda: DepthSection(), json_schema_extra={"default": {}})
    scene_info: _section(SceneInfoSection, "scene_info") = Field(default_factory=lambda: SceneInfoSection(), json_schema_extra={"default": {}})
    datasets: _section(DatasetsSection, "datasets") = Field(default_factory=lambda: DatasetsSection({}), json_schema_extra={"default": {}})
    loftr: _section(LoFTRSection, "loftr") = Field(default_factory=lambda: LoFTRSection(), json_schema_extra={"default": {}})
    posfeat: _section(PoSFeatSection, "posfeat") = Field(default_factory=lambda: PoSFeatSection(), json_schema_extra={"default": {}})
    shiftfocal: _section(ShiftFocalSection, "shiftfocal") = Field(default_factory=lambda: ShiftFocalSection(), json_schema_extra={"default": {}})
    localization: _section(LocalizationSection, "localization") = Field(default_factory=lambda: LocalizationSection(), json_schema_extra={"default": {}})
    report: dict[str, Any] | None = Field(None, json_schema_extra=extra(unset=True))
    slurm: _section(SlurmSection, "slurm") = Field(default_factory=lambda: SlurmSection(), json_schema_extra={"default": {}})

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """``sfm:`` with nothing under it (YAML reads None) is the section with its defaults."""
        if isinstance(data, Mapping):
            data = {k: ({} if v is None and k in SECTIONS else v) for k, v in data.items()}
        return data


# The stage sections exported as src/matchforge/schemas/<name>.schema.yaml (config: the top level).
SECTIONS: dict[str, Any] = {"config": ConfigFile, "sfm": SfMSection, "depth": DepthSection, "scene_info": SceneInfoSection,
                            "datasets": DatasetsSection, "localization": LocalizationSection, "slurm": SlurmSection}
