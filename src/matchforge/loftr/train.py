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

Training runs on the shared engine (:mod:`matchforge.training.engine`): checkpoints live in
``OUT/checkpoints/`` (not a workflow output, so Snakemake never deletes them), written by time, on
SIGTERM/SIGINT/SIGUSR1 and optionally every N steps; an interrupted job resumes from ``last.ckpt``
(global step, optimiser, scheduler, sampler position) when its identity (options that change the
result, plus the training data's fingerprint) is unchanged. Changing ``num_workers``, the checkpoint
frequency or the device count at the same true batch size keeps the checkpoints.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Mapping

from matchforge.conf import load_conf
from matchforge.errors import MatchforgeError
from matchforge.io.write import write_json
from matchforge.loftr.config import LoFTRRunConfig

log = logging.getLogger(__name__)


CURVE_PANELS = [("losses", ["train/loss", "train/loss_c", "train/loss_f", "val/loss"]), ("learning rate", ["lr"]),
                ("correct coarse matches", ["train/correct_c", "train/num_gt"]),
                ("validation pose AUC (%)", ["val/auc@5", "val/auc@10", "val/auc@20"], (0, 100))]


def training_pairs(conf: LoFTRRunConfig, dataset_json: str | Path | None) -> tuple[list[Any], list[Any]]:
    """(train, val) pairs: a matchforge/MegaDepth-format dataset, or LoFTR's official MegaDepth or ScanNet indices
    (``conf.megadepth``, ``conf.scannet``)."""
    from matchforge.dataset.indices import read_dataset, read_megadepth_list, read_scannet_list

    sc, md = conf.scannet, conf.megadepth
    if md:
        train = read_megadepth_list(md.npz_root, md.list_, md.data_root, conf.min_overlap)
        v = md.val
        val = read_megadepth_list(v.npz_root, v.list_, v.data_root, 0.0) if v else []
        missing = [p for r in train[:1] + val[:1] for p in (r.image0, r.depth0) if p is not None and not Path(p).is_file()]
        if missing:
            raise MatchforgeError("MegaDepth images or depth maps not found", path=missing[0],
                                  fix="point loftr.runs.<run>.megadepth.data_root at the folder holding the index's "
                                      "phoenix/S6/zl548/MegaDepth_v1 paths (LoFTR's data/megadepth/train)")
        where: Any = md.list_
    elif sc:
        train = read_scannet_list(sc.npz_root, sc.list_, sc.intrinsics, sc.data_root, sc.pose_root, conf.min_overlap)
        v = sc.val
        val = read_scannet_list(v.npz_root, v.list_, v.intrinsics, v.data_root, v.pose_root) if v else []
        missing = [r.image0 for r in train[:1] + val[:1] if not Path(r.image0).is_file()]
        if missing:
            raise MatchforgeError("ScanNet frames not found", path=missing[0],
                                  fix="export the ScanNet scenes (color/, depth/, pose/ per scene, LoFTR's python export) "
                                      "under loftr.runs.<run>.scannet.data_root")
        where = sc.list_
    else:
        if dataset_json is None:
            raise MatchforgeError("no training data", fix="pass --dataset (a matchforge dataset.json) or set the run's `megadepth:` or `scannet:` index")
        train = read_dataset(dataset_json, "train", conf.min_overlap)
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


def initial_weights(conf: LoFTRRunConfig, run: str) -> tuple[dict[str, Any], LoFTRRunConfig]:
    """(state dict, run options) for a run with ``init_weights``: the weights are read (see
    ``matchforge.loftr.model.read_weights``), their architecture is checked against the run's options,
    and ``temp_bug_fix`` is set to what the weights were trained with where their source records it."""
    from matchforge.loftr import PRETRAINED
    from matchforge.loftr.model import fit_architecture, read_weights
    from matchforge.config_check import require_config_path

    if conf.init_weights not in PRETRAINED:
        require_config_path(conf.init_weights, f"loftr.runs.{run}.train.init_weights", "the initial weights",
                            f"the name of another run under loftr.runs, one of {', '.join(PRETRAINED)}, or a weights "
                            "file (weights.pt, last.ckpt, an official LoFTR .ckpt)")
    state, known = read_weights(conf.init_weights)
    taken = fit_architecture(known, conf, f"loftr.runs.{run}.train", f"'{conf.init_weights}'")
    if taken:
        log.info("architecture from the initial weights (the run leaves it at the defaults): %s",
                 ", ".join(f"{k} = {v}" for k, v in taken.items()))
    if "temp_bug_fix" in known and known["temp_bug_fix"] != conf.temp_bug_fix:
        log.info("temp_bug_fix follows the initial weights: %s", known["temp_bug_fix"])
        taken["temp_bug_fix"] = bool(known["temp_bug_fix"])
    conf = conf.model_copy(update=taken)
    log.info("initialised from %s (%d tensors)", conf.init_weights, len(state))
    return state, conf


def run_identity(conf: LoFTRRunConfig) -> dict[str, Any]:
    """Options that define what a run learns: the device layout only through the true batch size."""
    from matchforge.loftr.lightning_module import true_batch_size
    from matchforge.training.options import strip_options

    return {**strip_options(conf.to_dict()), "true_batch_size": true_batch_size(conf)}


def data_fingerprint(conf: LoFTRRunConfig, dataset_json: str | Path | None) -> str:
    """The training data's fingerprint: the dataset and its scene-info files, or the official index lists."""
    from matchforge.training.fingerprint import dataset_fingerprint, files_digest

    index = conf.scannet or conf.megadepth
    if index:
        return files_digest([index.list_, *([index.val.list_] if index.val else [])])
    return dataset_fingerprint(dataset_json)


def main(conf: LoFTRRunConfig | Mapping[str, Any], dataset_json: str | Path | None, out_dir: str | Path, run: str = "run") -> dict[str, Any]:
    """Train one run on ``dataset_json`` (or the run's ``megadepth``/``scannet`` indices); returns the summary written into ``model.json``."""
    import lightning as L
    import torch

    from matchforge.loftr.lightning_module import LoFTRModule, PairDataModule, true_batch_size
    from matchforge.loftr.model import export_state_dict, run_options
    from matchforge.dataset.indices import scene_of_subset
    from matchforge.training.curves import merge_logs, plot_curves
    from matchforge.training.engine import RunSpec, fit

    conf = run_options(conf)  # the one parse of this run's options; everything below takes the typed config
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    init_state = None
    if conf.init_weights:  # read and checked before anything else, and before any checkpoint is touched
        init_state, conf = initial_weights(conf, run)
    train, val = training_pairs(conf, dataset_json)
    subsets = {r.scene for r in train}
    log.info("run %s: %d train pairs from %d scene-info files (%d scenes), %d val pairs", run, len(train), len(subsets),
             len({scene_of_subset(s) for s in subsets}), len(val))

    L.seed_everything(int(conf.seed), workers=True)
    module = LoFTRModule(conf)
    if init_state is not None:  # a resumed job then loads its checkpoint over these
        module.matcher.load_state_dict(init_state, strict=True)
    lr, warmup = module.lr, module.warmup_step
    log.info("true batch size %d, lr %.3g, warm-up %d steps", true_batch_size(conf), lr, warmup)
    spec = RunSpec(out_dir=out_dir, name=f"LoFTR run {run}", identity=run_identity(conf),
                   data_fingerprint=data_fingerprint(conf, dataset_json), engine=conf, max_steps=conf.max_steps,
                   max_epochs=conf.max_epochs, checkpoint_every_n_steps=conf.checkpoint_every_n_steps,
                   check_val_every_n_epoch=conf.val_every_n_epochs, has_val=bool(val))
    result = fit(module, PairDataModule(conf, train, val), None, spec)
    trainer = result.trainer
    summary: dict[str, Any] = {"run": run, "global_step": result.global_step, "epochs": int(trainer.current_epoch),
                               "seconds": round(result.seconds, 2), "resumed_from": result.resumed_from,
                               "true_batch_size": true_batch_size(conf), "lr": lr, "warmup_step": warmup,
                               "train_pairs": len(train), "val_pairs": len(val), "accelerator": result.accelerator,
                               "conf": conf.to_dict()}
    if trainer.is_global_zero:
        state = export_state_dict(module.matcher)
        torch.save(state, out_dir / "weights.pt")
        torch.save({"state_dict": {f"matcher.{k}": v for k, v in state.items()}}, out_dir / "weights_official.ckpt")
        merge_logs(out_dir / "logs", out_dir / "metrics.csv")
        plot_curves(out_dir / "metrics.csv", out_dir / "curve.png", CURVE_PANELS,
                    title=f"LoFTR run {run} ({conf.match_type})")
        write_json(out_dir / "model.json", summary, indent=2, default=float)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default=None, help="dataset.json of a dataset built by `matchforge dataset` "
                        "(not needed when the run's options name a `megadepth:` or `scannet:` index)")
    parser.add_argument("--out", required=True, help="output folder (weights.pt, model.json, metrics.csv, curve.png, checkpoints/)")
    parser.add_argument("--run", default="run", help="run name (for logs)")
    parser.add_argument("--conf", default=None, help="run options: inline JSON or a YAML/JSON file (see config/README.md, loftr.runs)")
    parser.add_argument("--engine", default=None, help="options that do not change what is learned (workers, devices, checkpoint and log "
                        "frequency), as JSON merged over --conf; the workflow passes them apart so that editing them reruns nothing")


def run(args: argparse.Namespace) -> None:
    summary = main(load_conf(args.engine, load_conf(args.conf)), args.dataset, args.out, run=args.run)
    log.info("trained %s: %d steps in %.1f s", args.run, summary["global_step"], summary["seconds"])
