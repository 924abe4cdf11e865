"""shiftfocal-data -> shiftfocal-train (checkpoint, resume, decaying lr) -> shiftfocal-eval and
recover-shape, on the real TUM frames, through the CLI where a user would call it."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest
import torch

from testkit import real_data
from matchforge.errors import MatchforgeError
from matchforge.shiftfocal import train as sf_train
from matchforge.io.ply import read_ply
from matchforge.shiftfocal.readers import read_matchforge
from matchforge.training.engine import EXIT_INTERRUPTED
from testkit.interrupt import interrupt_cli, losses
from testkit.cli import SHIFTFOCAL_TINY, mf


def test_sigterm_resumes_exactly_and_changed_data_retrains(tum_data, tmp_path, caplog):
    """A real job (CLI) gets SIGTERM mid-training, exits 75 with a checkpoint; the rerun resumes at the next
    step and continues the loss curve of an uninterrupted run exactly. Then the data change (another
    holdout split): the run starts from step 0 and gives another model."""
    conf = {**SHIFTFOCAL_TINY, "targets": ["shift"], "steps": 30, "val_every": 10, "checkpoint_every": 0}
    ref = sf_train.main(conf, [tum_data], tmp_path / "ref")
    args = ["shiftfocal-train", "--data", str(tum_data), "--out", str(tmp_path / "run"), "--conf", json.dumps(conf)]
    code, text = interrupt_cli(args, tmp_path / "job.log", after_step=3)
    assert code == EXIT_INTERRUPTED, text[-2000:]
    with caplog.at_level(logging.INFO):
        run = sf_train.main(conf, [tum_data], tmp_path / "run")
    start = run["targets"]["shift"]["resumed_from"]
    assert 3 <= start < 30 and "resuming the interrupted job" in caplog.text
    a, b = losses(tmp_path / "ref" / "shift" / "metrics.csv"), losses(tmp_path / "run" / "shift" / "metrics.csv")
    assert list(a.index) == list(b.index) == list(range(30))
    assert np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-4)
    assert run["targets"]["shift"]["best_val_l1"] == pytest.approx(ref["targets"]["shift"]["best_val_l1"], rel=1e-4)

    other = tmp_path / "data_other"
    r = mf("shiftfocal-data", "--source", "tum", "--path", str(real_data("tum_rgbd")), "--out", str(other),
           "--conf", json.dumps({"type": "tum", "max_side": 96, "holdout": 0.25, "seed": 5}))
    assert r.returncode == 0, r.stderr
    code, _ = interrupt_cli(["shiftfocal-train", "--data", str(other), "--out", str(tmp_path / "run"), "--conf",
                             json.dumps(conf)], tmp_path / "job2.log", after_step=1)
    text = (tmp_path / "job2.log").read_text()
    assert "its training data changed; starting from step 0" in text
    changed = sf_train.main(conf, [other], tmp_path / "run")
    assert changed["targets"]["shift"]["global_step"] == 30
    w_old = torch.load(tmp_path / "ref" / "shift.pt", weights_only=False)["state_dict"]
    w_new = torch.load(tmp_path / "run" / "shift.pt", weights_only=False)["state_dict"]
    assert any(not torch.allclose(w_old[k], w_new[k]) for k in w_old)


def test_eval_and_recover_cli(tum_data, tmp_path):
    run = tmp_path / "run"
    r = mf("shiftfocal-train", "--data", str(tum_data), "--out", str(run), "--conf", json.dumps(SHIFTFOCAL_TINY))
    assert r.returncode == 0, r.stderr
    assert (run / "focal.pt").exists() and (run / "shift.pt").exists()
    out = tmp_path / "eval" / "tum"
    r = mf("shiftfocal-eval", "--model-dir", str(run), "--data", str(tum_data), "--out", str(out), "--conf", '{"num_points": 256}')
    assert r.returncode == 0, r.stderr
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["num_items"] == 1 and res["items"][0]["split"] == "test"
    row = res["items"][0]
    assert row["focal_err_guess"] == pytest.approx(abs((72 // 2) / np.tan(np.pi / 6) / row["focal_true"] - 1))
    assert row["absrel_before"] > 0.01  # the simulated input really is shifted
    pts, cols = read_ply(f"{out}_before.ply")
    gt, _ = read_ply(f"{out}_gt.ply")
    assert len(pts) == len(gt) > 1000 and cols is not None
    # recover-shape on a 16-bit PNG (inverse-depth input, as a relative depth network gives)
    import cv2

    with np.load(tum_data / "depths" / "000000.npz") as z:
        depth = z["arr_0"]
    disp = np.where(depth > 0, 1000.0 / np.maximum(depth, 1e-6), 0).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "disp.png"), disp)
    r = mf("recover-shape", "--model-dir", str(run), "--depth", str(tmp_path / "disp.png"), "--inverse",
           "--num-points", "256", "--out", str(tmp_path / "rec"))
    assert r.returncode == 0, r.stderr
    info = json.loads((tmp_path / "rec" / "recovery.json").read_text())
    assert info["focal0_px"] == pytest.approx(36 / np.tan(np.pi / 6)) and info["focal_px"] > 0
    assert read_ply(tmp_path / "rec" / "after.ply")[0].shape[1] == 3


def test_missing_model_is_a_clear_cli_error(tum_data, tmp_path):
    r = mf("recover-shape", "--model-dir", str(tmp_path / "nothing"), "--depth", "x.npy", "--out", str(tmp_path))
    assert r.returncode == 2 and "train it first" in r.stderr and "Traceback" not in r.stderr


def test_matchforge_scene_reader_unprojects_to_sfm_points(demo_sfm, tmp_path):
    """Project each view's SfM points and write them as a sparse depth H5 (the depth stage's format);
    the reader gives K from the model, and unprojecting those pixels reproduces the SfM points in the
    camera frame (up to the half-pixel of rasterisation)."""
    from matchforge.io.colmap import load_scene

    scene = load_scene(demo_sfm / "sparse")
    h5_dir = tmp_path / "h5"
    h5_dir.mkdir()
    views = list(scene.views.values())[:3]
    def rasterise(v):
        """SfM points of ``v`` in its camera frame and the pixel (row, col) each projects into."""
        Xc = scene.camera_points(v)
        uvw = Xc @ v.K.T
        u, w = uvw[:, 0] / uvw[:, 2], uvw[:, 1] / uvw[:, 2]
        ok = (Xc[:, 2] > 0) & (u >= 0) & (u < v.width) & (w >= 0) & (w < v.height)
        return Xc[ok], np.floor(w[ok]).astype(int), np.floor(u[ok]).astype(int)

    for v in views:
        Xc, r, c = rasterise(v)
        depth = np.zeros((v.height, v.width), np.float32)
        depth[r, c] = Xc[:, 2]
        with h5py.File(h5_dir / f"{v.stem}.h5", "w") as f:
            f["depth"] = depth
    items = read_matchforge(h5_dir, demo_sfm / "sparse", demo_sfm / "images", scene="demo")
    assert len(items) == 3 and not items[0].metric and items[0].rgb is not None
    from matchforge.geometry.camera import unproject

    for it, v in zip(items, views):
        np.testing.assert_allclose(it.K, v.K)
        pts, _ = unproject(it.depth, it.K)
        Xc, r, c = rasterise(v)
        order = np.argsort(r * v.width + c, kind="stable")
        keep = np.ones(len(order), bool)
        flat = (r * v.width + c)[order]
        keep[:-1] = flat[:-1] != flat[1:]  # the last write wins per pixel
        ref = Xc[order][keep]
        assert len(pts) == len(ref)
        np.testing.assert_allclose(pts[:, 2], ref[:, 2], rtol=1e-5)
        half_px = 0.5 * ref[:, 2:3] / np.array([it.K[0, 0], it.K[1, 1]]) * 1.001 + 1e-9  # half a pixel at that depth
        assert (np.abs(pts[:, :2] - ref[:, :2]) <= half_px).all()
    bad = tmp_path / "bad"
    bad.mkdir()
    with h5py.File(bad / "not_an_image.h5", "w") as f:
        f["depth"] = np.ones((4, 4), np.float32)
    with pytest.raises(MatchforgeError, match="no registered image"):
        read_matchforge(bad, demo_sfm / "sparse", scene="demo")
