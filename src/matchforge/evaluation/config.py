"""Options of every test set: each family's test sets as one tagged union on ``type`` (LoFTR: dataset, imc, megadepth,
scannet; PoSFeat: homography, pose, reconstruction), the localization test sets (section ``localization``), and what
an evaluation job parses (:func:`testset_of`)."""

from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import Field, RootModel, ValidationError, model_validator

from matchforge.options import Options, extra, options_error, tagged
from matchforge.limits import Count, SidePx


class LocalizationTestset(Options):
    """A localization test set: the user's own scene (type dataset) or a folder in the Aachen v1.1 layout (type aachen)."""

    type: Literal['dataset', 'aachen'] = Field(
        description="dataset = your own scene: the training photos of a single-scene dataset are the database, its test "
                    "photos the queries; aachen = a folder in the Aachen Day-Night v1.1 layout")
    dataset: str | None = Field(None, json_schema_extra=extra(unset=True),
        description="type dataset: a key of datasets: with one scene split by images (viewpoint)")
    aachen: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="type aachen: an Aachen Day-Night v1.1 root (3D-models/aachen_v_1_1, "
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

    @model_validator(mode="after")
    def _source(self) -> "LocalizationTestset":
        if self.type == "aachen" and (self.aachen is None or self.query_pairs is None):
            raise ValueError("type aachen needs aachen and query_pairs")
        if self.type == "dataset" and self.dataset is None:
            raise ValueError("type dataset needs dataset")
        if self.type == "localization" and self.dataset is None and self.aachen is None:
            raise ValueError("a localization job needs dataset or aachen")
        return self


class LocalizationJob(LocalizationTestset):
    """What a localization job reads: a localization test set with the workflow's paths (``dataset``: the dataset.json,
    ``sfm``: the scene's SfM folder, ``query_pairs``: the retrieved pairs) and the scene's ``metres_per_unit``."""

    type: Literal['localization'] = Field(description="localization (either source)")
    sfm: str | None = Field(None, json_schema_extra=extra(path=True, unset=True), description="the scene's SfM folder")
    metres_per_unit: float | None = Field(None, gt=0, description="the scene's metres per SfM unit (null: unknown)")


class LocalizationSection(Options):
    """Visual localization, as hloc runs Aachen Day-Night (docs/evaluation.md). On the user's own scene (dataset:), the
    training photos of a single-scene dataset are the database (SfM poses held fixed), its test photos the queries; on
    a folder in the Aachen v1.1 layout (aachen:), its model, queries and pair lists, and the result holds the
    benchmark's submission file. Every LoFTR run, the SIFT baseline (loftr.baseline) and every PoSFeat run is
    evaluated on every test set here, into results/eval/<family>/<run>/<testset>.json."""

    testsets: dict[str, LocalizationTestset] = Field(default_factory=dict,
        description="name -> a localization test set (names must differ from loftr.testsets and posfeat.testsets)")


# --- test sets: one tagged union per family on `type` ---------------------------------------------------------


class PoseScoring(Options):
    """How stored matches of a relative-pose test set are scored: editing these rescores, it never rematches."""

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


class PosePairs(PoseScoring):
    """What every LoFTR test set shares: the size the matcher sees, how images are resized, how many pairs."""

    img_resize: SidePx | None | Literal['run'] = Field('run',
        description="long side (px) LoFTR sees (840 for MegaDepth-1500, 640 for ScanNet-1500); run = the evaluated run's "
                    "training img_resize (the SIFT baseline: the smallest of the runs evaluated on the test set); null = "
                    "the images' own size")
    pad: bool = Field(True, description='pad images to a square with masks (as the MegaDepth loader)')
    interpolation: Literal['linear', 'area'] = Field('linear',
        description="image resampling when resizing (linear = the official loaders)")
    max_pairs: int | None = Field(None, description='evaluate at most this many pairs (null = all)')


class DatasetTestset(PosePairs):
    """type dataset: a split of a matchforge dataset (results/datasets/<dataset>/dataset.json)."""

    type: Literal['dataset'] = Field(description="a split of a matchforge dataset")
    dataset: str = Field(description="name under `datasets:`")
    split: Literal['train', 'val', 'test'] = Field('test', description='the split to evaluate')


