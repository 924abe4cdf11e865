"""LoFTR's options: what a run trains on, its training options, its test sets and the SIFT ratio baseline.

A training command parses its options once into :class:`LoFTRRunConfig` and passes that object down.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from matchforge.options import Options, extra
from matchforge.limits import MAX_WORKERS, Batch, Count, SidePx, Width, Workers
from matchforge.evaluation.config import LoFTRTestset
from matchforge.training.config import Engine


class MegaDepthVal(Options):
    """A MegaDepth index of LoFTR's: scene-info .npz files, MegaDepth images and depth H5 files under data_root."""

    npz_root: str = Field(json_schema_extra=extra(path=True),
        description="folder of scene-info .npz files, e.g. data/megadepth/index/scene_info_0.1_0.7")
    list_: str = Field(alias="list", json_schema_extra=extra(path=True),
        description="list of scene-info stems to use, e.g. data/megadepth/index/trainvaltest_list/train_list.txt")
    data_root: str = Field(json_schema_extra=extra(path=True),
        description="folder the index's image and depth paths are relative to (LoFTR's data/megadepth/train)")


class MegaDepthIndex(MegaDepthVal):
    """LoFTR's official MegaDepth training indices (upstream: img_resize 840, min_overlap 0.0), and the validation's."""

    val: MegaDepthVal | None = Field(None, json_schema_extra=extra(unset=True),
        description="validation index (e.g. npz_root data/megadepth/index/scene_info_val_1500, list "
                    "trainvaltest_list/val_list.txt, data_root data/megadepth/test)")


class ScanNetVal(Options):
    """A ScanNet index of LoFTR's with your exported scenes."""

    npz_root: str = Field(json_schema_extra=extra(path=True),
        description="folder of index .npz files (name, score), e.g. data/scannet/index/scene_data/train")
    list_: str = Field(alias="list", json_schema_extra=extra(path=True),
        description="list of index names to use, e.g. data/scannet/index/scene_data/train_list/scannet_all.txt")
    intrinsics: str = Field(json_schema_extra=extra(path=True),
        description="intrinsics.npz (sceneXXXX_YY -> 3x3 K for 640x480 frames)")
    data_root: str = Field(json_schema_extra=extra(path=True),
        description="exported scenes: <scene>/color/<frame>.jpg, depth/<frame>.png (mm), pose/<frame>.txt")
    pose_root: str | None = Field(None, json_schema_extra=extra(path=True),
        description="folder of <scene>/pose/<frame>.txt; null = data_root")


class ScanNetIndex(ScanNetVal):
    """LoFTR's ScanNet training indices (set img_resize 640, pad false, depth_max_size null, min_overlap 0.4 as
    upstream), and the validation's."""

    val: ScanNetVal | None = Field(None, json_schema_extra=extra(unset=True),
        description="validation index (e.g. ScanNet-1500: npz_root and list of "
                    "resources/testsets/loftr_indices/scannet_test_1500, data_root of its frames)")


class LoFTRData(Options):
    """What a LoFTR run trains on: exactly one of these."""

    dataset: str | None = Field(None, json_schema_extra=extra(unset=True),
        description="name of a dataset under `datasets:` (results/datasets/<name>/dataset.json); or give `megadepth` or "
                    "`scannet`")
    megadepth: MegaDepthIndex | None = Field(None, json_schema_extra=extra(unset=True),
        description="train on LoFTR's official MegaDepth indices instead of a matchforge dataset")
    scannet: ScanNetIndex | None = Field(None, json_schema_extra=extra(unset=True),
        description="train on LoFTR's ScanNet indices instead of a matchforge dataset")


