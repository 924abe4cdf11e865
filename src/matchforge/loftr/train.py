"""``matchforge loftr-train``: train LoFTR (dual-softmax or optimal transport) on a matchforge dataset.

Writes into ``OUT`` (``results/models/loftr/<run>/`` in the workflow):

- ``weights.pt``: state dict with kornia's/the official names; loads with ``strict=True`` into
  ``kornia.feature.LoFTR(pretrained=None, config=kornia_config(model options))``;
- ``weights_official.ckpt``: ``{"state_dict": {"matcher.<name>": ...}}``, the layout of the official
  Lightning checkpoints (``src.loftr.LoFTR.load_state_dict`` and kornia both accept it);
- ``model.json``: the run options (architecture included) and a training summary;
- ``metrics.csv`` (one row per logged step/epoch) and ``curve.png`` (training curves).

A run with ``init_weights`` (a kornia pretrained name, an official checkpoint or a matchforge
``weights.pt`` / ``last.ckpt``) starts from those weights: they are read and their architecture
checked against the run's options before anything else, and ``temp_bug_fix`` follows them.

Checkpoints live in ``OUT/checkpoints/`` (not a workflow output, so Snakemake never deletes them):
a job that was interrupted resumes from ``last.ckpt`` (global step, optimiser, scheduler) when it is
run again with the same options; after a finished job, or with different options, it starts afresh.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from matchforge.conf import load_conf, to_json
from matchforge.errors import MatchforgeError

log = logging.getLogger(__name__)


def run_defaults(conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A run's options with the schema defaults filled in (``workflow/schemas/loftr.schema.yaml``)."""
    from matchforge.workflow import with_defaults

    section = with_defaults("loftr", {"runs": {"run": dict(conf or {})}})
    return section["runs"]["run"]


def _resolve_accelerator(conf: Mapping[str, Any]) -> str:
    import torch

    acc = conf.get("accelerator", "auto")
    if acc == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return acc


def plot_curves(metrics_csv: Path, out_png: Path, title: str = "") -> None:
    """Training (and validation) curves from Lightning's CSV log, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(metrics_csv) if metrics_csv.is_file() and metrics_csv.stat().st_size else pd.DataFrame()
    panels = [("losses", ["train/loss", "train/loss_c", "train/loss_f", "val/loss"]), ("learning rate", ["lr"]),
              ("correct coarse matches", ["train/correct_c", "train/num_gt"]),
              ("validation pose AUC (%)", ["val/auc@5", "val/auc@10", "val/auc@20"])]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    for ax, (name, cols) in zip(axes, panels):
        for col in cols:
            if col in df and df[col].notna().any():
                d = df[["step", col]].dropna()
                ax.plot(d["step"], d[col], marker="." if len(d) < 50 else None, label=col)
        ax.set_title(name)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)


def merge_logs(logs_dir: Path, out_csv: Path) -> None:
    """One metrics table from the CSV logs of the first job and of every resumed job.

    A resumed job restarts from the last checkpoint, so rows of an earlier job at or after the
    step where the next job started are superseded and dropped.
    """
    import pandas as pd

    versions = sorted(logs_dir.glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    frames = [pd.read_csv(p) for p in versions if p.stat().st_size]
    kept = []
    for i, df in enumerate(frames):
        later = [f["step"].min() for f in frames[i + 1:] if len(f)]
        kept.append(df[df["step"] < min(later)] if later else df)
    merged = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame({"step": []})
    merged.to_csv(out_csv, index=False)


def training_pairs(conf: Mapping[str, Any], dataset_json: str | Path | None) -> tuple[list[Any], list[Any]]:
    """(train, val) pairs: a matchforge/MegaDepth-format dataset, or LoFTR's ScanNet indices (``conf['scannet']``)."""
    from matchforge.dataset.indices import read_dataset, read_scannet_list

    sc = conf.get("scannet")
    if sc:
        train = read_scannet_list(sc["npz_root"], sc["list"], sc["intrinsics"], sc["data_root"], sc.get("pose_root"),
                                  conf["min_overlap"])
        val_conf = sc.get("val")
        val = read_scannet_list(val_conf["npz_root"], val_conf["list"], val_conf["intrinsics"], val_conf["data_root"],
                                val_conf.get("pose_root")) if val_conf else []
        missing = [r.image0 for r in train[:1] + val[:1] if not Path(r.image0).is_file()]
        if missing:
            raise MatchforgeError("ScanNet frames not found", path=missing[0],
                                  fix="export the ScanNet scenes (color/, depth/, pose/ per scene, LoFTR's python export) "
                                      "under loftr.runs.<run>.scannet.data_root")
        where: Any = sc["list"]
    else:
        if dataset_json is None:
            raise MatchforgeError("no training data", fix="pass --dataset (a matchforge dataset.json) or set the run's `scannet:` index")
        train = read_dataset(dataset_json, "train", conf["min_overlap"])
        try:
            val = read_dataset(dataset_json, "val", 0.0)
        except MatchforgeError as err:
            log.warning("no validation split (%s): training without validation", err)
            val = []
        where = dataset_json
    if not train:
        raise MatchforgeError("the training split has no pairs", path=where,
                              fix="add images/scenes, or lower the run's min_overlap")
    return train, val


