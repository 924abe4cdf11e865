"""The typed config file: the scenes, then one section per stage, each typed by the model beside its code.

Parsed once at planning (:func:`matchforge.config_check.validate_config`); ``SECTIONS`` lists what
``matchforge config-docs`` exports as ``src/matchforge/schemas/<name>.schema.yaml``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping

from pydantic import Field, WithJsonSchema, model_validator

from matchforge.options import Options, extra
from matchforge.dataset.config import DatasetsSection, SceneInfoSection
from matchforge.depth.config import DepthSection
from matchforge.evaluation.config import LocalizationSection
from matchforge.loftr.config import LoFTRSection
from matchforge.posfeat.config import PoSFeatSection
from matchforge.sfm.config import SfMSection
from matchforge.shiftfocal.config import ShiftFocalSection


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
    (:func:`matchforge.config_check.validate_config`), which fills every default; a section left empty takes all
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


# Every section exported as src/matchforge/schemas/<name>.schema.yaml (config: the top level).
SECTIONS: dict[str, Any] = {"config": ConfigFile, "sfm": SfMSection, "depth": DepthSection, "scene_info": SceneInfoSection,
                            "datasets": DatasetsSection, "localization": LocalizationSection, "slurm": SlurmSection,
                            "loftr": LoFTRSection, "posfeat": PoSFeatSection, "shiftfocal": ShiftFocalSection}
