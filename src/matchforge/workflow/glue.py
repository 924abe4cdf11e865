"""The :class:`Workflow` every rule file uses: the parsed config, the scene-level helpers, one part per stage and model
family (``wf.sfm``, ``wf.depth``, ``wf.dataset``, ``wf.localization``, ``wf.loftr``, ``wf.posfeat``,
``wf.shiftfocal``; each part lives beside its code, e.g. :mod:`matchforge.loftr.glue`), the default targets, the
summary's files and the cluster placement."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, MutableMapping

from matchforge.conf import CONFIG_ARGS_ENV, CONFIG_FILES_ENV, scene_conf, to_json
from matchforge.config_file import ConfigFile
from matchforge.config_check import check_references, validate_config
from matchforge.dataset.glue import DatasetGlue
from matchforge.depth.glue import DepthGlue
from matchforge.errors import MatchforgeError
from matchforge.evaluation.glue import LocalizationGlue
from matchforge.job_resources import estimate
from matchforge.loftr.glue import LoFTRGlue
from matchforge.posfeat.glue import PoSFeatGlue
from matchforge.sfm.glue import SfMGlue
from matchforge.sfm.inputs import photo_signature
from matchforge.shiftfocal.glue import ShiftFocalGlue
from matchforge.summary import KINDS as SUMMARY_KINDS
from matchforge import artifacts as A
from matchforge.workflow.base import PHOTO_CACHE, one_of, present

__all__ = ["Workflow", "command_on_path", "one_of", "prepare", "present"]

# workflow/report/<caption>.rst of a summary kind when it is not named after the kind
SUMMARY_CAPTIONS = {"shape": "shape_eval"}
# The order of the default targets: stage families as the rules include them.
FAMILIES = ("sfm", "depth", "dataset", "loftr", "posfeat", "shiftfocal")


def command_on_path(python: str = sys.executable) -> None:
    """Put the ``matchforge`` command installed beside the Python that runs Snakemake first on PATH (so its venv
    needs no activation; with --software-deployment-method conda each rule's env has its own). Without such a
    command planning stops here, with the fix."""
    os.environ["PATH"] = f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    if shutil.which("matchforge") is None:
        raise MatchforgeError(f"no `matchforge` command beside {python} or on PATH",
                              fix="install the package into the Python that runs Snakemake (pip install -e . in "
                                  "the repository)")


class Workflow:
    """The glue of every rule file, from one validated config; see the package docstring."""

    def __init__(self, config: Mapping[str, Any], checkpoints: Any = None, typed: ConfigFile | None = None) -> None:
        """``config``: the plain options of the parsed config (:func:`prepare`); ``typed``: the parsed form itself
        (parsed here when not given)."""
        self.config = config
        self.typed = typed if typed is not None else ConfigFile.of(config)
        self.checkpoints = checkpoints
        self.scenes: list[str] = list(self.typed.scenes)
        # single_images scenes have no SfM: only depth (and the shape step) run on them.
        self.single_scenes = [s for s, entry in self.typed.scenes.items() if entry.single_images]
        self.sfm_scenes = [s for s in self.scenes if s not in self.single_scenes]
        self.datasets = list(self.typed.datasets.root)
        self._photo_signatures: dict[str, tuple[str, int]] = {}
        self.sfm = SfMGlue(self)
        self.depth = DepthGlue(self)
        self.dataset = DatasetGlue(self)
        self.localization = LocalizationGlue(self)
        self.loftr = LoFTRGlue(self)
        self.posfeat = PoSFeatGlue(self)
        self.shiftfocal = ShiftFocalGlue(self)

    # --- paths derived from a job's files (Snakemake's lint: no hard-coded prefix of an input or output) ---------

    @staticmethod
    def output_folder(name: str, up: int = 1):
        """params: the folder ``up`` levels above the job's output ``name``."""
        return lambda wc, output: str(Path(output[name]).parents[up - 1])

    @staticmethod
    def input_folder(name: str):
        """params: the folder of the job's input ``name``."""
        return lambda wc, input: str(Path(input[name]).parent)

    @staticmethod
    def output_stem(name: str):
        """params: the job's output ``name`` without its suffix (the prefix of its sibling files)."""
        return lambda wc, output: str(Path(output[name]).with_suffix(""))

    @staticmethod
    def write_dataset_inputs(output: Any, params: Any, log: str) -> None:
        """The run: block of rule dataset_inputs: the scene listing and the options as files, and a line saying so in
        the log. (A method of the workflow, not of ``wf.dataset``: Snakemake reruns a run: rule whose code changes, and
        with it every dataset and training downstream.)"""
        Path(output.scenes).write_text(params.scenes)
        Path(output.conf).write_text(params.conf)
        Path(log).write_text(f"{output.scenes}: {params.scenes.count('scene_info')} scenes; {output.conf}\n")

    # --- per-scene options and photos -------------------------------------------------------------------

    def photos(self, scene: str) -> tuple[str, int]:
        """(digest, count) of a scene's photos, read once per Snakemake call (params and resources both need it)."""
        if scene not in self._photo_signatures:
            self._photo_signatures[scene] = photo_signature(self.config["scenes"][scene]["images"],
                                                            PHOTO_CACHE / f"{scene}.json")
        return self._photo_signatures[scene]

    def scene_photos(self, wc: Any) -> str:
        """params: a digest of the names and contents of the scene's photos (sfm.inputs.photo_signature), so that
        adding, removing or replacing one reruns that scene, whatever the new file's timestamp. A missing folder
        gives "missing": the job itself then fails with the config key and the fix, and other scenes go on."""
        return self.photos(wc.scene)[0]

    def scene_images_dir(self, wc: Any) -> str:
        return self.config["scenes"][wc.scene]["images"]

    def scene_conf(self, scene: str, stage: str) -> dict[str, Any]:
        """``stage``'s options for ``scene``: the section with the scene's overrides on top."""
        return scene_conf(self.config, scene, stage)

    def stage_params(self, stage: str):
        """params: the merged options of ``stage`` for the job's scene, as canonical JSON."""
        return lambda wc: to_json(self.scene_conf(wc.scene, stage))

    def scene_resources(self, stage: str, key: str):
        """resources: ``key`` (runtime in minutes, mem_mb) of the scene's ``stage`` job: the scene's own
        ``resources.<stage>.<key>`` when set, else the estimate from its photo count (matchforge.job_resources)."""

        def value(wc: Any) -> Any:
            own = getattr((self.typed.scenes[wc.scene].resources or {}).get(stage), key, None)
            if own is not None:
                return own
            backend = self.scene_conf(wc.scene, "depth")["backend"]
            return estimate(stage, self.photos(wc.scene)[1], self.scene_conf(wc.scene, "sfm"), backend)[key]

        return value

    def names(self) -> dict[str, list[str]]:
        """Wildcard name -> the values it may take (the rules' wildcard constraints)."""
        localization = list(self.localization.testsets)
        return {
            "scene": self.scenes, "sfm_scene": self.sfm_scenes, "single_scene": self.single_scenes,
            "dataset": self.datasets,
            "run": self.loftr.runs, "testset": self.loftr.testsets + localization,
            "loftr_testset": self.loftr.testsets, "localization_testset": localization,
            "posfeat_run": list(self.posfeat.runs), "posfeat_testset": list(self.posfeat.section.testsets) + localization,
            "posfeat_matched": self.posfeat.matched, "posfeat_reconstruction": self.posfeat.reconstruction,
            "source": list(self.shiftfocal.sources), "shiftfocal_run": list(self.shiftfocal.runs),
        }

    def constraint(self, kind: str) -> str:
        """The regex of wildcard constraint ``kind`` (a key of :meth:`names`)."""
        return one_of(self.names()[kind])

    # --- targets ------------------------------------------------------------------------------------------

    def family_targets(self) -> dict[str, list[str]]:
        """Each stage family's result files: what ``all`` builds and the summary tabulates (from the config,
        never a glob)."""
        parts = (self.sfm, self.depth, self.dataset, self.loftr, self.posfeat, self.shiftfocal)
        return {family: part.targets() for family, part in zip(FAMILIES, parts)}

    def summary_inputs(self, wildcards: Any = None) -> list[str]:
        """What the summary tabulates: every configured stage's result files."""
        return [path for paths in self.family_targets().values() for path in paths]

    @staticmethod
    def summary_files() -> dict[str, str]:
        """Output name -> path of the summary's tables and figures (one of each per kind of result)."""
        files = {"csv": A.SUMMARY_TABLE, "png": A.SUMMARY_FIGURE}
        return {f"{kind}_{ext}": files[ext].of(kind=kind) for kind in SUMMARY_KINDS for ext in files}

    @staticmethod
    def summary_caption(name: str) -> str:
        """The report caption of a summary output (``relpose_csv`` -> ../workflow/report/relpose.rst)."""
        kind = name.rsplit("_", 1)[0]
        return f"../workflow/report/{SUMMARY_CAPTIONS.get(kind, kind)}.rst"

    def summary_outputs(self, report: Callable[..., Any]) -> dict[str, Any]:
        """The summary rule's outputs, each flagged for the report's Summary section with Snakemake's ``report``."""
        return {name: report(path, category="Summary", caption=self.summary_caption(name))
                for name, path in self.summary_files().items()}

    def all_targets(self, wildcards: Any = None) -> list[str]:
        """The default target: every stage's results and the summary."""
        return self.summary_inputs() + [A.SUMMARY_SCENES, *self.summary_files().values()]

    # --- cluster ------------------------------------------------------------------------------------------

    def slurm_placement(self) -> dict[str, str | None]:
        """account, cpu_partition, gpu_partition (config ``slurm:`` first, then MATCHFORGE_SLURM_*; None = the
        cluster's default) and the --signal argument that asks for SIGUSR1 ahead of a job's time limit."""
        conf = self.typed.slurm
        env = {k: os.environ.get(f"MATCHFORGE_SLURM_{k.upper()}") for k in ("account", "cpu_partition", "gpu_partition")}
        value = {k: getattr(conf, k) or env[k] for k in env}
        value["signal"] = f"--signal=USR1@{conf.warn_signal_seconds}" if conf.warn_signal_seconds else None
        return value

    def cluster_resources(self, rules: Iterable[Any]) -> None:
        """SLURM placement of every rule, from its own resources: jobs whose rule asks for gpu > 0 go to the GPU
        partition, all others to the CPU partition; every job gets the account and asks for SIGUSR1 ahead of its
        time limit (training checkpoints on it). Called once all rules exist, with Snakemake's ``workflow.rules``."""
        value = self.slurm_placement()
        for rule_ in rules:
            if rule_.resources is None:
                continue
            gpu = rule_.resources.get("gpu")  # a snakemake Resource: a number or a function of the wildcards

            def partition(wildcards: Any, gpu: Any = gpu) -> str | None:
                n = 0 if gpu is None else (gpu.evaluate(wildcards) if gpu.is_evaluable() else gpu).value
                return value["gpu_partition"] if n and n > 0 else value["cpu_partition"]

            if value["cpu_partition"] or value["gpu_partition"]:
                rule_.resources["slurm_partition"] = partition
            if value["account"]:
                rule_.resources["slurm_account"] = value["account"]
            if value["signal"] and "slurm_extra" not in rule_.resources:
                rule_.resources["slurm_extra"] = value["signal"]


def prepare(config: MutableMapping[str, Any], configfiles: Iterable[Any] = (), checkpoints: Any = None,
            settings: Any = None) -> Workflow:
    """The workflow of Snakemake's ``config``: the ``matchforge`` command on PATH, the config file names for the
    jobs' messages (``settings``, Snakemake's config settings: with ``--replace-workflow-config`` only the files
    given on the command line are in use) and the arguments that select them for suggested commands, the config
    parsed once into its typed form (:func:`matchforge.config_check.validate_config`: defaults from the models,
    unknown keys with the closest name, names) and its cross-references checked; the first
    problem raises one MatchforgeError."""
    command_on_path()
    given = [str(f) for f in getattr(settings, "configfiles", None) or []]
    replaced = bool(getattr(settings, "replace_workflow_config", False))
    in_use = given if replaced and given else [str(f) for f in configfiles]
    os.environ[CONFIG_FILES_ENV] = ", ".join(in_use) or "config/config.yaml"
    os.environ[CONFIG_ARGS_ENV] = (" ".join(["--configfile", *map(shlex.quote, given)] + (["--replace-workflow-config"]
                                                                                        if replaced else []))
                                   if given else "")
    typed = validate_config(config)
    check_references(config)
    return Workflow(config, checkpoints, typed)
