"""PoSFeat's options: the networks, the two training stages, extraction, test sets and runs."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from matchforge.options import Options, extra
from matchforge.limits import Batch, Count, SidePx, Width, Workers
from matchforge.evaluation.config import HomographyTestset, PoSFeatTestset
from matchforge.training.config import Engine


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


class ExtractJob(PoSFeatExtract, PoSFeatDevice):
    """What ``matchforge extract`` parses: the extraction options, the device, and whose features."""

    method: Literal['posfeat', 'sift'] = Field('posfeat',
        description="posfeat = a trained run's detector and descriptor (needs --model); sift = OpenCV SIFT (the baseline)")


class PoSFeatRunConfig(PoSFeatTrain, PoSFeatDevice):
    """What ``matchforge posfeat-train`` parses: a run's training options and the family's device."""


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
    testsets: dict[str, PoSFeatTestset] = Field(default_factory=lambda: {"homography": HomographyTestset(type="homography", path="resources/testsets/homography")}, json_schema_extra={"default": {"homography": {"type": "homography", "path": "resources/testsets/homography"}}},
        description="named test sets: {type: homography, path}, {type: pose, dataset: <datasets key>, split, max_pairs, "
                    "ransac_thresh}, {type: reconstruction, images: DIR or scene: <scenes key>}")
    runs: dict[str, PoSFeatRun] = Field(default_factory=dict,
        description="training runs: results/models/posfeat/<run>/{desc,kp}/model.pt and "
                    "results/eval/posfeat/<run>/<testset>.json")
