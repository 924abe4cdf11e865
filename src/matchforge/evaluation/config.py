"""Options of the localization test sets (section ``localization``)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from matchforge.options import Options, extra
from matchforge.limits import Count, SidePx


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
