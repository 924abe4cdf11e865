"""shiftfocal-data -> shiftfocal-train (checkpoint, resume, decaying lr) -> shiftfocal-eval and
recover-shape, on the real TUM frames, through the CLI where a user would call it."""

from __future__ import annotations

import json
import logging
import sys
import numpy as np
import pytest
import torch

from testkit.cli import SHIFTFOCAL_TINY
from matchforge.errors import MatchforgeError
from matchforge.training.config import Engine
from matchforge.shiftfocal import train as sf_train
from matchforge.io.ply import read_ply, write_ply
from matchforge.shiftfocal.sampling import list_items


def test_data_layout(tum_data):
    index = json.loads((tum_data / "index.json").read_text())
    assert len(index["items"]) == 4 and [e["split"] for e in index["items"]].count("test") == 1
    focals, scales = np.load(tum_data / "focals.npy"), np.load(tum_data / "scales.npy")
    for e, f, s in zip(index["items"], focals, scales):
        with np.load(tum_data / "depths" / f"{e['key']}.npz") as z:
            depth = z["arr_0"]  # np.savez_compressed(path, depth): key arr_0 (Train-3D layout)
            assert z["rgb"].shape == depth.shape + (3,)
        K = np.load(tum_data / "intrinsics" / f"{e['key']}.npy")
        assert depth.shape == (72, 96) and K.shape == (3, 3)
        assert K[0, 0] == pytest.approx(f) and f == pytest.approx((517.3 if "1305" in e["name"] else 535.4) * 96 / 640)
        assert s == pytest.approx(depth.max()) and 2 < s < 10
    assert (tum_data / "histograms.png").stat().st_size > 1000
    assert len(list_items(tum_data, "train")) == 3


def test_train_checkpoints_and_decays_lr(tum_data, tmp_path, caplog):
    out = tmp_path / "run"
    m1 = sf_train.main({**SHIFTFOCAL_TINY, "targets": ["shift"]}, [tum_data], out)
    assert (out / "shift.pt").exists() and (out / "shift" / "checkpoints" / "last.ckpt").exists()
    assert (out / "curves.png").exists()
    lrs = [lr for _, lr in m1["targets"]["shift"]["history"]["lr"]]
    assert lrs[1] < lrs[0]
    assert [s for s, _ in m1["targets"]["shift"]["history"]["train_loss"]] == [1, 2]
    # a rerun of a finished run (forced) trains again; changed options start over and say which
    with caplog.at_level(logging.INFO):
        m2 = sf_train.main({**SHIFTFOCAL_TINY, "targets": ["shift"]}, [tum_data], out)
        m3 = sf_train.main({**SHIFTFOCAL_TINY, "targets": ["shift"], "lr": 5e-4}, [tum_data], out)
    assert m2["targets"]["shift"]["resumed_from"] == 0 and "the previous run finished" in caplog.text
    assert [s for s, _ in m3["targets"]["shift"]["history"]["train_loss"]] == [1, 2]
    assert "options changed: options.lr; starting from step 0" in caplog.text
    factors = [sf_train.lr_factor(s, 100, "linear", 0.1) for s in range(0, 101, 10)]
    assert factors == sorted(factors, reverse=True) and factors[-1] == pytest.approx(0.1)
    assert sf_train.lr_factor(100, 100, "cosine", 0.01) == pytest.approx(0.01)


def test_tensorboard_logger_writes_the_curves_csv_also_holds(tum_data, tmp_path):
    """The engine's `logger: tensorboard` (an engine option: same identity as csv) writes TensorBoard event files
    with the same training losses as the CSV that feeds curve.png and the report."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from matchforge.training.engine import RunSpec, loggers
    from matchforge.training.options import strip_options

    out = tmp_path / "run"
    m = sf_train.main({**SHIFTFOCAL_TINY, "targets": ["shift"], "logger": "tensorboard"}, [tum_data], out)
    events = sorted((out / "shift" / "logs" / "tensorboard").rglob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    loss_tag = next(t for t in tags if "loss" in t and "train" in t)
    tb = [e.value for e in acc.Scalars(loss_tag)]
    csv = [v for _, v in m["targets"]["shift"]["history"]["train_loss"]]
    assert len(tb) == len(csv) == 2 and np.allclose(tb, csv, rtol=1e-5)
    assert strip_options({"logger": "tensorboard", "lr": 1}) == {"lr": 1}  # not result-defining: never retrains
    with pytest.raises(MatchforgeError, match="unknown logger"):
        loggers(RunSpec(out_dir=tmp_path, name="x", identity={}, data_fingerprint="",
                        engine=Engine.model_construct(logger="mlflow")))  # past the config's check: the engine's own
    with pytest.raises(MatchforgeError, match=r"invalid config at shiftfocal.train.logger"):
        Engine.of({"logger": "mlflow"}, "shiftfocal.train")


def test_a_logger_whose_package_is_missing_names_the_extra(tmp_path, monkeypatch):
    from matchforge.training.engine import RunSpec, loggers

    monkeypatch.setitem(sys.modules, "wandb", None)  # what an environment without wandb gives: ImportError
    with pytest.raises(MatchforgeError, match=r"matchforge\[wandb\]"):
        loggers(RunSpec(out_dir=tmp_path, name="LoFTR run x", identity={}, data_fingerprint="", engine=Engine(logger="wandb")))


def test_bf16_mixed_trains_on_cpu(tum_data, tmp_path):
    m = sf_train.main({**SHIFTFOCAL_TINY, "targets": ["focal"], "precision": "bf16-mixed"}, [tum_data], tmp_path / "run")
    assert m["targets"]["focal"]["global_step"] == 2 and np.isfinite(m["targets"]["focal"]["best_val_l1"])


def test_init_weights_from_another_run(tum_data, tmp_path):
    sf_train.main({**SHIFTFOCAL_TINY, "targets": ["shift"]}, [tum_data], tmp_path / "a")
    b = sf_train.main({**SHIFTFOCAL_TINY, "targets": ["shift"], "init_weights": str(tmp_path / "a")}, [tum_data], tmp_path / "b")
    fresh = sf_train.main({**SHIFTFOCAL_TINY, "targets": ["shift"], "seed": 0}, [tum_data], tmp_path / "c")
    best_a = torch.load(tmp_path / "a" / "shift.pt", weights_only=False)["best_val_l1"]
    # the second run starts from the first run's kept weights: same validation clouds, same L1
    assert b["targets"]["shift"]["val_l1_initial"] == pytest.approx(best_a, rel=1e-5)
    assert fresh["targets"]["shift"]["val_l1_initial"] != pytest.approx(best_a, rel=1e-5)


def test_ply_round_trip(tmp_path):
    pts = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    cols = np.random.default_rng(1).integers(0, 255, (50, 3)).astype(np.uint8)
    write_ply(tmp_path / "a.ply", pts, cols)
    p, c = read_ply(tmp_path / "a.ply")
    np.testing.assert_array_equal(p, pts)
    np.testing.assert_array_equal(c, cols)
    assert (tmp_path / "a.ply").read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
