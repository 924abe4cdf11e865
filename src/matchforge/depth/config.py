"""Options of the depth stage (section ``depth``, overridable per scene): backends, alignment, checks, H5 output."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from matchforge.options import Options
from matchforge.limits import Batch, Count, SidePx, Workers


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
