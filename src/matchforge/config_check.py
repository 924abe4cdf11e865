"""The config as the workflow reads it: parsed once at planning into its typed form
(:class:`matchforge.config_file.ConfigFile`, whose models hold every default, bound and description), then the checks
no single model can make (names, sizes, cross-references).

Per-scene overrides (``scenes.<name>.X``) are merged over section ``X`` and parsed by the same model, so a typo in one
scene's options fails with that scene's name in the message. The schema files under ``src/matchforge/schemas/`` are
generated from the models (``matchforge config-docs``) as documentation; nothing reads them while the workflow
runs.
"""

from __future__ import annotations

import difflib
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, MutableMapping

from matchforge.conf import config_source, deep_merge
from matchforge.errors import MatchforgeError
from matchforge.limits import MAX_CONFIG_DEPTH, MAX_CONFIG_NODES, MAX_NAME

if TYPE_CHECKING:
    from matchforge.config_file import ConfigFile

# The schemas are package data, so a wheel or a non-editable install finds them too.
SCHEMA_DIR = Path(str(resources.files("matchforge") / "schemas"))
# Stages whose options a scene may override.
SCENE_STAGES = ("sfm", "depth", "scene_info")


def require_config_path(path: str | Path, key: str, what: str, expect: str = "", scene: str | None = None) -> Path:
    """``path`` (named by config key ``key``) when it exists; else one MatchforgeError naming the key, the file
    and what to put there. Jobs call this for user-given paths, which the workflow leaves out of their
    inputs when missing so that only the jobs that need them fail."""
    path = Path(path)
    if not path.exists():
        raise MatchforgeError(f"{what} not found (config key {key})", scene=scene, path=path,
                              fix=f"set {key} in {config_source()} to {expect or 'an existing path'}")
    return path


