"""The one training engine: Lightning Trainer, checkpoints, resume policy, signals.

A family (LoFTR, PoSFeat, shift/focal) supplies a ``LightningModule`` (model, losses, optimiser and
scheduler as its paper defines them) and its train/val dataloaders; :func:`fit` does the rest.

Resume policy (``docs/training.md``)
------------------------------------
A run's **identity** is its result-defining options (the family drops those listed in
:data:`matchforge.training.options.NOT_RESULT_OPTIONS`: workers, logging, visualisation and checkpoint frequency, device count
where the effective batch is unchanged) plus a **fingerprint of its training data**
(:mod:`matchforge.training.fingerprint`). It is stored in ``<out>/checkpoints/identity.json``.

- ``last.ckpt`` exists, same identity, no ``COMPLETE`` marker: the job was interrupted, so it resumes
  with global step, optimiser, scheduler, RNG-free sampler position (:class:`ResumableBatches`).
- ``COMPLETE`` exists (the run finished; this job is a forced rerun) or the identity differs (the
  log names the changed options or says that the data changed): start over from step 0.

Checkpoints (``last.ckpt``) are written atomically (temporary file, then rename) every
``checkpoint_every_n_steps`` steps (0 = off), every ``checkpoint_minutes`` of training, at the end,
and when the job receives SIGTERM, SIGINT or SIGUSR1: the step in progress finishes, the checkpoint
is written within seconds and :class:`TrainingInterrupted` is raised (the CLI exits with status 75),
so that Snakemake's retry or the user's rerun resumes. The SLURM profile sends SIGUSR1 ahead of the
time limit.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from matchforge.conf import to_json
from matchforge.errors import MatchforgeError
from matchforge.io.safe import load_torch
from matchforge.io.write import disk_errors, read_kept_json, set_aside, write_text
from matchforge.training.config import Engine

log = logging.getLogger(__name__)

PREVIOUS = "previous.ckpt"  # the checkpoint before last.ckpt, kept for when last.ckpt is damaged
EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: "try again", the job resumes from its checkpoint
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


def set_logged_step(trainer: L.Trainer, step: int) -> None:
    """Set the step Lightning logs at (its private ``fit_loop.epoch_loop._batches_that_stepped``: Lightning has
    no public way to align it after a mid-epoch restore). Fails loudly when a Lightning release renames it,
    instead of setting an attribute nothing reads (tests/unit/loftr/test_train.py checks it on every install)."""
    loop = trainer.fit_loop.epoch_loop
    if not hasattr(loop, "_batches_that_stepped"):
        raise RuntimeError(f"Lightning {L.__version__} has no fit_loop.epoch_loop._batches_that_stepped: "
                           "matchforge.training.engine.set_logged_step must follow its new name")
    loop._batches_that_stepped = step


class TrainingInterrupted(Exception):
    """The job got a signal; ``last.ckpt`` holds ``step`` and a rerun resumes from it."""

    def __init__(self, signum: int, step: int, checkpoint: Path):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"{signal.Signals(signum).name} at step {step}: checkpoint {checkpoint} written; "
                         "run the job again to resume")


@dataclass
class RunSpec:
    """Where a run lives and how the Trainer runs it: ``engine`` is the family's parsed engine options (a LoFTR or
    shift/focal run config is one, PoSFeat's is its ``trainer``); the rest says how long the run is in the family's
    own terms (steps or epochs, how often to validate and checkpoint by steps)."""

    out_dir: Path
    name: str
    identity: Mapping[str, Any]
    data_fingerprint: str
    engine: Engine
    max_steps: int = -1
    max_epochs: int = -1
    checkpoint_every_n_steps: int = 0
    check_val_every_n_epoch: int | None = 1
    val_check_interval: int | float | None = None
    has_val: bool = True
    log_every_n_steps: int = 1
    callbacks: list[L.Callback] = field(default_factory=list)

    @property
    def ckpt_dir(self) -> Path:
        return self.out_dir / "checkpoints"


@dataclass
class FitResult:
    trainer: L.Trainer
    resumed_from: int | None  # global step the job resumed at (None: started at 0)
    global_step: int
    seconds: float
    accelerator: str


class ResumableBatches(Sampler[list[int]]):
    """A batch sampler that, after a resume, skips the batches of the current epoch that the
    interrupted job already trained on, so the run sees exactly the batches an uninterrupted run would.

    ``batches`` must give the same order again for the same epoch (seeded by epoch or step). Its
    length stays the full epoch, which keeps Lightning's progress counters right.
    """

    def __init__(self, batches: Sampler[list[int]] | Sequence[list[int]]):
        self.batches, self.skip = batches, 0

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        """Forwarded to the sampler that orders the epoch (Lightning calls it on ``batch_sampler``)."""
        inner = self.batches if hasattr(self.batches, "set_epoch") else getattr(self.batches, "sampler", None)
        if inner is not None and hasattr(inner, "set_epoch"):
            inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for i, b in enumerate(self.batches):
            if i >= skip:
                yield b


class ResumableLoader(DataLoader):
    """DataLoader over :class:`ResumableBatches`. Its position comes from the trainer's restored batch
    progress (set by :func:`resume_position`), so its own state dict is empty; having one tells
    Lightning that the loader resumes mid-epoch correctly."""

    def __init__(self, dataset: Any, batches: Sampler[list[int]] | Sequence[list[int]], **kwargs: Any):
        super().__init__(dataset, batch_sampler=ResumableBatches(batches), **kwargs)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


def resume_position(loader: DataLoader, trainer: L.Trainer | None) -> DataLoader:
    """Tell a :class:`ResumableLoader` how many batches of the current epoch were already trained on
    (call from ``train_dataloader``; Lightning restores its loops before it builds the loaders)."""
    if trainer is not None and isinstance(loader, ResumableLoader):
        loop = trainer.fit_loop.epoch_loop
        if loop.restarting:  # checkpoints are written before a batch starts: `completed` batches are done
            loader.batch_sampler.skip = int(loop.batch_progress.current.completed)
    return loader


def resolve_accelerator(accelerator: str) -> str:
    if accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return accelerator


def _atomic_save(trainer: L.Trainer, path: Path) -> None:
    """Write ``path`` through a temporary file; the checkpoint it replaces becomes ``previous.ckpt``."""
    tmp = path.with_name(path.name + ".tmp")
    with disk_errors(tmp, "training checkpoint"):
        trainer.save_checkpoint(str(tmp))
    if trainer.is_global_zero:
        if path.is_file():
            os.replace(path, path.with_name(PREVIOUS))
        os.replace(tmp, path)
    trainer.strategy.barrier()


class _Checkpoints(L.Callback):
    """``last.ckpt`` by step count, by time, at the end, and on SIGTERM/SIGINT/SIGUSR1 (then stop).

    A signal that arrives during the last step lets the run finish normally."""

    def __init__(self, path: Path, every_n_steps: int, minutes: float):
        self.path, self.every_n_steps, self.seconds = path, every_n_steps, minutes * 60.0
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._last_save = time.monotonic()
        self._saved_at = -1

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            log.warning("received %s: finishing this step, then writing a checkpoint", signal.Signals(signum).name)
        self.signum = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # installed after Lightning's own handlers (which only log SIGTERM and go on)
        for s in SIGNALS:
            try:
                self._previous[s] = signal.signal(s, self._handler)
            except ValueError:  # not the main thread
                pass
        self._last_save = time.monotonic()

    def _restore_handlers(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        # Saved before the next batch rather than after the last one: by now Lightning has logged the
        # finished step and stepped its schedulers, so the checkpoint holds exactly `global_step` steps.
        step = trainer.global_step
        if self._saved_at == -1:
            # Lightning counts one more logged step when it restores a mid-epoch checkpoint than our
            # before-the-batch checkpoints hold; the logger's step is the global step (no accumulation).
            set_logged_step(trainer, step)
            self._saved_at = step
        if step == 0 or step == self._saved_at:
            return
        due = (self.every_n_steps > 0 and step % self.every_n_steps == 0) or \
            time.monotonic() - self._last_save >= self.seconds
        # one collective per step: any rank's signal or timer decides for all (identity without DDP)
        flags = trainer.strategy.reduce(torch.tensor([float(self.signum is not None), float(due)], device=pl_module.device),
                                        reduce_op="max")
        interrupted, due = bool(flags[0]), bool(flags[1])
        if due or interrupted:
            _atomic_save(trainer, self.path)
            self._last_save, self._saved_at = time.monotonic(), step
        if interrupted:
            raise TrainingInterrupted(self.signum or signal.SIGTERM, step, self.path)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()


class _LogSteps(L.Callback):
    """A log line with the ``train/*`` metrics at steps 1-10, then every 10th step (logs are read in files)."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.is_global_zero and (trainer.global_step % 10 == 1 or trainer.global_step <= 10):
            m = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
            log.info("step %d epoch %d %s", trainer.global_step, trainer.current_epoch,
                     " ".join(f"{k[6:]}={v:.4g}" for k, v in sorted(m.items())))


class _Loaders(L.LightningDataModule):
    """The family's loaders, built when Lightning asks (after a checkpoint is restored)."""

    def __init__(self, train: Any, val: Any):
        super().__init__()
        self._train, self._val = train, val

    def train_dataloader(self) -> Any:
        return self._train(self.trainer) if callable(self._train) else self._train


class _LoadersWithVal(_Loaders):
    def val_dataloader(self) -> Any:
        return self._val(self.trainer) if callable(self._val) else self._val


def _changed(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            keys += _changed(a, b, f"{prefix}{k}.")
        elif a != b:
            keys.append(prefix + k)
    return keys


def prepare(spec: RunSpec) -> tuple[str | None, int | None]:
    """Apply the resume policy to ``spec.ckpt_dir``; returns the checkpoint to resume from and its global
    step, or (None, None) to start at step 0."""
    ckpt_dir, done = spec.ckpt_dir, spec.ckpt_dir / "COMPLETE"
    ident_file = ckpt_dir / "identity.json"
    identity = {"options": json.loads(to_json(spec.identity)), "data": spec.data_fingerprint}
    old = read_kept_json(ident_file, lambda v: isinstance(v, dict) and isinstance(v.get("options", {}), dict),
                         f"{spec.name}: the run's identity record")
    if old == identity and not done.exists():
        found = _readable_checkpoint(spec)
        if found is not None:
            return found
    if done.exists() and old == identity:
        log.info("%s: the previous run finished (%s); this job trains it again from step 0",
                 spec.name, done.read_text().strip())
    elif old is not None:
        why = []
        if old.get("data") != identity["data"]:
            why.append("its training data changed")
        keys = _changed(old.get("options", {}), identity["options"])
        if keys:
            why.append("options changed: " + ", ".join(keys))
        log.info("%s: %s; starting from step 0", spec.name, "; ".join(why) or "no usable checkpoint")
    for entry in ckpt_dir.iterdir() if ckpt_dir.is_dir() else ():
        if ".damaged-" not in entry.name:  # damaged checkpoints stay for inspection
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.rmtree(spec.out_dir / "logs", ignore_errors=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_text(ident_file, json.dumps(identity, indent=1), "the run's identity record")
    return None, None


def _readable_checkpoint(spec: RunSpec) -> tuple[str, int] | None:
    """The newest checkpoint that loads (``last.ckpt``, else ``previous.ckpt``) and its global step.

    An unreadable one (a write cut short by a full disk or a lost node) is renamed ``*.damaged-<time>``
    and logged, so that no rerun trips over it again."""
    for ckpt in (spec.ckpt_dir / "last.ckpt", spec.ckpt_dir / PREVIOUS):
        if not ckpt.is_file():
            continue
        try:
            step = int(load_torch(ckpt, "training checkpoint")["global_step"])
        except (MatchforgeError, KeyError, TypeError, ValueError) as err:
            aside = set_aside(ckpt)
            log.warning("%s: checkpoint %s cannot be read (%s); moved aside to %s", spec.name, ckpt,
                        getattr(err, "cause", err), aside.name)
            continue
        log.info("%s: resuming the interrupted job from %s (step %d)", spec.name, ckpt, step)
        return str(ckpt), step
    if any(spec.ckpt_dir.glob("*.damaged-*")):
        log.warning("%s: no readable checkpoint is left; starting again from step 0", spec.name)
    return None


def loggers(spec: RunSpec) -> list[Any]:
    """Lightning loggers of a run: CSV (always; a new version per resumed job, see ``curves.merge_logs``) and the
    one ``spec.engine.logger`` adds: TensorBoard event files under ``<out>/logs/tensorboard`` (what the official LoFTR
    code writes) or a Weights & Biases run (project ``matchforge``, named after the run, files under ``<out>``)."""
    from lightning.pytorch.loggers import CSVLogger

    out = [CSVLogger(str(spec.out_dir), name="logs")]
    extra = {"tensorboard": ("TensorBoardLogger", "tensorboard"), "wandb": ("WandbLogger", "wandb")}
    if spec.engine.logger in extra:
        cls, package = extra[spec.engine.logger]
        try:
            __import__(package)
        except ImportError:
            raise MatchforgeError(f"{spec.name}: logger '{spec.engine.logger}' needs the {package} package",
                                  fix=f"pip install 'matchforge[{package}]' (or set logger: csv)") from None
        import lightning.pytorch.loggers as pl_loggers

        if spec.engine.logger == "tensorboard":
            out.append(pl_loggers.TensorBoardLogger(str(spec.out_dir / "logs"), name="tensorboard", default_hp_metric=False))
        else:
            out.append(pl_loggers.WandbLogger(project="matchforge", name=spec.name, save_dir=str(spec.out_dir)))
    elif spec.engine.logger != "csv":
        raise MatchforgeError(f"{spec.name}: unknown logger '{spec.engine.logger}'", fix="use csv, tensorboard or wandb")
    return out


def _refuse_failed_run(module: L.LightningModule, trainer: L.Trainer, spec: RunSpec, start: int | None) -> None:
    """Fail, publishing nothing, when the weights are not finite after training or every step was skipped (a
    module counts skipped steps in ``skipped_steps``); the resume checkpoint is set aside so that a rerun starts
    over instead of resuming the failure."""
    bad, where = non_finite(module)
    steps = int(trainer.global_step) - int(start or 0)
    skipped = int(getattr(module, "skipped_steps", 0))
    if not bad and not (steps > 0 and skipped >= steps):
        return
    last = spec.ckpt_dir / "last.ckpt"
    if last.exists():
        set_aside(last)
    cause = (f"the weights hold {bad} non-finite values after training (first in {where})" if bad else
             f"every one of its {steps} steps was skipped (non-finite loss)")
    raise MatchforgeError(f"{spec.name}: {cause}; nothing was published", fix="lower the learning rate, set "
                          "gradient_clip_val, or check the initial weights and the training data (docs/training.md)")


def non_finite(module: torch.nn.Module) -> tuple[int, str | None]:
    """(number of non-finite values in the module's floating-point parameters and buffers, the first tensor's name)."""
    count, first = 0, None
    for name, t in [*module.named_parameters(), *module.named_buffers()]:
        if t.is_floating_point():
            bad = int((~torch.isfinite(t)).sum())
            count += bad
            first = first or (name if bad else None)
    return count, first


def fit(module: L.LightningModule, train_loader: Any, val_loader: Any, spec: RunSpec) -> FitResult:
    """Train ``module`` under the resume policy; on a signal, checkpoint and raise :class:`TrainingInterrupted`.

    ``train_loader``/``val_loader``: dataloaders, or callables ``trainer -> dataloader`` (called after the
    checkpoint is restored, so that :func:`resume_position` can place a :class:`ResumableLoader`); or
    ``train_loader`` is a ``LightningDataModule`` (and ``val_loader`` None) that does the same itself.
    """
    bad, where = non_finite(module)
    if bad:  # initial weights (init_weights, or a fresh model's) that no step can repair
        raise MatchforgeError(f"{spec.name}: the initial weights hold {bad} non-finite values (first in {where}); "
                              "nothing was trained", fix="the init_weights file is damaged or came from a diverged run: "
                                                         "use another one, or train from scratch")
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    resume, start = prepare(spec)
    accelerator = resolve_accelerator(spec.engine.accelerator)
    # `devices` counts GPUs; without one (accelerator auto -> cpu) train in one process. An explicit
    # `accelerator: cpu` with devices > 1 runs DDP over CPU processes (gloo), which is how DDP is tested.
    devices = spec.engine.devices if accelerator != "cpu" or spec.engine.accelerator == "cpu" else 1
    multi = (isinstance(devices, int) and devices > 1) or spec.engine.num_nodes > 1
    checkpoints = _Checkpoints(spec.ckpt_dir / "last.ckpt", spec.checkpoint_every_n_steps, spec.engine.checkpoint_minutes)
    if spec.engine.deterministic and accelerator == "gpu":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS needs a fixed workspace
    trainer = L.Trainer(
        accelerator=accelerator, devices=devices, num_nodes=spec.engine.num_nodes,
        strategy=spec.engine.strategy if multi or spec.engine.strategy != "auto" else "auto",
        precision=spec.engine.precision, max_epochs=spec.max_epochs, max_steps=spec.max_steps,
        gradient_clip_val=spec.engine.gradient_clip_val, gradient_clip_algorithm="norm",
        sync_batchnorm=multi and accelerator == "gpu", use_distributed_sampler=False,
        logger=loggers(spec),
        log_every_n_steps=spec.log_every_n_steps, callbacks=[_LogSteps(), checkpoints, *spec.callbacks],
        enable_checkpointing=False, limit_val_batches=1.0 if spec.has_val else 0, num_sanity_val_steps=0,
        check_val_every_n_epoch=spec.check_val_every_n_epoch, val_check_interval=spec.val_check_interval,
        enable_progress_bar=sys.stderr.isatty(), benchmark=accelerator == "gpu" and not spec.engine.deterministic,
        deterministic=spec.engine.deterministic, default_root_dir=str(spec.out_dir),
    )
    t0 = time.time()
    try:
        if isinstance(train_loader, L.LightningDataModule):
            data = train_loader
        else:
            data = (_LoadersWithVal if spec.has_val and val_loader is not None else _Loaders)(train_loader, val_loader)
        trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    except TrainingInterrupted as err:
        log.warning("%s: %s", spec.name, err)
        raise
    _refuse_failed_run(module, trainer, spec, start)
    _atomic_save(trainer, spec.ckpt_dir / "last.ckpt")
    if trainer.is_global_zero:
        (spec.ckpt_dir / "COMPLETE").write_text(f"finished at step {trainer.global_step}\n")
    return FitResult(trainer, start, int(trainer.global_step), time.time() - t0, accelerator)
