"""The typed-options machinery every config model is built on: :class:`Options` (unknown keys refused with the closest
name, paths in one spelling, whole numbers kept as written), readable errors (:func:`options_error`) and the walk from
a key path to its model (:func:`model_at`).

The models themselves live beside the code they configure: ``matchforge/<package>/config.py`` (sfm, depth, dataset,
loftr, posfeat, shiftfocal, evaluation, training) and :mod:`matchforge.config_file` (the whole file). Each option's
type, bounds, default and description is written once, there; ``matchforge config-docs`` exports the schemas and the
option tables of config/README.md from them.
"""

from __future__ import annotations

import difflib
from types import UnionType
from typing import Annotated, Any, Callable, Literal, Mapping, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Discriminator, RootModel, Tag, ValidationError, field_validator, model_validator
from pydantic_core import to_jsonable_python

from matchforge.conf import config_source, normalise_path
from matchforge.errors import MatchforgeError

T = TypeVar("T", bound="Options")


def extra(path: bool = False, unique: bool = False, unset: bool = False) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` of a field: ``format: path`` (the workflow normalises its spelling), ``uniqueItems``,
    and ``unset``: the exported schema gives no default (the key stays absent from the config; the model reads None)."""

    def edit(schema: dict[str, Any]) -> None:
        if path:
            schema["format"] = "path"
        if unique:
            schema["uniqueItems"] = True
        if unset:
            schema.pop("default", None)

    edit.unset = unset  # type: ignore[attr-defined]
    edit.path = path  # type: ignore[attr-defined]
    return edit


class Options(BaseModel):
    """Options of one section: unknown keys are refused (with the closest name), values are checked once."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=False, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _normalise_paths(cls, data: Any) -> Any:
        """One spelling per location for every path option (:func:`matchforge.conf.normalise_path`), so that editing
        how a path is written never reruns a job."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        for name, info in cls.model_fields.items():
            key = info.alias if info.alias in data else name
            if getattr(info.json_schema_extra, "path", False) and isinstance(data.get(key), str):
                data[key] = normalise_path(data[key])
        return data

    @field_validator("*", mode="wrap")
    @classmethod
    def _ints_as_written(cls, value: Any, handler: Callable[[Any], Any]) -> Any:
        """A whole number given for a float option stays as written (``10``, not ``10.0``): a job's params, and so
        whether Snakemake reruns it, never change with how pydantic stores a number."""
        out = handler(value)
        if type(value) is int and type(out) is float and out == value:
            return value
        return out

    @classmethod
    def of(cls: type[T], conf: "Options | Mapping[str, Any] | None" = None, where: str = "") -> T:
        """``conf`` as this model: returned as is when it already is one (parsed once), else checked with the
        defaults filled in; a problem raises one MatchforgeError naming the key, the closest allowed name and the fix."""
        if isinstance(conf, cls):
            return conf
        if isinstance(conf, Options):
            conf = conf.model_dump(by_alias=True)
        try:
            return cls.model_validate(dict(conf or {}))
        except ValidationError as err:
            raise options_error(err, cls, where) from None

    @classmethod
    def pick(cls: type[T], conf: Mapping[str, Any] | None, where: str = "") -> T:
        """This model's options among ``conf`` (a mapping that also holds other options, e.g. a matcher's), parsed
        with the defaults filled in; the other keys are ignored."""
        keys = {info.alias or name for name, info in cls.model_fields.items()}
        return cls.of({k: v for k, v in (conf or {}).items() if k in keys}, where)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able options (config key names), e.g. for a job's params, a run's identity or a model's
        metadata; an option the config leaves absent when unset (see :func:`extra`) is left out when None, at every
        level (sections, and the entries of name -> options mappings)."""
        out = to_jsonable_python(self.model_dump(by_alias=True))  # python mode: numbers as stored (see _ints_as_written)
        for name, info in type(self).model_fields.items():
            key, value = info.alias or name, getattr(self, name)
            if value is None and getattr(info.json_schema_extra, "unset", False):
                out.pop(key, None)
            else:
                out[key] = _plain(value, out[key])
        return out


def _plain(value: Any, dumped: Any) -> Any:
    """``dumped`` (the plain dump of ``value``) with every nested model written by its own :meth:`Options.to_dict`."""
    if isinstance(value, Options):
        return value.to_dict()
    if isinstance(value, RootModel):
        return _plain(value.root, dumped)
    if isinstance(value, Mapping):
        return {k: _plain(v, dumped[k]) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, d) for v, d in zip(value, dumped)]
    return dumped


def options_error(err: ValidationError, model: type[BaseModel], where: str) -> MatchforgeError:
    """One readable error from pydantic's: the key path, what is wrong, the closest allowed name of an unknown key (a
    training option put directly under a run is named as such, with where it belongs); an entry of a tagged union
    without a valid ``type`` is told the types there are (and an old ``kind:`` that it is now ``type:``)."""
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a misspelt key is also "missing"
    raw = [str(p) for p in first["loc"]]
    loc = _walk(model, raw)[1]  # the config's keys: a union's tag is not one
    key = ".".join([where, *loc] if where else loc) or "(top level)"
    fix = f"edit {config_source()}; options and defaults are listed in config/README.md"
    if first["type"] == "extra_forbidden":
        parent = model_at(model, raw[:-1])
        train = getattr(parent, "TRAIN", None)
        if train is not None and loc[-1] in _keys(train):
            run = key.rsplit(".", 1)[0]
            return MatchforgeError(f"'{key}' is a training option: put it under {run}.train (or under "
                                   f"{run.split('.')[0]}.train for every run)",
                                   fix=f"edit {config_source()}; config/README.md lists each family's options")
        allowed = sorted(_keys(parent)) if parent else []
        match = difflib.get_close_matches(loc[-1], allowed, n=1, cutoff=0.5)
        hint = f" (did you mean '{match[0]}'?)" if match else ""
        message = f"unknown config key '{key}'{hint}; allowed here: {', '.join(allowed)}"
    elif first["type"] in ("union_tag_not_found", "union_tag_invalid"):
        tags = ", ".join(_tags(_walk(model, raw)[0]))
        given = first.get("input") if isinstance(first.get("input"), Mapping) else {}
        old = f" (`kind: {given['kind']}` is now `type: {given['kind']}`)" if "kind" in given else ""
        message = f"'{key}' needs `type:` one of {tags}{old}"
    elif first["type"] == "missing":
        parent = model_at(model, raw[:-1])
        info = parent.model_fields.get(raw[-1]) if parent else None
        values = get_args(_unwrap(info.annotation)) if info and get_origin(_unwrap(info.annotation)) is Literal else ()
        message = f"invalid config at {key}: Field required" + (f" (one of {', '.join(map(str, values))})" if values else "")
    else:
        message = f"invalid config at {key}: {first['msg']} (got {_short(repr(first.get('input')))})"
    return MatchforgeError(message, fix=fix)


def _short(text: str, limit: int = 200) -> str:
    """One line of at most ``limit`` characters (a value's repr can be as long as the value)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _unwrap(t: Any) -> Any:
    """The type under ``Annotated[...]`` and ``X | None``."""
    while True:
        if get_origin(t) is Annotated:
            t = get_args(t)[0]
        elif get_origin(t) in (Union, UnionType) and type(None) in get_args(t):
            rest = [a for a in get_args(t) if a is not type(None)]
            if len(rest) != 1:
                return t
            t = rest[0]
        else:
            return t


def tagged(*models: type[BaseModel]) -> Any:
    """The tagged union of ``models`` on their ``type`` field (a ``Literal`` of one value each): an entry is parsed by
    the model its ``type`` names, and an error names the types there are (:func:`options_error`)."""

    def tag(value: Any) -> Any:
        return value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)

    members = tuple(Annotated[m, Tag(get_args(m.model_fields["type"].annotation)[0])] for m in models)
    return Annotated[Union[members], Discriminator(tag)]


def _members(t: Any) -> list[type[BaseModel]]:
    """The models of a union (a tagged union of test sets), else []."""
    if get_origin(t) in (Union, UnionType):
        args = [get_args(a)[0] if get_origin(a) is Annotated else a for a in get_args(t)]
        return [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    return []


def _tags(t: Any) -> list[str]:
    """The ``type`` values of a tagged union's models."""
    return [tag for m in _members(_unwrap(t)) for tag in get_args(m.model_fields["type"].annotation)]


def _walk(model: type[BaseModel], loc: list[str]) -> tuple[Any, list[str]]:
    """The type at key path ``loc`` below ``model`` and the path as the config writes it: through sections, name ->
    options mappings and lists (any key, e.g. ``"*"``, stands for an entry of a mapping) and tagged unions (pydantic
    puts the tag into an error's path; the config has no such key)."""
    t: Any = model
    keys: list[str] = []
    for part in loc:
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, RootModel):
            t = _unwrap(t.model_fields["root"].annotation)
        member = next((m for m in _members(t) if part in get_args(m.model_fields["type"].annotation)), None)
        if member is not None:
            t = member
            continue
        keys.append(part)
        if isinstance(t, type) and issubclass(t, BaseModel):
            info = next((f for n, f in t.model_fields.items() if part in (n, f.alias)), None)
            t = None if info is None else info.annotation
        elif get_origin(t) is dict:
            t = get_args(t)[1]
        elif get_origin(t) is list:
            t = get_args(t)[0]
        else:
            t = None
    return t, keys


def model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel] | None:
    """The options model at key path ``loc`` below ``model`` (see :func:`_walk`), or None where ``loc`` leads to no
    model (or to a union of them)."""
    t = _unwrap(_walk(model, loc)[0])
    if isinstance(t, type) and issubclass(t, RootModel):
        t = _unwrap(t.model_fields["root"].annotation)
    return t if isinstance(t, type) and issubclass(t, BaseModel) and not issubclass(t, RootModel) else None
