# Shared helpers: config validation, per-scene options, the CLI command, and the default targets.
import os
import sys
from pathlib import Path

from snakemake.utils import validate

from matchforge.conf import scene_conf, to_json
from matchforge.sfm.inputs import find_images
from matchforge.workflow import CONFIG_FILES_ENV, SCHEMA_DIR, config_source, validate_config

from snakemake_interface_executor_plugins.settings import DeploymentMethod

# The matchforge CLI: with --software-deployment-method conda, the `python` of each rule's env
# (envs/*.yaml); otherwise the interpreter that runs Snakemake (no need to activate the venv).
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
MF = "python -m matchforge" if USE_CONDA else f"{sys.executable} -m matchforge"
ENVS = Path(workflow.basedir) / "envs"
SCHEMAS = SCHEMA_DIR  # package data (src/matchforge/schemas)

# jobs name the file(s) a user edits in their messages
os.environ[CONFIG_FILES_ENV] = ", ".join(map(str, workflow.configfiles)) or "config/config.yaml"
# our own concise check first (key path, allowed keys, closest name), then Snakemake's as a second line
validate_config(config, SCHEMAS)  # stage defaults filled in; per-scene overrides checked by name
validate(config, schema=SCHEMAS / "config.schema.yaml")

SCENES = list(config["scenes"])
# single_images scenes have no SfM: only depth (and the shape step) run on them.
SINGLE_SCENES = [s for s in SCENES if config["scenes"][s].get("single_images")]
SFM_SCENES = [s for s in SCENES if s not in SINGLE_SCENES]


def one_of(names):
    """Wildcard regex matching exactly these names (never matching when there are none)."""
    import re

    return "|".join(map(re.escape, names)) if names else "(?!)"


wildcard_constraints:
    scene=one_of(SCENES),


def scene_photos(wc):
    """input: the photo files of the scene (not its folder, whose mtime misses a photo replaced in place),
    so adding, removing or replacing one reruns that scene. A missing folder gives no inputs: the job
    itself then fails with the config key and the fix, and other scenes go on under --keep-going."""
    folder = Path(config["scenes"][wc.scene]["images"])
    return [str(p) for p in find_images(folder)] if folder.is_dir() else []


def scene_images_dir(wc):
    return config["scenes"][wc.scene]["images"]


def stage_params(stage):
    """params: value: the merged options of `stage` for the job's scene, as canonical JSON."""
    return lambda wc: to_json(scene_conf(config, wc.scene, stage))


# Each rules/*.smk registers what `rule all` builds for its stage family: TARGETS[name] = fn() -> list.
TARGETS = {}


def all_targets(wildcards):
    return [path for name in TARGETS for path in TARGETS[name]()]


def cluster_resources():
    """SLURM placement of every rule, from its own resources: jobs whose rule asks for gpu > 0 go to
    the GPU partition, all others to the CPU partition; every job gets the account and asks for SIGUSR1
    ahead of its time limit (training checkpoints on it). Values from config `slurm:` or the
    MATCHFORGE_SLURM_* environment; unset ones are left to the cluster. Called once all rules exist."""
    conf = config["slurm"]
    env = {k: os.environ.get(f"MATCHFORGE_SLURM_{k.upper()}") for k in ("account", "cpu_partition", "gpu_partition")}
    value = {k: conf.get(k) or env[k] for k in env}
    signal = f"--signal=USR1@{conf['warn_signal_seconds']}" if conf["warn_signal_seconds"] else None
    for rule_ in workflow.rules:
        if rule_.resources is None:
            continue
        gpu = rule_.resources.get("gpu")  # a snakemake Resource: a number or a function of the wildcards

        def partition(wildcards, gpu=gpu):
            n = 0 if gpu is None else (gpu.evaluate(wildcards) if gpu.is_evaluable() else gpu).value
            return value["gpu_partition"] if n and n > 0 else value["cpu_partition"]

        if value["cpu_partition"] or value["gpu_partition"]:
            rule_.resources["slurm_partition"] = partition
        if value["account"]:
            rule_.resources["slurm_account"] = value["account"]
        if signal and "slurm_extra" not in rule_.resources:
            rule_.resources["slurm_extra"] = signal