def _closest(name: str, allowed: list[str]) -> str:
    match = difflib.get_close_matches(name, allowed, n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Every key the workflow turns into a wildcard and a folder under results/: one name rule for all.
NAMED = ("scenes", "datasets", "loftr.runs", "loftr.testsets", "posfeat.runs", "posfeat.testsets", "shiftfocal.runs",
         "shiftfocal.sources", "localization.testsets")


def check_size(config: Any) -> None:
    """The config as YAML expands it holds at most :data:`MAX_CONFIG_NODES` values nested at most
    :data:`MAX_CONFIG_DEPTH` deep. YAML aliases (``*name``) share one object, so a few lines can stand for billions of
    values ("billion laughs"): the walk counts each use and stops at the limit, before anything copies or prints the
    config."""
    seen = 0
    stack: list[tuple[Any, str, int]] = [(config, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        seen += 1
        if seen > MAX_CONFIG_NODES or depth > MAX_CONFIG_DEPTH:
            what = (f"more than {MAX_CONFIG_NODES} values" if seen > MAX_CONFIG_NODES
                    else f"values nested more than {MAX_CONFIG_DEPTH} deep")
            raise MatchforgeError(
                f"the config holds {what} (at {where.split('[')[0] or 'the top level'}); YAML aliases (*name) count at each use",
                fix=f"remove the repeated aliases or the nesting from {config_source()}")
        if isinstance(value, Mapping):
            stack.extend((v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))


def check_names(config: Mapping[str, Any]) -> None:
    """Names of scenes, datasets, runs and test sets: letters, digits, ``_``, ``.``, ``-``, starting with a
    letter or digit (no ``/``, no spaces: they become folder names under results/ and wildcard values)."""
    for where in NAMED:
        section: Any = config
        for key in where.split("."):
            section = section.get(key) if isinstance(section, Mapping) else None
        for name in section or {}:
            if not isinstance(name, str):
                raise MatchforgeError(
                    f"the name {name!r} under {where} is read by YAML as a {'boolean' if isinstance(name, bool) else 'number' if isinstance(name, (int, float)) else type(name).__name__}, not text",
                    fix=f"write it in quotes in {config_source()} ('{name}'), or give it a name that starts with a letter")
            if len(name) > MAX_NAME:
                raise MatchforgeError(
                    f"the name '{name[:40]}...' under {where} has {len(name)} characters, over {MAX_NAME} (it becomes "
                    "part of file names, which file systems cap at 255 bytes)", fix=f"shorten it in {config_source()}")
            if not NAME.match(str(name)):
                raise MatchforgeError(
                    f"'{name}' is not a valid name under {where}: names are letters, digits, '_', '.' and '-', "
                    "starting with a letter or digit (each becomes a folder under results/)",
                    fix=f"rename it in {config_source()}")


def validate_config(config: MutableMapping[str, Any]) -> "ConfigFile":
    """Parse the config once into its typed form (:class:`matchforge.config_file.ConfigFile`) and return it; ``config``
    is replaced by the typed form's plain options (every default filled in, paths in one spelling) for the rule files.
    Checked on the way: the size (YAML aliases), names, unknown keys (with the closest allowed name) and values, and
    every scene's overrides merged over their section. The first problem raises one short MatchforgeError."""
    from matchforge.config_file import SECTIONS, ConfigFile

    check_size(config)
    check_names(config)
    typed = ConfigFile.of(config)
    options = typed.to_dict()
    for scene, entry in typed.scenes.items():
        for stage in SCENE_STAGES:
            override = getattr(entry, stage)
            if override:
                SECTIONS[stage].of(deep_merge(options[stage], override), f"scenes.{scene}.{stage}")
    config.clear()
    config.update(options)
    return typed


def check_references(config: Mapping[str, Any]) -> None:
    """Cross-references of a validated config (names that must exist elsewhere in it), and the merged options
    of PoSFeat and shift/focal runs; the first problem raises one MatchforgeError naming the key and the fix.

    Paths are *not* checked here: a missing file fails only the jobs that need it (see :func:`require_config_path`).
    """
    src = config_source()
    scenes = config["scenes"]
    single = {s for s, e in scenes.items() if e.get("single_images")}
    sfm_scenes = set(scenes) - single
    datasets = config.get("datasets") or {}
    for name, entry in datasets.items():
        unknown = [s for s in entry["scenes"] if s not in scenes]
        if unknown:
            raise MatchforgeError(f"dataset '{name}' lists unknown scene(s) {unknown}",
                                  fix=f"add them under `scenes:` in {src} or remove them from datasets.{name}")
        without = [s for s in entry["scenes"] if s in single]
        if without:
            raise MatchforgeError(f"dataset '{name}' lists scene(s) {without} without SfM (single_images: true); "
                                  "datasets need poses", fix=f"remove them from datasets.{name}.scenes, or drop "
                                                             "single_images so that they go through SfM")
    for s, entry in scenes.items():
        depth = deep_merge(config["depth"], entry.get("depth"))
        fix = f"edit scenes.{s} in {src} (config/README.md, section depth)"
        if s in single and depth["backend"] != "depth_anything":
            raise MatchforgeError(f"scene '{s}' has single_images: true, so it has no SfM points for the "
                                  f"'{depth['backend']}' depth backend", fix="set depth.backend: depth_anything; " + fix)
        if s in single and entry.get("colmap"):
            raise MatchforgeError(f"scene '{s}' has single_images: true and a COLMAP project", fix="drop one of them; " + fix)
        if depth["backend"] == "mvs":
            from matchforge.depth.mvs import require_cuda

            require_cuda(s)
        run = depth["shape"]["run"]
        if run is not None and run not in (config["shiftfocal"].get("runs") or {}):
            raise MatchforgeError(f"scene '{s}': depth.shape.run names unknown shift/focal run '{run}'",
                                  fix="use a name under shiftfocal.runs, or null; " + fix)
    _check_loftr(config["loftr"], datasets)
    _check_localization(config, datasets)
    _check_posfeat(config["posfeat"], datasets, sfm_scenes, src)
    _check_shiftfocal(config["shiftfocal"], sfm_scenes, src)


def _check_loftr(loftr: Mapping[str, Any], datasets: Mapping[str, Any]) -> None:
    from matchforge.loftr import PRETRAINED
    from matchforge.loftr.config import LoFTRData, LoFTRTrain

    for run, rc in loftr["runs"].items():
        where = f"loftr.runs.{run}"
        if sum(bool(rc.get(k)) for k in LoFTRData.model_fields) != 1:
            raise MatchforgeError(f"loftr run '{run}' needs exactly one of `dataset` (a matchforge dataset), `megadepth` "
                                  "and `scannet` (LoFTR's official indices)", fix=f"set one of them under {where}")
        if rc.get("dataset") and rc["dataset"] not in datasets:
            raise MatchforgeError(f"loftr run '{run}' trains on unknown dataset '{rc['dataset']}'{_closest(rc['dataset'], list(datasets))}",
                                  fix=f"add it under `datasets:` or change {where}.dataset")
        for ts in rc["testsets"]:
            if ts not in loftr["testsets"]:
                raise MatchforgeError(f"loftr run '{run}' names unknown test set '{ts}'{_closest(ts, list(loftr['testsets']))}",
                                      fix=f"add it under loftr.testsets or remove it from {where}.testsets")
        train = LoFTRTrain.of(deep_merge(loftr["train"], rc["train"]), f"{where}.train")
        if train.init_weights == run:
            raise MatchforgeError(f"loftr run '{run}' starts from its own weights",
                                  fix=f"set {where}.init_weights to another run, a kornia name ({', '.join(PRETRAINED)}) or a file")
    for name, ts in loftr["testsets"].items():
        if ts["type"] == "dataset" and ts["dataset"] not in datasets:
            raise MatchforgeError(f"loftr test set '{name}' uses unknown dataset '{ts.get('dataset')}'",
                                  fix=f"set loftr.testsets.{name}.dataset to a name under `datasets:`")


def _check_localization(config: Mapping[str, Any], datasets: Mapping[str, Any]) -> None:
    fix = f"edit localization.testsets in {config_source()} (config/README.md)"
    others = set(config["loftr"]["testsets"]) | set(config["posfeat"]["testsets"])
    for name, ts in config["localization"]["testsets"].items():
        if name in others:
            raise MatchforgeError(f"localization test set '{name}' has the name of a loftr or posfeat test set", fix="rename it; " + fix)
        if ts["type"] == "aachen":
            continue
        if ts["dataset"] not in datasets:
            raise MatchforgeError(f"localization test set '{name}' names unknown dataset '{ts['dataset']}'"
                                  f"{_closest(ts['dataset'], list(datasets))}", fix=fix)
        scenes = datasets[ts["dataset"]]["scenes"]
        if (ts.get("scene") or scenes[0]) not in scenes or (not ts.get("scene") and len(scenes) > 1):
            raise MatchforgeError(f"localization test set '{name}' needs one scene of dataset '{ts['dataset']}' "
                                  f"(it has {scenes})", fix="set its scene: ; " + fix)


def run_train(family: Mapping[str, Any], run: str) -> dict[str, Any]:
    """A run's training options: the family's ``train`` section with the run's own ``train`` on top (every family
    has this shape, see matchforge.loftr.config)."""
    return deep_merge(family["train"], family["runs"][run]["train"])


def _check_posfeat(pf: Mapping[str, Any], datasets: Mapping[str, Any], sfm_scenes: set[str], src: str) -> None:
    fix = f"edit posfeat in {src} (config/README.md lists the options)"
    for name, spec in pf["testsets"].items():
        if spec["type"] == "pose" and spec["dataset"] not in datasets:
            raise MatchforgeError(f"posfeat test set '{name}' names unknown dataset '{spec['dataset']}'", fix=fix)
        if spec.get("scene") and spec["scene"] not in sfm_scenes:
            raise MatchforgeError(f"posfeat test set '{name}' names scene '{spec['scene']}', which is unknown or has no SfM", fix=fix)
    from matchforge.posfeat.config import PoSFeatTrain

    for run, spec in pf["runs"].items():
        if not spec.get("dataset") and not spec.get("caps_root"):
            raise MatchforgeError(f"posfeat run '{run}' has no training data", fix="set dataset: or caps_root: ; " + fix)
        if spec.get("dataset") and spec["dataset"] not in datasets:
            raise MatchforgeError(f"posfeat run '{run}' names unknown dataset '{spec['dataset']}'", fix=fix)
        for t in spec["testsets"]:
            if t not in pf["testsets"]:
                raise MatchforgeError(f"posfeat run '{run}' uses unknown test set '{t}'{_closest(t, list(pf['testsets']))}", fix=fix)
        PoSFeatTrain.of(run_train(pf, run), f"posfeat.runs.{run}.train")


def _check_shiftfocal(sf: Mapping[str, Any], sfm_scenes: set[str], src: str) -> None:
    fix = f"edit shiftfocal in {src} (config/README.md lists the options)"
    for name, source in sf["sources"].items():
        if source["type"] == "matchforge" and source.get("scene") not in sfm_scenes:
            raise MatchforgeError(f"shiftfocal source '{name}' needs `scene:` naming a scene with SfM (a key of scenes:"
                                  " without single_images)", fix=fix)
        if source["type"] != "matchforge" and not source.get("path"):
            raise MatchforgeError(f"shiftfocal source '{name}' ({source['type']}) needs `path:`", fix=fix)
    from matchforge.shiftfocal.config import ShiftFocalTrain

    for run, spec in sf["runs"].items():
        for s in spec["sources"] + spec["testsets"]:
            if s not in sf["sources"]:
                raise MatchforgeError(f"shiftfocal run '{run}' uses unknown source '{s}'{_closest(s, list(sf['sources']))}", fix=fix)
        ShiftFocalTrain.of(run_train(sf, run), f"shiftfocal.runs.{run}.train")
