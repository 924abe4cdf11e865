"""Files from the web never run code when loaded; a damaged checkpoint never stops training for good.

The malicious files are built here the way an attacker would: an object whose ``__reduce__`` makes the
unpickler call ``os.system`` to create a marker file. Each loader must refuse the file, name it and the
global it asked for, and leave no marker.
"""

from __future__ import annotations
import pytest

from testkit import real_data
from testkit.interrupt import crash_loftr_at_step


def test_damaged_checkpoint_is_moved_aside_and_training_resumes(tmp_path, monkeypatch, caplog):
    """A last.ckpt cut short (full disk, lost node): the rerun moves it aside, resumes from previous.ckpt;
    with both damaged it starts again from step 0; the reason is in the log each time."""
    import logging

    from testkit.tum import SMALL_MODEL, tiny_dataset
    from matchforge.loftr.train import main as train_main

    dataset = tiny_dataset(real_data("tum_rgbd"), tmp_path / "ds")
    conf = {"dataset": "tiny", **SMALL_MODEL, "img_resize": 192, "depth_max_size": 640, "n_samples_per_subset": 2,
            "max_epochs": 2, "warmup_step": 1, "num_workers": 0, "checkpoint_every_n_steps": 1, "accelerator": "cpu"}
    out, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
    crash_loftr_at_step(monkeypatch, 3)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="simulated"):
            train_main(conf, dataset, out, run="t")
        last = ckpts / "last.ckpt"
        assert last.is_file() and (ckpts / "previous.ckpt").is_file()
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # the write was cut short
        if _ == 1:
            (ckpts / "previous.ckpt").write_bytes(b"")
        monkeypatch.undo()  # the steps train again
        with caplog.at_level(logging.INFO):
            summary = train_main(conf, dataset, out, run="t")
        assert summary["global_step"] == 4 and (out / "weights.pt").is_file()
        damaged = sorted(p.name for p in ckpts.glob("*.damaged-*"))
        if _ == 0:
            assert summary["resumed_from"] == 2, caplog.text  # previous.ckpt held step 2
            assert damaged and damaged[0].startswith("last.ckpt.damaged-")
            assert "cannot be read" in caplog.text and "moved aside" in caplog.text
            # a forced rerun of the finished run, then the crash again for the second round
            crash_loftr_at_step(monkeypatch, 3)
            conf = {**conf, "seed": 1}
        else:
            assert summary["resumed_from"] is None, caplog.text
            assert "no readable checkpoint is left; starting again from step 0" in caplog.text
        caplog.clear()
