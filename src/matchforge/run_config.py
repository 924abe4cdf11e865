"""Typed run configurations of the three training families, and the config sections they live in.

One pydantic model per family says every option of a run, its type, bounds and default: this module is the only
place those defaults are written. ``src/matchforge/schemas/{loftr,posfeat,shiftfocal}.schema.yaml``, which the
workflow validates the config against, are exported from these models (``matchforge config-docs``; a test checks
they are current), and so are the option tables of ``config/README.md``.

Every family has the same run shape: the family's ``train`` section holds the training options shared by all its
runs (filled with the defaults here), and each run states what it trains on, what it is evaluated on, and in its
own ``train`` only the options that differ::

    loftr:
      train: {img_resize: 320, num_workers: 0}        # every LoFTR run
      runs:
        ft: {dataset: demo, testsets: [demo_test], train: {init_weights: outdoor}}

A training command parses its options once (:meth:`Options.of`) into the family's run config (:class:`LoFTRRunConfig`,
:class:`PoSFeatRunConfig`, :class:`ShiftFocalTrain`) and passes that object down; nothing below it fills defaults.
"""

from __future__ import annotations

import difflib
from types import UnionType
from typing import Annotated, Any, Callable, ClassVar, Literal, Mapping, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, field_validator, model_validator
from pydantic_core import to_jsonable_python

from matchforge.conf import config_source, normalise_path
from matchforge.errors import MatchforgeError
from matchforge.limits import Batch, Count, SidePx, Width, Workers

T = TypeVar("T", bound="Options")


