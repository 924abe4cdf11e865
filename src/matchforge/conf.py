"""Plain options: a scene's stage options (the parsed section, the scene's overrides merged on top), canonical JSON,
``--conf`` values, path spelling.

The workflow passes each job its merged options as one JSON ``param`` (so editing one scene's
options reruns only that scene's jobs); the CLI accepts the same JSON, or a YAML/JSON file.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Mapping

import yaml


def normalise_path(value: str) -> str:
    """One spelling per location: ``./a/``, ``a`` and ``$PWD/a`` all become ``a`` (relative to the working directory
    when inside it, else absolute). Values that are names rather than paths (``outdoor``, ``hf:repo/id``, a run name)
    come back unchanged."""
    absolute = os.path.normpath(os.path.abspath(os.path.expanduser(value)))
    relative = os.path.relpath(absolute)
    return absolute if relative == ".." or relative.startswith("../") else relative


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return ``base`` updated recursively with ``override`` (neither is modified)."""
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def scene_conf(config: Mapping[str, Any], scene: str, stage: str) -> dict[str, Any]:
    """Options of ``stage`` for ``scene``: ``config[stage]`` with ``config['scenes'][scene][stage]`` on top."""
    return deep_merge(config.get(stage, {}), config["scenes"][scene].get(stage))


def to_json(conf: Mapping[str, Any]) -> str:
    """Canonical JSON (sorted keys) so that Snakemake's params trigger sees only real edits."""
    return json.dumps(conf, sort_keys=True, separators=(",", ":"))


def load_conf(text_or_path: str | None, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Parse a ``--conf`` CLI value: inline JSON, or a path to a YAML/JSON file; merged over ``base`` (a training job's
    result options under its engine options). Defaults come from the command's model, not from here."""
    if not text_or_path:
        return deep_merge(base or {}, {})
    text = text_or_path.strip()
    if text.startswith("{"):
        conf = json.loads(text)
    else:
        conf = yaml.safe_load(Path(text).read_text()) or {}
    return deep_merge(base or {}, conf)


CONFIG_FILES_ENV = "MATCHFORGE_CONFIGFILES"
CONFIG_ARGS_ENV = "MATCHFORGE_CONFIG_ARGS"  # the snakemake arguments that select the config files in use


def config_source() -> str:
    """The config file(s) the running workflow read (set by the Snakefile), for "edit ..." fixes."""
    return os.environ.get(CONFIG_FILES_ENV) or "config/config.yaml"


def snakemake_command(*args: str) -> str:
    """A ``snakemake`` command line with ``args`` and the config-file arguments of the running workflow (none for
    the default ``config/config.yaml``), so that a suggested command reproduces the user's own invocation."""
    config_args = os.environ.get(CONFIG_ARGS_ENV, "")
    return " ".join(["snakemake", *args, *([config_args] if config_args else [])])
