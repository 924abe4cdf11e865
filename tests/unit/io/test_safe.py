"""Files from the web never run code when loaded; a damaged checkpoint never stops training for good.

The malicious files are built here the way an attacker would: an object whose ``__reduce__`` makes the
unpickler call ``os.system`` to create a marker file. Each loader must refuse the file, name it and the
global it asked for, and leave no marker.
"""

from __future__ import annotations

import collections
import os
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from testkit import real_data
from matchforge.errors import MatchforgeError


class Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "loading the file ran its payload"


def _refused(err: pytest.ExceptionInfo, path: Path) -> None:
    text = str(err.value)
    assert str(path) in text and "system" in text and "refused" in text, text


def _small_loftr_state() -> dict[str, torch.Tensor]:
    from testkit.tum import SMALL_MODEL
    from matchforge.loftr.model import build_model, export_state_dict

    return export_state_dict(build_model(SMALL_MODEL))


def test_malicious_checkpoints_are_refused_by_every_family(tmp_path, marker):
    from matchforge.loftr.model import read_weights
    from matchforge.posfeat.networks import load_checkpoint
    from matchforge.shiftfocal.recover import load_model

    state = _small_loftr_state()
    loftr = tmp_path / "evil_loftr.ckpt"
    torch.save({"state_dict": {f"matcher.{k}": v for k, v in state.items()}, "hyper_parameters": Payload(marker)}, loftr)
    with pytest.raises(MatchforgeError) as err:
        read_weights(str(loftr))
    _refused(err, loftr)

    posfeat = tmp_path / "evil_posfeat.pt"
    torch.save({"model": {}, "conf": {"model": {"arch": "resnet18", "desc_dim": 128}}, "stage": Payload(marker)}, posfeat)
    with pytest.raises(MatchforgeError) as err:
        load_checkpoint(posfeat)
    _refused(err, posfeat)

    shift = tmp_path / "shift.pt"
    torch.save({"model_config": Payload(marker), "state_dict": {}}, shift)
    with pytest.raises(MatchforgeError) as err:
        load_model(shift)
    _refused(err, shift)


def test_malicious_index_files_are_refused(tmp_path, marker):
    from matchforge.dataset.indices import load_scene_info
    from matchforge.io.calibration import read_imc_pairs
    from matchforge.io.safe import load_array_file

    official = load_scene_info(real_data("loftr_indices", "megadepth_test_1500_scene_info", "0015_0.1_0.3.npz"))
    pickled = tmp_path / "0015_0.1_0.3.npz"  # the official layout (a pickled dict), with one poisoned entry
    pickled.write_bytes(pickle.dumps({**official, "depth_paths": Payload(marker)}))
    with pytest.raises(MatchforgeError) as err:
        load_scene_info(pickled)
    _refused(err, pickled)

    archive = tmp_path / "savez.npz"  # a real np.savez archive whose object array carries the payload
    np.savez(archive, image_paths=np.array([Payload(marker)], dtype=object))
    with zipfile.ZipFile(archive) as z:
        assert "image_paths.npy" in z.namelist()
    with pytest.raises(MatchforgeError) as err:
        load_array_file(archive)
    _refused(err, archive)

    imc = tmp_path / "imc" / "new-vis-pairs"  # an IMC pair list (.npy of strings) with the payload
    imc.mkdir(parents=True)
    np.save(imc / "keys-th-0.1.npy", np.array(["a-b", Payload(marker)], dtype=object))
    with pytest.raises(MatchforgeError) as err:
        read_imc_pairs(tmp_path / "imc")
    _refused(err, imc / "keys-th-0.1.npy")


def test_official_files_still_load(tmp_path):
    """The official index files in resources/ and an official-layout LoFTR checkpoint (PyTorch Lightning
    1.x keys its callback states by the callback class) load; nothing of Lightning is imported to do so."""
    from matchforge.dataset.indices import load_scene_info, read_scannet_index
    from matchforge.io.calibration import read_imc_pairs
    from matchforge.loftr.model import read_weights

    root = real_data("loftr_indices", "megadepth_test_1500_scene_info")
    for npz in sorted(root.glob("*.npz")):
        info = load_scene_info(npz)
        assert len(info["pair_infos"]) == 300 and info["poses"][int(info["pair_infos"][0][0][0])].shape == (4, 4)
    scannet = real_data("loftr_indices", "scannet_test_1500")
    assert len(read_scannet_index(scannet / "test.npz", scannet / "intrinsics.npz", tmp_path)) == 1500
    assert len(read_imc_pairs(real_data("reichstag"))) > 10

    # a checkpoint in the official layout, written with stand-ins for the modules that PL 1.3 pickles by name
    fake = {name: types.ModuleType(name) for name in
            ("pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint")}
    ModelCheckpoint = type("ModelCheckpoint", (), {"__module__": "pytorch_lightning.callbacks.model_checkpoint"})
    fake["pytorch_lightning.callbacks.model_checkpoint"].ModelCheckpoint = ModelCheckpoint
    state = _small_loftr_state()
    sched = torch.optim.lr_scheduler.MultiStepLR(torch.optim.AdamW([torch.zeros(1, requires_grad=True)]), [3, 6, 9])
    ckpt = {"epoch": 29, "global_step": 12345, "pytorch-lightning_version": "1.3.5",
            "state_dict": {**{f"matcher.{k}": v for k, v in state.items()}, "loss.dummy": torch.zeros(1)},
            "callbacks": {ModelCheckpoint: {"monitor": "auc@10", "best_model_score": torch.tensor(0.5),
                                            "best_model_path": "/logs/epoch=29-auc@10=0.5.ckpt"}},
            "optimizer_states": [sched.optimizer.state_dict()], "lr_schedulers": [sched.state_dict()]}
    assert isinstance(sched.state_dict()["milestones"], collections.Counter)
    path = tmp_path / "outdoor_ds.ckpt"
    sys.modules.update(fake)
    try:
        torch.save(ckpt, path)
    finally:
        for name in fake:
            del sys.modules[name]
    loaded, known = read_weights(str(path))
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    assert known["initial_dim"] == 32 and "pytorch_lightning" not in sys.modules