class ImcTestset(PosePairs):
    """type imc: any Image Matching Challenge (phototourism) scene folder: photos, calibration files and co-visible
    pairs (Reichstag ships in resources/testsets/reichstag)."""

    type: Literal['imc'] = Field(description="an Image Matching Challenge scene folder")
    root: str = Field(json_schema_extra=extra(path=True),
        description="folder with images/, calibration/, new-vis-pairs/")
    vis_threshold: str = Field('0.1', description='new-vis-pairs/keys-th-<t>.npy to read')


class MegaDepthTestset(PosePairs):
    """type megadepth: LoFTR's official MegaDepth index (MegaDepth-1500) with your images."""

    type: Literal['megadepth'] = Field(description="LoFTR's MegaDepth test index")
    npz_root: str = Field(json_schema_extra=extra(path=True), description="folder of scene-info .npz files")
    list_: str = Field(alias="list", json_schema_extra=extra(path=True), description="list file of scene-info stems")
    data_root: str = Field(json_schema_extra=extra(path=True),
        description="folder the index's image paths are relative to; the test set is evaluated only if it exists")


class ScanNetTestset(PosePairs):
    """type scannet: LoFTR's official ScanNet index (ScanNet-1500) with your frames."""

    type: Literal['scannet'] = Field(description="LoFTR's ScanNet test index")
    test_npz: str = Field(json_schema_extra=extra(path=True), description="test.npz of the official index")
    intrinsics_npz: str = Field(json_schema_extra=extra(path=True), description="intrinsics.npz of the official index")
    data_root: str = Field(json_schema_extra=extra(path=True),
        description="folder the index's image paths are relative to; the test set is evaluated only if it exists")


class HomographyTestset(Options):
    """type homography: image pairs related by a known homography."""

    type: Literal['homography'] = Field(description="pairs with a known homography")
    path: str = Field(json_schema_extra=extra(path=True), description="folder of pairs (HPatches / Oxford / homogr layouts)")


class PoseTestset(PoseScoring):
    """type pose: relative pose on a split of a matchforge dataset, from extracted features."""

    type: Literal['pose'] = Field(description="relative pose on a dataset split")
    dataset: str = Field(description="a key of datasets: (the workflow passes its dataset.json)")
    split: Literal['train', 'val', 'test'] = Field('test', description="the split to evaluate")
    max_pairs: int | None = Field(None, ge=1, json_schema_extra=extra(unset=True),
        description="evaluate at most this many pairs")
    min_overlap: float = Field(0.0, ge=0, description="keep pairs with overlap above this")


class ReconstructionTestset(Options):
    """type reconstruction: a COLMAP reconstruction from the features (one of images, scene, eth)."""

    type: Literal['reconstruction'] = Field(description="a reconstruction from the features")
    images: str | None = Field(None, json_schema_extra=extra(path=True, unset=True), description="folder of images")
    scene: str | None = Field(None, json_schema_extra=extra(unset=True),
        description="a key of scenes: (its undistorted SfM images and cameras)")
    eth: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="a dataset folder of the ETH local feature benchmark (images/, database.db with the images and "
                    "cameras, optional match-list.txt), scored in that layout")
    sparse: str | None = Field(None, json_schema_extra=extra(path=True, unset=True),
        description="with images: the undistorted COLMAP model whose cameras they have (the workflow sets it for scene:)")
    camera_mode: Literal['AUTO', 'SINGLE', 'PER_FOLDER', 'PER_IMAGE'] = Field('AUTO',
        description="COLMAP camera grouping")

    @model_validator(mode="after")
    def _one_source(self) -> "ReconstructionTestset":
        if sum(v is not None for v in (self.images, self.scene, self.eth)) != 1:
            raise ValueError("give one of images, scene and eth")
        return self


LoFTRTestset = tagged(DatasetTestset, ImcTestset, MegaDepthTestset, ScanNetTestset)
PoSFeatTestset = tagged(HomographyTestset, PoseTestset, ReconstructionTestset)


class _JobTestset(RootModel[tagged(DatasetTestset, ImcTestset, MegaDepthTestset, ScanNetTestset, HomographyTestset,
                                   PoseTestset, ReconstructionTestset, LocalizationJob)]):
    """Any test set an evaluation job is given."""


def testset_of(conf: Options | Mapping[str, Any], where: str = "--testset") -> Options:
    """An evaluation job's test set (``--testset`` JSON, or an entry of the config) as its typed model, every default
    filled in; a problem raises one MatchforgeError naming the key."""
    if isinstance(conf, Options):
        return conf
    try:
        return _JobTestset.model_validate(dict(conf)).root
    except ValidationError as err:
        raise options_error(err, _JobTestset, where) from None
