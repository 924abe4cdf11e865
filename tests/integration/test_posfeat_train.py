"""PoSFeat training on a real scene (Reichstag: real photos, IMC poses): loss decreases, resume, checkpoints."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from testkit import real_data
from matchforge.conf import deep_merge
from matchforge.errors import MatchforgeError
from matchforge.dataset.indices import read_imc
from matchforge.posfeat.data import PairDataset
from matchforge.posfeat.networks import PoSFeat, load_checkpoint
from matchforge.posfeat.config import DescStage, PoSFeatRunConfig
from matchforge.posfeat.train import main, make_optimizer, set_modes, stage_loss, training_pairs
from matchforge.training.engine import EXIT_INTERRUPTED, TrainingInterrupted
from testkit.interrupt import interrupt_cli, losses


@pytest.fixture(scope="module")
def reichstag_pairs():
    return read_imc(real_data("reichstag"), "0.1")


def test_a_few_cpu_steps_reduce_the_epipolar_loss(reichstag_pairs):
    ds = PairDataset(reichstag_pairs[:1], (128, 96), 80.0)
    batch = torch.utils.data.default_collate([ds[0]])
    torch.manual_seed(0)
    model = PoSFeat("resnet18", 64)
    sconf = DescStage(grid_size=8, temperature=60.0, line_samples=50, window_size=0.15, loc_rand=0.0,
                      cost_thr=0.3, optimizer="adam", lr=2e-5)  # 5e-5 and up oscillate here (back above 9 px by step 6)
    optim = make_optimizer(set_modes(model, "desc"), sconf)
    losses = []
    for _ in range(8):  # the same pair and query points every step: the loss must go down
        loss, _ = stage_loss(model, batch, "desc", sconf, torch.Generator().manual_seed(0))
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-3:]) < 0.75 * losses[0], losses


def _tiny_conf(**overrides):
    conf = {
        "model": {"arch": "resnet18", "desc_dim": 32},
        "data": {"image_size": [96, 64], "num_workers": 0},
        "desc": {"steps": 24, "batch_size": 1, "vis_every": 12, "ckpt_every": 0, "line_samples": 20, "window_size": 0.2},
        "kp": {"steps": 1, "batch_size": 1, "vis_every": 1, "ckpt_every": 0},
    }
    return PoSFeatRunConfig.of(deep_merge(conf, overrides))


def test_sigterm_mid_training_resumes_at_the_next_step_and_chains_the_stages(demo_dataset, tmp_path, caplog):
    """A real job (CLI subprocess) gets SIGTERM mid-training: it writes a checkpoint and exits 75; the rerun
    resumes at the next step, and its loss curve and weights continue exactly as an uninterrupted run's."""
    conf = _tiny_conf()
    pairs = training_pairs(conf, str(demo_dataset), None)
    main(conf, "desc", pairs, tmp_path / "ref")
    args = ["posfeat-train", "--stage", "desc", "--dataset", str(demo_dataset), "--out", str(tmp_path / "run"),
            "--conf", json.dumps(conf.to_dict())]
    code, text = interrupt_cli(args, tmp_path / "job1.log", after_step=2)
    assert code == EXIT_INTERRUPTED, text[-2000:]
    assert "checkpoint" in text and "resume" in text
    assert (tmp_path / "run" / "desc" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "run" / "desc" / "model.pt").exists()
    with caplog.at_level(logging.INFO):
        second = main(conf, "desc", pairs, tmp_path / "run")
    assert 2 <= second["resumed_from"] < 24 and second["step"] == 24
    assert f"resuming the interrupted job from {tmp_path / 'run' / 'desc' / 'checkpoints' / 'last.ckpt'}" in caplog.text
    ref, run = losses(tmp_path / "ref" / "desc" / "metrics.csv"), losses(tmp_path / "run" / "desc" / "metrics.csv")
    assert list(run.index) == list(ref.index) == list(range(24))
    assert np.allclose(run.to_numpy(), ref.to_numpy(), rtol=1e-4), (ref.to_numpy(), run.to_numpy())
    model, stored = load_checkpoint(tmp_path / "run" / "desc" / "model.pt")
    ref_model, _ = load_checkpoint(tmp_path / "ref" / "desc" / "model.pt")
    assert stored["model"]["arch"] == "resnet18"
    assert all(torch.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()))
    assert (tmp_path / "run" / "desc" / "vis" / "step_0000024.png").stat().st_size > 1000

    kp = main(conf, "kp", pairs, tmp_path / "run")
    assert kp["step"] == 1
    final, _ = load_checkpoint(tmp_path / "run" / "kp" / "model.pt")
    desc_before, desc_after = model.desc.state_dict(), final.desc.state_dict()
    assert all(torch.equal(desc_before[k], desc_after[k]) for k in desc_before)  # description net frozen
    det_before, det_after = model.det.state_dict(), final.det.state_dict()
    assert any(not torch.equal(det_before[k], det_after[k]) for k in det_before)  # detection net trained
    assert (tmp_path / "run" / "kp" / "vis" / "step_0000001.png").is_file()