class LoFTRTrain(Engine):
    """Training options of a LoFTR run (loftr.train, overridden per run by runs.<run>.train)."""

    init_weights: str | None = Field(None, json_schema_extra=extra(path=True),
        description="start from these weights instead of a random initialisation: a kornia pretrained name (outdoor, "
                    "indoor, indoor_new; downloads once), the name of another run under loftr.runs (its weights.pt; "
                    "Snakemake builds that run first), or a file: an official LoFTR Lightning checkpoint, a matchforge "
                    "weights.pt or last.ckpt. The architecture options must fit the weights (a mismatch is refused naming "
                    "the option); temp_bug_fix follows the weights where their source records it. Evaluations then also "
                    "score the initial weights (key `before`)")
    freeze_backbone_steps: int = Field(0, ge=0,
        description="keep the CNN backbone (weights and BatchNorm statistics) fixed for the first N optimiser steps of a "
                    "fine-tuning")
    match_type: Literal['dual_softmax', 'sinkhorn'] = Field('dual_softmax',
        description="coarse matcher: dual-softmax (DS) or optimal transport with a learnable dustbin (OT)")
    sparse_spvs: bool = Field(False,
        description="false = dense coarse supervision (official outdoor training); true = positives only (DS) or positives "
                    "+ dustbins (OT)")
    temp_bug_fix: bool = Field(True,
        description="fixed positional encoding (official training default; kornia's outdoor weights use false)")
    block_dims: list[Annotated[Width, Field(ge=8)]] = Field(default_factory=lambda: [128, 196, 256], min_length=3, max_length=3,
        description="ResNet-FPN widths at 1/2, 1/4, 1/8; the fine/coarse transformers use the first/last. Non-default "
                    "values do not load into kornia's default LoFTR")
    initial_dim: Width = Field(128, ge=8, description='ResNet-FPN stem width')
    coarse_layers: Width = Field(4, ge=1, description='self+cross attention pairs of the coarse transformer (4 upstream)')
    nhead: Width = Field(8, ge=1, description='attention heads')
    thr: float = Field(0.2, description='coarse match confidence threshold')
    border_rm: int = Field(2, ge=0, description='coarse cells removed at the image border')
    dsmax_temperature: float = Field(0.1, gt=0, description='dual-softmax temperature')
    skh_iters: int = Field(3, ge=1, description='Sinkhorn iterations (OT)')
    skh_init_bin_score: float = Field(1.0, description='initial dustbin score (OT)')
    skh_prefilter: bool = Field(False,
        description="OT: at inference drop cells whose best assignment is the dustbin (official OT configs: false)")
    train_coarse_percent: float = Field(0.3, gt=0, le=1,
        description="share of coarse cells sent to the fine level in training (0.3 outdoor)")
    train_pad_num_gt_min: Count = Field(200, ge=1,
        description="minimum ground-truth pads of the fine level; must stay below train_coarse_percent x coarse cells")
    depth_check: bool = Field(False,
        description="also require present, consistent depth for coarse ground truth (upstream: false)")
    coarse_positive: Literal['clamped', 'log'] = Field('clamped',
        description="positive focal terms: clamped = upstream (confidence clamped to [1e-6, 1-1e-6], so a positive below "
                    "1e-6 gets no gradient, which stalls dual-softmax training from scratch for hundreds of steps); log = "
                    "exact log-probabilities from the matcher's log domain, no dead zone (docs/loftr.md)")
    focal_alpha: float = Field(0.25, description='focal loss alpha')
    focal_gamma: float = Field(2.0, description='focal loss gamma')
    pos_weight: float = Field(1.0, description='weight of positive coarse terms')
    neg_weight: float = Field(1.0, description='weight of negative coarse terms')
    coarse_weight: float = Field(1.0, description='weight of the coarse loss')
    fine_weight: float = Field(1.0, description='weight of the fine loss')
    fine_correct_thr: float = Field(1.0, gt=0,
        description="fine GT offsets (window units) beyond this are not supervised")
    img_resize: SidePx = Field(640, ge=64,
        description="long side (px) of training images, padded to a square (640 or 840 upstream)")
    interpolation: Literal['linear', 'area'] = Field('linear',
        description="image resampling when resizing: linear = cv2.resize's default, what the official loaders use; area = "
                    "anti-aliased downsizing")
    depth_max_size: SidePx | None = Field(2000, ge=64,
        description="depth maps are zero-padded to this square size (upstream MegaDepth 2000); null = no padding (all depth"
                    " maps of one size, as ScanNet)")
    pad: bool = Field(True,
        description="pad images to an img_resize square with masks (upstream MegaDepth); false for ScanNet (all frames "
                    "640x480)")
    min_overlap: float = Field(0.0,
        description="training pairs need overlap > this (upstream: 0.0 MegaDepth outdoor, 0.4 ScanNet)")
    n_samples_per_subset: Count = Field(100, ge=1,
        description="pairs drawn per scene-info file (one overlap bucket of one scene) per epoch, with replacement (the "
                    "official N_SAMPLES_PER_SUBSET; datasets.<d>.loftr.n_samples_per_subset is the same value for the "
                    "official code's config)")
    num_workers: Annotated[int, Field(ge=0, le=MAX_WORKERS)] | Literal['auto'] = Field('auto',
        description="data-loader worker processes per training process; auto = the CPUs the process may use less one, "
                    "at most 8 (matchforge.training.options.loader_workers); the job asks for num_workers + 1 CPU "
                    "threads per training process (auto: 9, capped by --cores locally, cpus-per-task on SLURM)")
    val_max_pairs: int | None = Field(None, description='validate on at most this many val pairs (null = all)')
    batch_size: Batch = Field(1, ge=1, description='pairs per GPU per step')
    canonical_lr: float = Field(0.008, gt=0, description='lr at canonical_bs; scaled linearly by the true batch size')
    canonical_bs: int = Field(64, ge=1, description='batch size canonical_lr refers to')
    canonical_warmup_step: int = Field(1875, ge=0, description='warm-up steps at canonical_bs (scaled inversely)')
    warmup_step: int | None = Field(None, description='override the scaled warm-up length (steps)')
    warmup_ratio: float = Field(0.1, ge=0, le=1, description='warm-up starts at this fraction of the lr')
    weight_decay: float = Field(0.1, ge=0, description='AdamW weight decay')
    milestones: list[int] = Field(default_factory=lambda: [8, 12, 16, 20, 24],
        description="epochs at which the lr is multiplied by gamma")
    gamma: float = Field(0.5, gt=0, description='MultiStepLR factor')
    gradient_clip_val: float = Field(0.5, ge=0, description='gradient-norm clipping (0 = off)')
    max_epochs: int = Field(30, ge=1, description='epochs')
    max_steps: int = Field(-1, ge=-1, description='stop after this many optimiser steps (-1 = no limit)')
    seed: int = Field(66, description='random seed')
    checkpoint_every_n_steps: int = Field(0, ge=0,
        description="also write checkpoints/last.ckpt every this many steps (0 = by time and on signals only; "
                    "docs/training.md)")
    val_every_n_epochs: int = Field(1, ge=1, description='validate every this many epochs')
    epi_err_thr: float = Field(0.0005, gt=0,
        description="epipolar precision threshold (squared normalised symmetric distance)")