def extra(path: bool = False, unique: bool = False, unset: bool = False) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` of a field: ``format: path`` (the workflow normalises its spelling), ``uniqueItems``,
    and ``unset``: the exported schema gives no default (the key stays absent from the config; the model reads None)."""

    def edit(schema: dict[str, Any]) -> None:
        if path:
            schema["format"] = "path"
        if unique:
            schema["uniqueItems"] = True
        if unset:
            schema.pop("default", None)

    edit.unset = unset  # type: ignore[attr-defined]
    edit.path = path  # type: ignore[attr-defined]
    return edit


class Options(BaseModel):
    """Options of one section: unknown keys are refused (with the closest name), values are checked once."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=False, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _normalise_paths(cls, data: Any) -> Any:
        """One spelling per location for every path option (:func:`matchforge.conf.normalise_path`), so that editing
        how a path is written never reruns a job."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        for name, info in cls.model_fields.items():
            key = info.alias if info.alias in data else name
            if getattr(info.json_schema_extra, "path", False) and isinstance(data.get(key), str):
                data[key] = normalise_path(data[key])
        return data

    @field_validator("*", mode="wrap")
    @classmethod
    def _ints_as_written(cls, value: Any, handler: Callable[[Any], Any]) -> Any:
        """A whole number given for a float option stays as written (``10``, not ``10.0``): a job's params, and so
        whether Snakemake reruns it, never change with how pydantic stores a number."""
        out = handler(value)
        if type(value) is int and type(out) is float and out == value:
            return value
        return out

    @classmethod
    def of(cls: type[T], conf: "Options | Mapping[str, Any] | None" = None, where: str = "") -> T:
        """``conf`` as this model: returned as is when it already is one (parsed once), else checked with the
        defaults filled in; a problem raises one MatchforgeError naming the key, the closest allowed name and the fix."""
        if isinstance(conf, cls):
            return conf
        if isinstance(conf, Options):
            conf = conf.model_dump(by_alias=True)
        try:
            return cls.model_validate(dict(conf or {}))
        except ValidationError as err:
            raise options_error(err, cls, where) from None

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every option of this model that has a default, as plain options (required options and those the config
        leaves absent when unset are not in it)."""
        out = {}
        for name, info in cls.model_fields.items():
            if info.is_required() or getattr(info.json_schema_extra, "unset", False):
                continue
            value = info.get_default(call_default_factory=True)
            out[info.alias or name] = value.to_dict() if isinstance(value, Options) else to_jsonable_python(value)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able options (config key names), e.g. for a job's params, a run's identity or a model's
        metadata; an option the config leaves absent when unset (see :func:`extra`) is left out when None, at every
        level (sections, and the entries of name -> options mappings)."""
        out = to_jsonable_python(self.model_dump(by_alias=True))  # python mode: numbers as stored (see _ints_as_written)
        for name, info in type(self).model_fields.items():
            key, value = info.alias or name, getattr(self, name)
            if value is None and getattr(info.json_schema_extra, "unset", False):
                out.pop(key, None)
            else:
                out[key] = _plain(value, out[key])
        return out


def _plain(value: Any, dumped: Any) -> Any:
    """``dumped`` (the plain dump of ``value``) with every nested model written by its own :meth:`Options.to_dict`."""
    if isinstance(value, Options):
        return value.to_dict()
    if isinstance(value, RootModel):
        return _plain(value.root, dumped)
    if isinstance(value, Mapping):
        return {k: _plain(v, dumped[k]) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, d) for v, d in zip(value, dumped)]
    return dumped


def options_error(err: ValidationError, model: type[BaseModel], where: str) -> MatchforgeError:
    """One readable error from pydantic's: the key path, what is wrong, the closest allowed name of an unknown key (a
    training option put directly under a run is named as such, with where it belongs)."""
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a misspelt key is also "missing"
    loc = [str(p) for p in first["loc"]]
    key = ".".join([where, *loc] if where else loc) or "(top level)"
    fix = f"edit {config_source()}; options and defaults are listed in config/README.md"
    if first["type"] == "extra_forbidden":
        parent = model_at(model, loc[:-1])
        train = getattr(parent, "TRAIN", None)
        if train is not None and loc[-1] in _keys(train):
            run = key.rsplit(".", 1)[0]
            return MatchforgeError(f"'{key}' is a training option: put it under {run}.train (or under "
                                   f"{run.split('.')[0]}.train for every run)",
                                   fix=f"edit {config_source()}; config/README.md lists each family's options")
        allowed = sorted(_keys(parent)) if parent else []
        match = difflib.get_close_matches(loc[-1], allowed, n=1, cutoff=0.5)
        hint = f" (did you mean '{match[0]}'?)" if match else ""
        message = f"unknown config key '{key}'{hint}; allowed here: {', '.join(allowed)}"
    else:
        message = f"invalid config at {key}: {first['msg']} (got {_short(repr(first.get('input')))})"
    return MatchforgeError(message, fix=fix)


def _short(text: str, limit: int = 200) -> str:
    """One line of at most ``limit`` characters (a value's repr can be as long as the value)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _unwrap(t: Any) -> Any:
    """The type under ``Annotated[...]`` and ``X | None``."""
    while True:
        if get_origin(t) is Annotated:
            t = get_args(t)[0]
        elif get_origin(t) in (Union, UnionType) and type(None) in get_args(t):
            rest = [a for a in get_args(t) if a is not type(None)]
            if len(rest) != 1:
                return t
            t = rest[0]
        else:
            return t


def model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel] | None:
    """The options model at key path ``loc`` below ``model`` (through sections, name -> options mappings and lists;
    any key, e.g. ``"*"``, stands for an entry of a mapping), or None where ``loc`` leads to no model."""
    t: Any = model
    for part in loc:
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, RootModel):
            t = _unwrap(t.model_fields["root"].annotation)
        if isinstance(t, type) and issubclass(t, BaseModel):
            info = next((f for n, f in t.model_fields.items() if part in (n, f.alias)), None)
            if info is None:
                return None
            t = info.annotation
        elif get_origin(t) is dict:
            t = get_args(t)[1]
        elif get_origin(t) is list:
            t = get_args(t)[0]
        else:
            return None
    t = _unwrap(t)
    if isinstance(t, type) and issubclass(t, RootModel):
        t = _unwrap(t.model_fields["root"].annotation)
    return t if isinstance(t, type) and issubclass(t, BaseModel) and not issubclass(t, RootModel) else None


# --- the shared training engine ------------------------------------------------------------------------------


class Engine(Options):
    """How the shared training engine (matchforge.training.engine, Lightning) runs a job: devices, precision,
    checkpoints by time, loggers (docs/training.md). Every family's training options include these."""

    accelerator: Literal['auto', 'cpu', 'gpu', 'cuda'] = Field('auto', description='auto = GPU when available')
    devices: int | str = Field(1,
        description="GPUs per node (DDP when > 1 or num_nodes > 1); -1 = all. Ignored on a machine without GPU unless "
                    "accelerator: cpu is explicit (then DDP over CPU processes)")
    num_nodes: Workers = Field(1, ge=1, description='nodes (SLURM)')
    strategy: str = Field('auto',
        description="Lightning strategy (ddp, ddp_find_unused_parameters_true, ...); auto picks DDP for several GPUs")
    precision: Literal['32-true', '16-mixed', 'bf16-mixed', '64-true'] = Field('32-true',
        description="Lightning precision; bf16-mixed also runs on CPU")
    gradient_clip_val: float | None = Field(None, ge=0, description='clip the gradient norm (null = off)')
    deterministic: bool | Literal['warn'] = Field('warn',
        description="Lightning's deterministic mode (torch.use_deterministic_algorithms): warn = deterministic "
                    "algorithms where PyTorch has them and a warning where it has none, true = fail there, false = off "
                    "(faster cuDNN choices on GPU). Workers and every sampler are seeded either way")
    checkpoint_minutes: float = Field(10, gt=0,
        description="write the resume checkpoint (checkpoints/last.ckpt) every this many minutes of training; always on "
                    "SIGTERM/SIGINT/SIGUSR1")
    logger: Literal['csv', 'tensorboard', 'wandb'] = Field('csv',
        description="training curves: csv only (feeds curve.png and the report), or also TensorBoard (logs/ under the run, "
                    "pip install matchforge[tensorboard]) or Weights & Biases (project matchforge, run name; "
                    "WANDB_MODE=offline works offline; pip install matchforge[wandb])")


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
    num_workers: Workers = Field(4, ge=0,
        description="data-loader worker processes; the job asks for num_workers + 1 CPU threads per training process")
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


class LoFTRTestset(Options):
    kind: Literal['dataset', 'imc', 'megadepth', 'scannet'] = Field(
        description="dataset = a split of a matchforge dataset; imc = any Image Matching Challenge (phototourism) scene "
                    "folder: photos + calibration files + co-visible pairs (Reichstag ships in "
                    "resources/testsets/reichstag); megadepth / scannet = official LoFTR indices with your images")
    dataset: str | None = Field(None, json_schema_extra=extra(unset=True),
        description="kind dataset: name under `datasets:`")
    split: Literal['train', 'val', 'test'] = Field('test', description='kind dataset: split')
    root: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="kind imc: folder with images/, calibration/, new-vis-pairs/")
    vis_threshold: str = Field('0.1', description='kind imc: new-vis-pairs/keys-th-<t>.npy to read')
    npz_root: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="kind megadepth: folder of scene-info .npz files")
    list_: str | None = Field(None, alias="list", json_schema_extra=extra(path=True, unset=True),
        description="kind megadepth: list file of scene-info stems")
    test_npz: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="kind scannet: test.npz of the official index")
    intrinsics_npz: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="kind scannet: intrinsics.npz of the official index")
    data_root: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="kind megadepth/scannet: folder the index's image paths are relative to; the test set is built only if "
                    "it exists")
    img_resize: SidePx | None = Field(640,
        description="long side (px) LoFTR sees (840 for MegaDepth-1500, 640 for ScanNet-1500)")
    pad: bool = Field(True, description='pad images to a square with masks (as the MegaDepth loader)')
    interpolation: Literal['linear', 'area'] = Field('linear',
        description="image resampling when resizing (linear = the official loaders)")
    max_pairs: int | None = Field(None, description='evaluate at most this many pairs (null = all)')
    ransac_thresh: float = Field(0.5, gt=0,
        description="scoring: RANSAC threshold in pixels (the official 0.5; normalised by the mean focal); see ransac_frame")
    ransac_frame: Literal['evaluated', 'original'] = Field('evaluated',
        description="scoring: evaluated = ransac_thresh is in pixels of the images the matcher saw (scaled by the image's "
                    "long side / the matcher's working size); original = in pixels of the frame K refers to, as the "
                    "official LoFTR test code")
    estimator: Literal['opencv', 'poselib'] = Field('opencv',
        description="scoring: relative pose by OpenCV's RANSAC (the official test code) or PoseLib's LO-RANSAC "
                    "(glue-factory; pip install 'matchforge[poselib]')")
    epi_err_thr: float = Field(0.0005, gt=0,
        description="scoring: epipolar precision threshold (squared normalised symmetric distance)")



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


# --- PoSFeat ---------------------------------------------------------------------------------------------------


class PoSFeatModel(Options):
    """The description net (a ResNet trunk and its descriptor head)."""

    arch: Literal['resnet50', 'resnet34', 'resnet18'] = Field('resnet50',
        description="ResNet backbone of the description net (paper: resnet50)")
    desc_dim: Width = Field(128, ge=8, description='descriptor dimension')
    pretrained: str | None = Field(None,
        description="torchvision-named ImageNet weights of the backbone: a local .pth/.safetensors file or folder, or "
                    "hf:<repo> (e.g. hf:timm/resnet50.tv_in1k); null = random init (warned)")


class ColorJitter(Options):
    """Colour-jitter augmentation (kornia ColorJitter factors; all 0 = off)."""

    brightness: float = Field(1.0, ge=0)
    contrast: float = Field(1.0, ge=0)
    saturation: float = Field(1.0, ge=0)
    hue: float = Field(0.4, ge=0, le=0.5)


class PoSFeatData(Options):
    """Training images of the description and detection nets."""

    image_size: list[Annotated[SidePx, Field(ge=32, multiple_of=16)]] = Field(default_factory=lambda: [640, 480], min_length=2, max_length=2,
        description="training size [W, H] (multiples of 16); CAPS images are 640x480")
    rot_thr: float = Field(80.0, ge=0, le=180, description='drop pairs whose relative rotation exceeds this (degrees)')
    min_overlap: float = Field(0.0, ge=0, description='matchforge datasets: keep pairs with overlap > this')
    num_workers: Workers = Field(2, ge=0, description='DataLoader worker processes')
    color_jitter: ColorJitter = Field(default_factory=lambda: ColorJitter(), json_schema_extra={"default": {}},
        description="colour-jitter augmentation (kornia ColorJitter factors; all 0 = off)")


class DescStage(Options):
    """Stage desc: the description net trained with the epipolar loss."""

    steps: int = Field(100000, ge=1, description='training iterations (upstream 10 x 10,000)')
    batch_size: Batch = Field(8, ge=1)
    optimizer: Literal['adam', 'sgd'] = Field('adam', description='upstream repo: Adam 1e-4 (paper: SGD 1e-3)')
    lr: float = Field(0.0001, gt=0)
    momentum: float = Field(0.0, ge=0, description='SGD momentum (upstream: none)')
    lr_step: int = Field(90000, ge=1)
    lr_gamma: float = Field(0.1, gt=0)
    temperature: float = Field(60.0, gt=0, description='softmax temperature on descriptor cosine similarity')
    vis_every: int = Field(1000, ge=1)
    ckpt_every: int = Field(1000, ge=0)
    seed: int = Field(0, description='seed of batch order, query points, jitter and sampling')
    grid_size: Count = Field(16, ge=2,
        description="one random query point per grid_size x grid_size pixel cell, both images")
    line_samples: Count = Field(100, ge=2, description='points sampled along each epipolar line')
    window_size: float = Field(0.1, gt=0, le=1,
        description="half-width of the search window in [-1, 1] image coordinates")
    loc_rand: float = Field(0.707, ge=0, le=1, description='uniform jitter of the window centre, in window half-widths')
    cost_thr: float = Field(0.1, gt=0,
        description="ignore correspondences whose epipolar cost exceeds this fraction of the shorter image side")


class KpStage(Options):
    """Stage kp: the detection net trained with the keypoint reward, descriptors fixed."""

    steps: int = Field(5000, ge=1, description='training iterations (upstream 5 x 1,000)')
    batch_size: Batch = Field(6, ge=1)
    optimizer: Literal['adam', 'sgd'] = Field('sgd')
    lr: float = Field(0.001, gt=0)
    momentum: float = Field(0.0, ge=0, description='SGD momentum (upstream: none)')
    lr_step: int = Field(4000, ge=1)
    lr_gamma: float = Field(0.1, gt=0)
    temperature: float = Field(60.0, gt=0, description='softmax temperature on descriptor cosine similarity')
    vis_every: int = Field(500, ge=1)
    ckpt_every: int = Field(500, ge=0)
    seed: int = Field(0, description='seed of batch order, query points, jitter and sampling')
    cell: int = Field(8, ge=2, description='DISK sampling cell (pixels); image size must be a multiple')
    reward_thr: float = Field(2.0, gt=0,
        description="a match is rewarded when both symmetric epipolar distances are below this (pixels)")
    reward_pos: float = Field(1.0)
    reward_neg: float = Field(-0.25)
    kp_penalty: float = Field(-0.001, description='reward of every accepted keypoint (negative = sparsity pressure)')


class PoSFeatExtract(Options):
    """Feature extraction of a trained run (and the SIFT baseline's keypoint count and size)."""

    max_size: SidePx | None = Field(None, ge=32,
        description="long side (px) images are resized to for extraction; null = full size (HPatches protocol)")
    nms_radius: int = Field(1, ge=0, description='hard NMS radius on the score map')
    thr: float = Field(0.9, description='keep score-map maxima above this')
    num_pts: Count = Field(8192, ge=1, description='at most this many keypoints (top scores)')
    min_pts: Count = Field(128, ge=0, description='at least this many keypoints, even below thr')
    use_sift: bool = Field(False, description='describe OpenCV SIFT keypoints with PoSFeat instead of detecting')


class PoSFeatTrain(Options):
    """Training options of a PoSFeat run (posfeat.train, overridden per run by runs.<run>.train)."""

    model: PoSFeatModel = Field(default_factory=lambda: PoSFeatModel(), json_schema_extra={"default": {}})
    data: PoSFeatData = Field(default_factory=lambda: PoSFeatData(), json_schema_extra={"default": {}})
    desc: DescStage = Field(default_factory=lambda: DescStage(), json_schema_extra={"default": {}})
    kp: KpStage = Field(default_factory=lambda: KpStage(), json_schema_extra={"default": {}})
    trainer: Engine = Field(default_factory=lambda: Engine(), json_schema_extra={"default": {}})
    extract: PoSFeatExtract = Field(default_factory=lambda: PoSFeatExtract(), json_schema_extra={"default": {}})
    init_weights: str | None = Field(None, json_schema_extra=extra(path=True),
        description="start the desc stage from another run's nets: a PoSFeat model.pt, or a run name (its kp/model.pt); "
                    "null = fresh nets (ImageNet backbone from model.pretrained)")


class PoSFeatDevice(Options):
    device: str = Field("auto", description="auto (CUDA when available), cpu, cuda, cuda:N")


class PoSFeatRunConfig(PoSFeatTrain, PoSFeatDevice):
    """What ``matchforge posfeat-train`` parses: a run's training options and the family's device."""


class PoSFeatTestset(Options):
    """A PoSFeat test set: homography pairs, relative pose on a dataset split, or a reconstruction."""

    type: Literal['homography', 'pose', 'reconstruction'] = Field()
    path: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="homography: folder of pairs (HPatches / Oxford / homogr layouts)")
    dataset: str | None = Field(None, json_schema_extra=extra(unset=True), description='pose: a key of datasets:')
    split: Literal['train', 'val', 'test'] | None = Field(None, json_schema_extra=extra(unset=True),
        description="pose: dataset split (default test)")
    max_pairs: int | None = Field(None, ge=1, json_schema_extra=extra(unset=True),
        description="pose: evaluate at most this many pairs")
    min_overlap: float | None = Field(None, ge=0, json_schema_extra=extra(unset=True),
        description="pose: keep pairs with overlap > this (default 0)")
    ransac_thresh: float | None = Field(None, gt=0, json_schema_extra=extra(unset=True),
        description="pose, scoring: RANSAC threshold in pixels (default 0.5, in pixels of the extraction size; see "
                    "loftr.testsets ransac_frame)")
    ransac_frame: Literal['evaluated', 'original'] | None = Field(None, json_schema_extra=extra(unset=True),
        description="pose, scoring: the frame ransac_thresh is in (default evaluated)")
    estimator: Literal['opencv', 'poselib'] | None = Field(None, json_schema_extra=extra(unset=True),
        description="pose, scoring: OpenCV RANSAC (default) or PoseLib LO-RANSAC")
    epi_err_thr: float | None = Field(None, gt=0, json_schema_extra=extra(unset=True),
        description="pose, scoring: epipolar precision threshold (default 5e-4)")
    images: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="reconstruction: folder of images")
    scene: str | None = Field(None, json_schema_extra=extra(unset=True),
        description="reconstruction: a key of scenes: (its undistorted SfM images)")
    eth: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="reconstruction: a dataset folder of the ETH local feature benchmark (images/, database.db with the "
                    "images and cameras, optional match-list.txt), scored in that layout")
    camera_mode: Literal['AUTO', 'SINGLE', 'PER_FOLDER', 'PER_IMAGE'] = Field('AUTO',
        description="reconstruction: COLMAP camera grouping")


class PoSFeatRun(Options):
    """One entry of posfeat.runs: its training data, its test sets, its own options."""

    TRAIN: ClassVar[type[Options]] = PoSFeatTrain  # the options its `train:` overrides

    dataset: str | None = Field(None, description="a key of datasets: (its train split)")
    caps_root: str | None = Field(None, json_schema_extra=extra(path=True),
        description="CAPS MegaDepth 'train' folder (img_cam.txt + pairs.txt per scene)")
    testsets: list[str] = Field(default_factory=list, description="names under posfeat.testsets to evaluate")
    train: dict[str, Any] = Field(default_factory=dict,
        description="options of posfeat.train that differ for this run (section by section)")


class PoSFeatSection(PoSFeatDevice):
    """PoSFeat (docs/posfeat.md): description net (stage desc), detection net (stage kp), feature extraction and
    evaluation. Defaults are the upstream training values; the shipped config/config.yaml shrinks them for a CPU demo."""

    train: PoSFeatTrain = Field(default_factory=lambda: PoSFeatTrain(), json_schema_extra={"default": {}},
        description="training options of every run (each run overrides some in its own train)")
    sift_baseline: bool = Field(True,
        description="also evaluate OpenCV SIFT features (mutual NN, the extraction's num_pts and max_size) on every test "
                    "set a run uses (results/eval/sift/mnn/)")
    testsets: dict[str, PoSFeatTestset] = Field(default_factory=lambda: {"homography": PoSFeatTestset(type="homography", path="resources/testsets/homography")}, json_schema_extra={"default": {"homography": {"type": "homography", "path": "resources/testsets/homography"}}},
        description="named test sets: {type: homography, path}, {type: pose, dataset: <datasets key>, split, max_pairs, "
                    "ransac_thresh}, {type: reconstruction, images: DIR or scene: <scenes key>}")
    runs: dict[str, PoSFeatRun] = Field(default_factory=dict,
        description="training runs: results/models/posfeat/<run>/{desc,kp}/model.pt and "
                    "results/eval/posfeat/<run>/<testset>.json")


# --- shift/focal -----------------------------------------------------------------------------------------------


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


# The config sections exported as src/matchforge/schemas/<name>.schema.yaml.
SECTIONS: dict[str, type[Options]] = {"loftr": LoFTRSection, "posfeat": PoSFeatSection, "shiftfocal": ShiftFocalSection}
