"""Shift/focal options: data generation sources, training, evaluation and runs."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from matchforge.options import Options, extra
from matchforge.limits import Batch, Count, SidePx, Width
from matchforge.training.config import Engine


class ShiftFocalTrain(Engine):
    """Training options of a shift/focal run (shiftfocal.train, overridden per run by runs.<run>.train); what
    ``matchforge shiftfocal-train`` parses."""

    targets: list[Literal['focal', 'shift', 'scale']] = Field(default_factory=lambda: ['focal', 'shift'], min_length=1, json_schema_extra=extra(unique=True),
        description="one network per target; recovery needs focal and shift; scale needs metric sources")
    steps: int = Field(2000, ge=1, description='optimiser steps per target')
    batch_size: Batch = Field(4, ge=1, description='point clouds per step')
    lr: float = Field(0.001, gt=0, description='initial learning rate')
    min_lr_ratio: float = Field(0.01, ge=0, le=1, description='final lr = lr * min_lr_ratio')
    schedule: Literal['cosine', 'linear', 'constant'] = Field('cosine', description='learning-rate decay over `steps`')
    optimizer: Literal['adamw', 'sgd'] = Field('adamw',
        description="sgd uses momentum 0.9 (LeReS-era recipes used SGD)")
    weight_decay: float = Field(0.0001, ge=0)
    num_points: Count = Field(20000, ge=16, description='points sampled per cloud (valid pixels, random per step)')
    resolution: int = Field(64, ge=16, le=512, multiple_of=16,
        description="voxels per axis of the dense grid (64 on CPU, 96-128 on GPU)")
    channels: list[Annotated[Width, Field(ge=1)]] = Field(default_factory=lambda: [32, 32, 64, 128, 256], min_length=5, max_length=5,
        description="stem and 4 stage widths (SPVCNN: 32, 32, 64, 128, 256)")
    norm: Literal['group', 'batch'] = Field('group',
        description="GroupNorm (same in training and inference; small batches) or BatchNorm (as SPVCNN)")
    focal_channels: Literal[3, 5] = Field(5,
        description="focal net input: 3 = x,y,z; 5 = x,y,z,(u-u0)/f,(v-v0)/f (LeReS)")
    shift_channels: Literal[3, 5] = Field(3, description='shift net input channels (LeReS: 3)')
    focal_with_shift: bool = Field(True,
        description="the focal net also sees shift-distorted clouds (it runs before the shift net at inference)")
    scale_unit: float = Field(10.0, gt=0, description='scale target = p98(depth in metres) / scale_unit')
    val_fraction: float = Field(0.1, ge=0, le=0.9,
        description="share of the training items used for validation (fixed distortions)")
    val_every: int = Field(100, ge=1, description='validate every N steps (the best model is kept)')
    checkpoint_every: int = Field(200, ge=0,
        description="also write the resume checkpoint <run>/<target>/checkpoints/last.ckpt every N steps (0 = by time and "
                    "on signals only; docs/training.md)")
    seed: int = Field(0)
    init_weights: str | None = Field(None, json_schema_extra=extra(path=True),
        description="start each net from another run: its folder (results/models/shiftfocal/<run>, holding <target>.pt) or "
                    "a run name")


class ShiftFocalData(Options):
    """data generation options common to all sources"""

    max_side: SidePx | None = Field(640, ge=16,
        description="downscale depth maps (nearest) so the long side is at most this (px); null keeps the size")
    min_valid: float = Field(0.2, ge=0, le=1, description='skip items with a smaller share of valid depth pixels')
    holdout: float = Field(0.25, ge=0, le=0.9,
        description="share of each source's items held out (split 'test') for evaluation")
    seed: int = Field(0, description='seed of the train/test split')


class ShiftFocalSource(Options):
    """Where a source's depth and cameras come from."""

    type: Literal['scannet', 'kenburns', 'taskonomy', 'tum', 'middlebury', 'matchforge'] = Field(
        description="reader: ScanNet .sens, 3D Ken Burns exr+json, Taskonomy png+json, TUM RGB-D folder, Middlebury 2014 "
                    "scene, or a matchforge scene's aligned depth")
    path: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="dataset root or folder (every type but matchforge)")
    scene: str | None = Field(None, json_schema_extra=extra(unset=True),
        description="matchforge: a key of `scenes:` (uses results/{scene}/depth/h5 and sfm/sparse)")
    max_items: int | None = Field(None, ge=1,
        description="items to sample, spread evenly over scenes and frames (null = all)")
    intrinsics: list[float] | None = Field(None, min_length=4, max_length=4,
        description="tum: [fx, fy, cx, cy] for all frames (default: parse INTRINSICS.txt in the folder)")
    calib: dict[str, Any] | None = Field(None,
        description="middlebury: {f, cx, cy, doffs, baseline_m} instead of calib.txt")
    depth_unit: float = Field(0.001, gt=0, description='kenburns: metres per EXR unit')
    max_side: SidePx | None = Field(None, ge=16, json_schema_extra=extra(unset=True),
        description="overrides shiftfocal.data.max_side for this source")
    min_valid: float | None = Field(None, ge=0, le=1, json_schema_extra=extra(unset=True),
        description="overrides shiftfocal.data.min_valid (sparse SfM depth needs a low value)")
    holdout: float | None = Field(None, ge=0, le=0.9, json_schema_extra=extra(unset=True),
        description="overrides shiftfocal.data.holdout (0: every item trains)")


class ShiftFocalEval(Options):
    """Evaluation of a run on held-out items (LeReS's recovery)."""

    num_points: Count = Field(20000, ge=16, description='points per cloud at inference')
    max_shift: float = Field(0.6, description='LeReS clamps the predicted shift to at most 0.6')
    fov_deg: float = Field(60.0, gt=0, lt=180, description='initial vertical field of view (LeReS: 60)')
    alpha_range: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [0.5, 1.5], min_length=2, max_length=2,
        description="clamp of each predicted focal ratio (training samples [0.6, 1.25])")
    max_items: int | None = Field(None, ge=1, description='evaluate at most this many test items')
    seed: int = Field(0, description='seed of the simulated shift per item')


class ShiftFocalRun(Options):
    """One entry of shiftfocal.runs: the sources it trains on, those it is evaluated on, its own options."""

    TRAIN: ClassVar[type[Options]] = ShiftFocalTrain  # the options its `train:` overrides

    sources: list[str] = Field(min_length=1, description="names under shiftfocal.sources ('train' items are used)")
    testsets: list[str] = Field(default_factory=list,
        description="names under shiftfocal.sources ('test' items are evaluated)")
    train: dict[str, Any] = Field(default_factory=dict,
        description="options of shiftfocal.train that differ for this run")


class ShiftFocalSection(Options):
    """Shift/focal point-cloud model (LeReS PCM): data generation from RGB-D sources and matchforge scenes, training of
    the focal and shift networks per run, evaluation on held-out items."""

    data: ShiftFocalData = Field(default_factory=lambda: ShiftFocalData(), json_schema_extra={"default": {}})
    sources: dict[str, ShiftFocalSource] = Field(default_factory=dict,
        description="source name -> where its depth and cameras come from")
    train: ShiftFocalTrain = Field(default_factory=lambda: ShiftFocalTrain(), json_schema_extra={"default": {}},
        description="training options of every run (each run overrides some in its own train)")
    runs: dict[str, ShiftFocalRun] = Field(default_factory=dict,
        description="run name -> sources to train on, testsets to evaluate on, training overrides")
    eval: ShiftFocalEval = Field(default_factory=lambda: ShiftFocalEval(), json_schema_extra={"default": {}})