class LoFTRRunConfig(LoFTRTrain, LoFTRData):
    """What ``matchforge loftr-train`` parses: a run's training options and its training data."""


class LoFTRRun(LoFTRData):
    """One entry of loftr.runs: its training data, its test sets, the GPUs its jobs ask for, its own options."""

    TRAIN: ClassVar[type[Options]] = LoFTRTrain  # the options its `train:` overrides

    testsets: list[str] = Field(default_factory=lambda: [],
        description="names under loftr.testsets to evaluate this run on")
    gpus: Workers = Field(1, ge=0,
        description="GPUs the training job asks Snakemake for (resources: gpu); runs on CPU when none is present")
    eval_gpus: Workers = Field(1, ge=0, description='GPUs each evaluation job asks for')
    train: dict[str, Any] = Field(default_factory=dict, description="options of loftr.train that differ for this run")


class SiftRatioBaseline(Options):
    """SIFT baseline (mutual NN + Lowe's ratio), matched and scored through the same code as LoFTR."""

    enabled: bool = Field(True, description='evaluate the baseline on every test set used by some run')
    max_keypoints: Count = Field(4096, ge=10, description='SIFT keypoints per image (strongest first)')
    ratio: float = Field(0.8, gt=0, le=1, description='Lowe ratio test threshold (mutual nearest neighbours)')
    img_resize: SidePx | None = Field(None, description="long side (px) SIFT sees; null = the test set's img_resize")



class LoFTRSection(Options):
    """LoFTR training and evaluation: every run is trained by rule loftr_train into results/models/loftr/<run>/ and
    evaluated on each of its test sets (matches in results/eval/matches/loftr/<run>/<testset>.h5, scores in
    results/eval/loftr/<run>/<testset>.json)."""

    train: LoFTRTrain = Field(default_factory=LoFTRTrain, json_schema_extra={"default": {}},
        description="training options of every run (each run overrides some in its own train)")
    runs: dict[str, LoFTRRun] = Field(default_factory=dict,
        description="run name -> its data, test sets and option overrides")
    testsets: dict[str, LoFTRTestset] = Field(default_factory=dict,
        description="test set name -> where its pairs come from")
    baseline: SiftRatioBaseline = Field(default_factory=SiftRatioBaseline, json_schema_extra={"default": {}},
        description="SIFT baseline (mutual NN + Lowe's ratio), matched and scored through the same code as LoFTR "
                    "(results/eval/sift/ratio/<testset>.json)")
