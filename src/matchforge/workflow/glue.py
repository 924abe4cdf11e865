"""One object with every stage's glue, the default targets, the summary's files and the cluster placement."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, MutableMapping

from matchforge import artifacts as A
from matchforge.conf import CONFIG_ARGS_ENV, CONFIG_FILES_ENV
from matchforge.config_schema import check_references, validate_config
from matchforge.errors import MatchforgeError
from matchforge.summary import KINDS as SUMMARY_KINDS
from matchforge.workflow.base import one_of, present
from matchforge.workflow.loftr import LoFTRGlue
from matchforge.workflow.posfeat import PoSFeatGlue
from matchforge.workflow.scenes import ScenesGlue
from matchforge.workflow.shiftfocal import ShiftFocalGlue

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


class Workflow(ScenesGlue, LoFTRGlue, PoSFeatGlue, ShiftFocalGlue):
    """The glue of every rule file, from one validated config; see the package docstring."""

    def gt_img_resize(self, scene: str) -> int:
        """The size ground-truth matches of ``scene`` are counted at when ``scene_info.gt_img_resize`` is null: the
        smallest training ``img_resize`` of the LoFTR runs whose dataset holds the scene, else of those datasets'
        ``loftr.img_resize``, else 640."""
        datasets = [d for d, spec in self.config["datasets"].items() if scene in spec["scenes"]]
        runs = [self.loftr_options(r)["img_resize"] for r, spec in self.loftr["runs"].items() if spec.get("dataset") in datasets]
        sizes = runs or [self.config["datasets"][d]["loftr"]["img_resize"] for d in datasets]
        return int(min(sizes)) if sizes else 640

    def scene_info_params(self, wc: Any) -> str:
        """params of scene_info: the scene's options, with ``gt_img_resize`` following its training runs when null."""
        from matchforge.conf import to_json

        conf = self.scene_conf(wc.scene, "scene_info")
        if conf["gt_img_resize"] is None:
            conf["gt_img_resize"] = self.gt_img_resize(wc.scene)
        return to_json(conf)

    def names(self) -> dict[str, list[str]]:
        """Wildcard name -> the values it may take (the rules' wildcard constraints)."""
        pf_testsets = list(self.posfeat["testsets"])
        return {
            "scene": self.scenes, "sfm_scene": self.sfm_scenes, "single_scene": self.single_scenes,
            "dataset": self.datasets,
            "run": self.loftr_runs, "testset": self.loftr_testsets + list(self.localization),
            "loftr_testset": self.loftr_testsets, "localization_testset": list(self.localization),
            "pfrun": list(self.pf_runs), "pftestset": pf_testsets + list(self.localization),
            "pf_matched": self.pf_matched, "pf_reconstruction": self.pf_reconstruction,
            "source": list(self.sf_sources), "sfrun": list(self.sf_runs),
        }

    def constraint(self, kind: str) -> str:
        """The regex of wildcard constraint ``kind`` (a key of :meth:`names`)."""
        return one_of(self.names()[kind])

    # --- targets ------------------------------------------------------------------------------------------

    def family_targets(self) -> dict[str, list[str]]:
        """Each stage family's result files: what ``all`` builds and the summary tabulates (from the config,
        never a glob)."""
        return {"sfm": self.sfm_targets(), "depth": self.depth_targets(), "dataset": self.dataset_targets(),
                "loftr": self.loftr_targets(), "posfeat": self.pf_targets(), "shiftfocal": self.sf_targets()}

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
        conf = self.config["slurm"]
        env = {k: os.environ.get(f"MATCHFORGE_SLURM_{k.upper()}") for k in ("account", "cpu_partition", "gpu_partition")}
        value = {k: conf.get(k) or env[k] for k in env}
        value["signal"] = f"--signal=USR1@{conf['warn_signal_seconds']}" if conf["warn_signal_seconds"] else None
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
    parsed once into its typed form (:func:`matchforge.config_schema.validate_config`: defaults from the models,
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
    validate_config(config)
    check_references(config)
    return Workflow(config, checkpoints)
