"""Fine-tuning LoFTR from existing weights (issue 12): init_weights, architecture check, freeze, before/after."""

from __future__ import annotations

import pandas as pd
import torch
from torch.utils.data import default_collate

from testkit.tum import LOFTR_BASE, TUM_ROOT, tum_pair
from matchforge.errors import MatchforgeError
from matchforge.loftr.data import PairDataset
from matchforge.loftr.train import main as train_main


def test_fine_tuning_starts_from_exactly_the_given_weights(pretrained, tmp_path):
    from matchforge.loftr.lightning_module import LoFTRModule

    dataset, a = pretrained
    conf = {**LOFTR_BASE, "init_weights": str(a / "weights.pt"), "max_epochs": 1, "n_samples_per_subset": 1,
            "freeze_backbone_steps": 1}
    summary = train_main(conf, dataset, tmp_path / "b", run="b")
    assert summary["global_step"] == 1
    # temp_bug_fix follows the weights (run a used false; the schema default is true)
    assert summary["conf"]["temp_bug_fix"] is False

    # step-0 loss of the fine-tuning = the loss of the initial weights on the same (only) pair
    metrics = pd.read_csv(tmp_path / "b" / "metrics.csv")
    step0 = float(metrics.dropna(subset=["train/loss_c"]).iloc[0]["train/loss_c"])
    module = LoFTRModule(summary["conf"])
    module.matcher.load_state_dict(torch.load(a / "weights.pt"))
    module.train()
    module.matcher.backbone.eval()  # frozen at step 0: BatchNorm statistics fixed
    rec = tum_pair(TUM_ROOT, tmp_path)
    batch = default_collate([PairDataset([rec], img_resize=192, depth_max_size=640, pad=True, interpolation="linear")[0]])
    with torch.no_grad():
        module._step(batch)
    assert abs(float(batch["loss_scalars"]["loss_c"]) - step0) <= 1e-5 * step0

    # the backbone was frozen for that one step, the rest trained
    init, tuned = torch.load(a / "weights.pt"), torch.load(tmp_path / "b" / "weights.pt")
    assert all(torch.equal(init[k], tuned[k]) for k in init if k.startswith("backbone."))
    assert any(not torch.equal(init[k], tuned[k]) for k in init if k.startswith("loftr_coarse."))


def test_pretrained_name_offline_gives_the_download_error(pretrained, tmp_path, monkeypatch):
    from matchforge.loftr.model import read_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # no cached copy
    try:
        state, known = read_weights("outdoor")
    except MatchforgeError as err:
        assert "could not download kornia's pretrained LoFTR 'outdoor'" in str(err)
        assert "network access" in err.fix and "checkpoint" in err.fix
    else:  # a machine with network access: the released weights load, with their options
        assert known["temp_bug_fix"] is False and known["block_dims"] == [128, 196, 256]
