"""Config validation used by the Snakefile (and by the CLI for ``--conf`` files).

The top-level schema (``src/matchforge/schemas/config.schema.yaml``) checks the shape of the config; each
stage section ``X`` is then checked, and its defaults filled in, by ``src/matchforge/schemas/X.schema.yaml``.
Per-scene overrides (``scenes.<name>.X``) are merged over the section and checked with the same
schema, so a typo in one scene's options fails with that scene's name in the message.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, MutableMapping

import jsonschema
import yaml

from matchforge.conf import deep_merge
from matchforge.errors import MatchforgeError

# The schemas are package data, so a wheel or a non-editable install finds them too.
SCHEMA_DIR = Path(str(resources.files("matchforge") / "schemas"))
# Stages whose options a scene may override.
SCENE_STAGES = ("sfm", "depth", "scene_info")


def _with_defaults(cls):
    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = sub["default"]
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


DefaultFillingValidator = _with_defaults(jsonschema.Draft202012Validator)


def load_schema(path: str | Path) -> dict[str, Any]:
    """A schema file, parsed once per process (option defaults are looked up on every model build)."""
    return _parsed_schema(str(Path(path).resolve()))


@functools.lru_cache(maxsize=None)
def _parsed_schema(path: str) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


CONFIG_FILES_ENV = "MATCHFORGE_CONFIGFILES"


def config_source() -> str:
    """The config file(s) the running workflow read (set by the Snakefile), for "edit ..." fixes."""
    return os.environ.get(CONFIG_FILES_ENV) or "config/config.yaml"


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


def check_keys(instance: Mapping[str, Any], schema: Mapping[str, Any], where: str) -> None:
    """Unknown keys of ``instance`` (where ``schema`` forbids extra keys), recursively, as one short error
    naming the key path, the allowed keys and the closest allowed name."""
    if not isinstance(instance, Mapping) or not isinstance(schema, Mapping):
        return
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, value in instance.items():
        path = f"{where}.{key}" if where else str(key)
        if key in props:
            check_keys(value, props[key], path)
        elif isinstance(extra, Mapping):
            check_keys(value, extra, path)
        elif extra is False:
            allowed = sorted(props)
            raise MatchforgeError(
                f"unknown config key '{path}'{_closest(str(key), allowed)}; allowed here: {', '.join(allowed)}",
                fix=f"edit {config_source()}; options and defaults are listed in config/README.md")


def check(instance: MutableMapping[str, Any], schema: Mapping[str, Any], where: str) -> None:
    """Validate ``instance`` in place (filling defaults); raise one readable error naming ``where``."""
    check_keys(instance, schema, where)
    errors = sorted(DefaultFillingValidator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise MatchforgeError(
            f"invalid config at {where}.{key}: {err.message}" if key != "(top level)" else f"invalid config at {where}: {err.message}",
            fix=f"edit {config_source()} ({where}); options and defaults are listed in config/README.md",
        )


def validate_config(config: MutableMapping[str, Any], schema_dir: str | Path | None = None) -> None:
    """Check the config's shape (unknown keys with the closest allowed name), fill stage defaults and
    check every scene's merged overrides; the first problem raises one short MatchforgeError."""
    schema_dir = Path(schema_dir) if schema_dir is not None else SCHEMA_DIR
    top = load_schema(schema_dir / "config.schema.yaml")
    check_keys(config, top, "")
    errors = sorted(jsonschema.Draft202012Validator(top).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        key = ".".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise MatchforgeError(f"invalid config at {key}: {errors[0].message}",
                              fix=f"edit {config_source()}; options and defaults are listed in config/README.md")
    for stage_schema in sorted(schema_dir.glob("*.schema.yaml")):
        stage = stage_schema.name.removesuffix(".schema.yaml")
        if stage == "config":
            continue
        schema = load_schema(stage_schema)
        section = config.setdefault(stage, {})
        check(section, schema, stage)
        if stage in SCENE_STAGES:
            for scene, scene_entry in (config.get("scenes") or {}).items():
                if scene_entry.get(stage):
                    check(deep_merge(section, scene_entry[stage]), schema, f"scenes.{scene}.{stage}")


def with_defaults(stage: str, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``conf`` checked against ``src/matchforge/schemas/<stage>.schema.yaml`` with its defaults filled in.

    The schema is the single place where option defaults live; the CLI and ``main`` functions use
    this so that a stage run by hand behaves exactly like the workflow's job.
    """
    out = deep_merge(conf or {}, {})
    check(out, load_schema(SCHEMA_DIR / f"{stage}.schema.yaml"), stage)
    return out


@functools.lru_cache(maxsize=None)
def _schema_defaults(stage: str) -> str:
    return json.dumps(with_defaults(stage, {}))


def schema_defaults(stage: str) -> dict[str, Any]:
    """A fresh copy of every default of ``stage`` (nested sections included), from its schema."""
    return json.loads(_schema_defaults(stage))


def section_defaults(stage: str, *path: str) -> dict[str, Any]:
    """Defaults of one sub-section of ``stage``'s schema, reached by property names (``"*"``: the schema
    of any entry of a name -> options mapping), e.g. ``section_defaults("datasets", "*")``."""
    schema: Mapping[str, Any] = load_schema(SCHEMA_DIR / f"{stage}.schema.yaml")
    for key in path:
        schema = schema["additionalProperties"] if key == "*" else schema["properties"][key]
    instance: dict[str, Any] = {}
    for _ in DefaultFillingValidator(schema).iter_errors(instance):  # fills defaults; required keys may be missing
        pass
    return json.loads(json.dumps(instance))
