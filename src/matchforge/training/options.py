"""Which options of a training run define its result, and which only how it runs (workers, logging,
checkpoint frequency, devices where the effective batch is unchanged).

Kept apart from :mod:`matchforge.training.engine` so that the workflow can sort a run's options without
importing Lightning and torch (every ``snakemake`` call parses the rules)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

# Options that do not change what a run learns; leaving them out of the identity lets a run resume
# (or be reused) after they change. A family removes its own names for the same things.
NOT_RESULT_OPTIONS = frozenset({
    "num_workers", "device", "accelerator", "devices", "num_nodes", "strategy",
    "checkpoint_every_n_steps", "checkpoint_every", "ckpt_every", "checkpoint_minutes",
    "vis_every", "val_every", "val_every_n_epochs", "log_every_n_steps", "logger",
})


def strip_options(conf: Mapping[str, Any], extra: Sequence[str] = ()) -> dict[str, Any]:
    """``conf`` without the options that do not change the result (recursively, by key name)."""
    drop = NOT_RESULT_OPTIONS | set(extra)
    return {k: strip_options(v, extra) if isinstance(v, Mapping) else v for k, v in conf.items() if k not in drop}


def engine_options(conf: Mapping[str, Any]) -> dict[str, Any]:
    """Only the options of :data:`NOT_RESULT_OPTIONS` in ``conf`` (recursively, keeping the nesting), so that
    ``deep_merge(strip_options(conf), engine_options(conf)) == conf``. The workflow passes these to training
    jobs as a resource, not a param, so editing one never plans a training job (docs/training.md)."""
    out: dict[str, Any] = {}
    for k, v in conf.items():
        if k in NOT_RESULT_OPTIONS:
            out[k] = v
        elif isinstance(v, Mapping) and (sub := engine_options(v)):
            out[k] = sub
    return out