def test_changed_data_retrains_and_a_finished_run_trains_again_only_when_rerun(demo_dataset, reichstag_pairs, tmp_path,
                                                                              caplog):
    """The issue's case: an interrupted run, then the dataset changes. The rerun must not continue the old
    run: it starts at step 0 and gives another model. A finished run rerun on purpose trains again."""
    conf = _tiny_conf(desc={"steps": 3})
    old, new = reichstag_pairs[:3], reichstag_pairs[3:6]
    code, _ = interrupt_cli(["posfeat-train", "--stage", "desc", "--dataset", str(demo_dataset), "--out", str(tmp_path / "a"),
                             "--conf", json.dumps(_tiny_conf(desc={"steps": 8}).to_dict())], tmp_path / "a.log", after_step=1)
    assert code == EXIT_INTERRUPTED
    with caplog.at_level(logging.INFO):
        changed = main(_tiny_conf(desc={"steps": 8}), "desc", new, tmp_path / "a")
    assert changed["resumed_from"] == 0 and changed["step"] == 8
    assert "its training data changed; starting from step 0" in caplog.text
    first = main(conf, "desc", old, tmp_path / "b")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = main(conf, "desc", old, tmp_path / "b")
    assert again["resumed_from"] == 0 and again["step"] == 3 and "the previous run finished" in caplog.text
    assert first["loss_first"] == pytest.approx(again["loss_first"], rel=1e-4)
    main(conf, "desc", new, tmp_path / "c")
    a, b = load_checkpoint(tmp_path / "b" / "desc" / "model.pt")[0], load_checkpoint(tmp_path / "c" / "desc" / "model.pt")[0]
    assert not torch.allclose(a.desc.local_head.weight, b.desc.local_head.weight)


def test_changed_options_do_not_resume_but_worker_count_does(demo_dataset, tmp_path, caplog):
    conf = _tiny_conf(desc={"steps": 8})
    code, _ = interrupt_cli(["posfeat-train", "--stage", "desc", "--dataset", str(demo_dataset), "--out", str(tmp_path),
                             "--conf", json.dumps(conf.to_dict())], tmp_path / "job.log", after_step=1)
    assert code == EXIT_INTERRUPTED
    pairs = training_pairs(conf, str(demo_dataset), None)
    ident = (tmp_path / "desc" / "checkpoints" / "identity.json").read_text()
    with caplog.at_level(logging.INFO):
        with pytest.raises(TrainingInterrupted):  # only to stop early: another job's SIGTERM is not needed here
            _main_stopping_after(_tiny_conf(desc={"steps": 8, "lr": 5e-4}), pairs, tmp_path, steps=1)
    assert "options changed: desc.lr; starting from step 0" in caplog.text
    assert ident != (tmp_path / "desc" / "checkpoints" / "identity.json").read_text()
    with pytest.raises(TrainingInterrupted):
        _main_stopping_after(_tiny_conf(desc={"steps": 8, "lr": 5e-4}), pairs, tmp_path, steps=2)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        out = main(_tiny_conf(desc={"steps": 8, "lr": 5e-4, "vis_every": 3}, data={"num_workers": 1}), "desc", pairs, tmp_path)
    assert out["resumed_from"] >= 2 and "resuming the interrupted job" in caplog.text


def _main_stopping_after(conf, pairs, out, steps):
    """``main`` that receives SIGUSR1 from itself during step ``steps`` (as SLURM sends before the time limit)."""
    import os
    import signal

    from matchforge.posfeat.train import PoSFeatModule

    original = PoSFeatModule.training_step

    def step(self, batch, batch_idx):
        if self.global_step + 1 == steps:
            os.kill(os.getpid(), signal.SIGUSR1)
        return original(self, batch, batch_idx)

    PoSFeatModule.training_step = step
    try:
        return main(conf, "desc", pairs, out)
    finally:
        PoSFeatModule.training_step = original


def test_bf16_mixed_trains_on_cpu(demo_dataset, tmp_path):
    conf = _tiny_conf(desc={"steps": 2}, trainer={"precision": "bf16-mixed"})
    out = main(conf, "desc", training_pairs(conf, str(demo_dataset), None), tmp_path)
    assert out["precision"] == "bf16-mixed" and out["step"] == 2 and np.isfinite(out["loss_last"])


def test_init_weights_from_another_run(demo_dataset, tmp_path):
    """init_weights = another run's model.pt: the desc stage starts from its nets (after one step at a
    negligible learning rate they are still that run's), and a different architecture is refused."""
    conf = _tiny_conf(desc={"steps": 2})
    pairs = training_pairs(conf, str(demo_dataset), None)
    main(conf, "desc", pairs, tmp_path / "a")
    src = load_checkpoint(tmp_path / "a" / "desc" / "model.pt")[0]
    conf_b = _tiny_conf(desc={"steps": 1, "lr": 1e-12}, init_weights=str(tmp_path / "a" / "desc" / "model.pt"))
    main(conf_b, "desc", pairs, tmp_path / "b")
    b = load_checkpoint(tmp_path / "b" / "desc" / "model.pt")[0]
    assert torch.allclose(b.desc.local_head.weight, src.desc.local_head.weight, atol=1e-6)
    with pytest.raises(MatchforgeError, match="model.arch"):
        main(_tiny_conf(model={"arch": "resnet34"}, init_weights=str(tmp_path / "a" / "desc" / "model.pt")),
             "desc", pairs, tmp_path / "c")
