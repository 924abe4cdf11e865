"""What every part of the glue shares: names as wildcard patterns, optional inputs, the options a training job's
params hold, and :class:`Part`, the base of each stage's or family's glue."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from matchforge.conf import to_json
from matchforge.training.options import engine_options, strip_options

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


def result_options(conf: dict[str, Any]) -> str:
    """params: the options that define what a training job learns (training.options.strip_options), as JSON."""
    return to_json(strip_options(conf))


def run_engine_options(conf: dict[str, Any]) -> str:
    """resources: the options that do not (training.options.NOT_RESULT_OPTIONS), as JSON: a resource, not a
    param, so editing ``num_workers`` or a checkpoint frequency plans no training job."""
    return to_json(engine_options(conf))


class Part:
    """The glue of one stage or model family (``wf.loftr``, ``wf.depth``, ...): its config ``section`` in its typed
    form (the model of :mod:`matchforge.config_file`, parsed once at planning) and the whole workflow ``wf``, for what
    it shares with the others. Params are JSON of those models' plain options (``to_dict``)."""

    name: str = ""  # its config section

    def __init__(self, wf: Any) -> None:  # the matchforge.workflow.glue.Workflow it is part of
        self.wf = wf

    @property
    def config(self) -> Mapping[str, Any]:
        return self.wf.config

    @property
    def section(self) -> Any:
        return getattr(self.wf.typed, self.name)