def initial_weights(conf: Mapping[str, Any], run: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state dict, run options) for a run with ``init_weights``: the weights are read (see
    ``matchforge.loftr.model.read_weights``), their architecture is checked against the run's options,
    and ``temp_bug_fix`` is set to what the weights were trained with where their source records it."""
    from matchforge.loftr.model import check_architecture, read_weights

    state, known = read_weights(conf["init_weights"])
    check_architecture(known, conf, f"loftr.runs.{run}", f"'{conf['init_weights']}'")
    conf = dict(conf)
    if "temp_bug_fix" in known and known["temp_bug_fix"] != conf["temp_bug_fix"]:
        log.info("temp_bug_fix follows the initial weights: %s", known["temp_bug_fix"])
        conf["temp_bug_fix"] = bool(known["temp_bug_fix"])
    log.info("initialised from %s (%d tensors)", conf["init_weights"], len(state))
    return state, conf


def main(conf: Mapping[str, Any], dataset_json: str | Path | None, out_dir: str | Path, run: str = "run") -> dict[str, Any]:
    """Train one run on ``dataset_json`` (or the run's ``scannet`` indices); returns the summary written into ``model.json``."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from matchforge.loftr.lightning_module import LoFTRModule, PairDataModule, scaled_lr_and_warmup, true_batch_size
    from matchforge.loftr.model import export_state_dict

    conf = run_defaults(conf)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, val = training_pairs(conf, dataset_json)
    log.info("run %s: %d train pairs (%d scenes), %d val pairs", run, len(train), len({r.scene for r in train}), len(val))

    init_state = None
    if conf["init_weights"]:  # read and checked before any checkpoint of an earlier job is touched
        init_state, conf = initial_weights(conf, run)

    L.seed_everything(int(conf["seed"]), workers=True)
    ckpt_dir = out_dir / "checkpoints"
    conf_file = ckpt_dir / "conf.json"
    last = ckpt_dir / "last.ckpt"
    resume = None
    done = ckpt_dir / "COMPLETE"
    if last.is_file() and conf_file.is_file() and conf_file.read_text() == to_json(conf) and not done.exists():
        resume = str(last)
        log.info("resuming an interrupted job from %s", last)
    else:
        if ckpt_dir.exists():
            log.info("previous run finished or its options changed: starting afresh")
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        shutil.rmtree(out_dir / "logs", ignore_errors=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    conf_file.write_text(to_json(conf))

    module = LoFTRModule(conf)
    if init_state is not None and resume is None:
        module.matcher.load_state_dict(init_state, strict=True)
    data = PairDataModule(conf, train, val)
    lr, warmup = scaled_lr_and_warmup(conf)
    log.info("true batch size %d, lr %.3g, warm-up %d steps", true_batch_size(conf), lr, warmup)
    accelerator = _resolve_accelerator(conf)
    # `devices` counts GPUs; on a machine without one (accelerator auto -> cpu) train in one process. An explicit
    # `accelerator: cpu` with devices > 1 runs DDP over CPU processes (gloo), which is how the DDP path is tested.
    devices = conf["devices"] if accelerator != "cpu" or conf["accelerator"] == "cpu" else 1
    multi = (isinstance(devices, int) and devices > 1) or int(conf["num_nodes"]) > 1
    logger = CSVLogger(str(out_dir), name="logs")  # a new version per (resumed) job; merged below

    class _LogSteps(L.Callback):
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            if trainer.is_global_zero and (trainer.global_step % 10 == 1 or trainer.global_step <= 10):
                m = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
                log.info("step %d epoch %d %s", trainer.global_step, trainer.current_epoch,
                         " ".join(f"{k[6:]}={v:.4g}" for k, v in sorted(m.items())))

    trainer = L.Trainer(
        accelerator=accelerator, devices=devices, num_nodes=int(conf["num_nodes"]),
        strategy=conf["strategy"] if multi or conf["strategy"] != "auto" else "auto",
        precision=conf["precision"], max_epochs=int(conf["max_epochs"]), max_steps=int(conf["max_steps"]),
        gradient_clip_val=float(conf["gradient_clip_val"]), gradient_clip_algorithm="norm",
        sync_batchnorm=multi and accelerator == "gpu", use_distributed_sampler=False, logger=logger, log_every_n_steps=1,
        callbacks=[_LogSteps(), ModelCheckpoint(dirpath=str(ckpt_dir), filename="step{step}", save_last=True, save_top_k=1,
                                   every_n_train_steps=int(conf["checkpoint_every_n_steps"]), auto_insert_metric_name=False)],
        limit_val_batches=(1.0 if val else 0), num_sanity_val_steps=0, check_val_every_n_epoch=int(conf["val_every_n_epochs"]),
        enable_progress_bar=sys.stderr.isatty(), benchmark=accelerator == "gpu", default_root_dir=str(out_dir),
    )
    t0 = time.time()
    trainer.fit(module, datamodule=data, ckpt_path=resume)
    trainer.save_checkpoint(str(last))
    done.write_text(f"finished at step {trainer.global_step}\n")  # a later job of this run is a deliberate rerun
    seconds = time.time() - t0
    summary: dict[str, Any] = {"run": run, "global_step": int(trainer.global_step), "epochs": int(trainer.current_epoch),
                               "seconds": round(seconds, 2), "resumed_from": resume, "true_batch_size": true_batch_size(conf),
                               "lr": lr, "warmup_step": warmup, "train_pairs": len(train), "val_pairs": len(val),
                               "accelerator": accelerator, "conf": conf}
    if trainer.is_global_zero:
        state = export_state_dict(module.matcher)
        torch.save(state, out_dir / "weights.pt")
        torch.save({"state_dict": {f"matcher.{k}": v for k, v in state.items()}}, out_dir / "weights_official.ckpt")
        merge_logs(out_dir / "logs", out_dir / "metrics.csv")
        plot_curves(out_dir / "metrics.csv", out_dir / "curve.png", title=f"LoFTR run {run} ({conf['match_type']})")
        (out_dir / "model.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default=None, help="dataset.json of a dataset built by `matchforge dataset` "
                        "(not needed when the run's options name a `scannet:` index)")
    parser.add_argument("--out", required=True, help="output folder (weights.pt, model.json, metrics.csv, curve.png, checkpoints/)")
    parser.add_argument("--run", default="run", help="run name (for logs)")
    parser.add_argument("--conf", default=None, help="run options: inline JSON or a YAML/JSON file (see config/README.md, loftr.runs)")


def run(args: argparse.Namespace) -> None:
    summary = main(load_conf(args.conf), args.dataset, args.out, run=args.run)
    log.info("trained %s: %d steps in %.1f s", args.run, summary["global_step"], summary["seconds"])
