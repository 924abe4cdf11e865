"""What every stage's glue shares: the validated config, the scene lists, names as wildcard patterns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from matchforge.conf import scene_conf, to_json
from matchforge.job_resources import estimate
from matchforge.sfm.inputs import photo_signature

# Where the photo digests of each scene are cached between Snakemake calls (relative to the working directory).
PHOTO_CACHE = Path(".snakemake") / "matchforge" / "photos"


def one_of(names: Iterable[str]) -> str:
    """Wildcard regex matching exactly these names (never matching when there are none)."""
    names = list(names)
    return "|".join(map(re.escape, names)) if names else "(?!)"


def present(*paths: Any) -> list[str]:
    """The user-given paths that exist. A missing one is left out of a job's inputs, so that it fails only
    that job (which names the config key and the fix) instead of the planning of every job."""
    return [str(p) for p in paths if p and Path(p).exists()]


def has(input: Any, key: str) -> bool:
    """Whether a job's named inputs hold ``key`` (an optional input its input function may leave out)."""
    return key in input.keys()


class Base:
    """The validated config (defaults filled in) and the names the rules fan out over."""

    def __init__(self, config: Mapping[str, Any], checkpoints: Any = None) -> None:
        self.config = config
        self.checkpoints = checkpoints
        self.scenes: list[str] = list(config["scenes"])
        # single_images scenes have no SfM: only depth (and the shape step) run on them.
        self.single_scenes = [s for s in self.scenes if config["scenes"][s].get("single_images")]
        self.sfm_scenes = [s for s in self.scenes if s not in self.single_scenes]
        self.datasets = list(config.get("datasets") or {})
        self._photo_signatures: dict[str, tuple[str, int]] = {}

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
            own = ((self.config["scenes"][wc.scene].get("resources") or {}).get(stage) or {}).get(key)
            if own is not None:
                return own
            backend = self.scene_conf(wc.scene, "depth")["backend"]
            return estimate(stage, self.photos(wc.scene)[1], self.scene_conf(wc.scene, "sfm"), backend)[key]

        return value
