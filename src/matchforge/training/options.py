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


# "auto" data-loader workers: at most this many per training process. One worker reads a LoFTR pair (two images,
# two depth maps) in 10-40 ms on one core (bench/loftr_loader.py); a few keep even a fast GPU step fed, more only
# cost memory (each worker holds a copy of the dataset index and its prefetched batches).
AUTO_MAX_WORKERS = 8


def process_threads(num_workers: int | str) -> int:
    """CPU threads a training process asks for: itself and its loader workers (``"auto"``: as many as it may use)."""
    return (AUTO_MAX_WORKERS if num_workers == "auto" else int(num_workers)) + 1


def loader_workers(num_workers: int | str, cpus: int | None = None, processes: int | None = None) -> int:
    """Data-loader workers of one training process: ``num_workers`` as given, or for ``"auto"`` the CPUs the process
    may use (``cpus``: its affinity, which SLURM and Snakemake set; shared by the ``processes`` training processes of
    its node: ``LOCAL_WORLD_SIZE`` under DDP) less one for the process itself, at most :data:`AUTO_MAX_WORKERS`."""
    if num_workers != "auto":
        return int(num_workers)
    import os

    cpus = cpus if cpus is not None else len(os.sched_getaffinity(0))
    processes = processes if processes is not None else int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(AUTO_MAX_WORKERS, cpus // max(1, processes) - 1))
