"""LoFTR training: overfitting one real pair (DS and OT), resume after a crash, export into kornia."""

from __future__ import annotations

import kornia.feature as KF
import pytest
import torch
from torch.utils.data import default_collate

from testkit import real_data
from testkit.tum import SMALL_MODEL, tum_pair
from matchforge.loftr.data import PairDataset
from matchforge.loftr.model import build_model, export_state_dict, forward, kornia_config


def test_export_loads_strictly_into_kornia():
    for match_type in ("dual_softmax", "sinkhorn"):
        state = export_state_dict(build_model({"match_type": match_type}))
        official = {f"matcher.{k}": v for k, v in state.items()}
        if match_type == "dual_softmax":
            target = KF.LoFTR(pretrained=None)  # kornia's default (official outdoor) architecture
            assert len(state) == len(target.state_dict())
        else:  # kornia cannot build OT by itself (no superglue.py): its LoFTR with our CoarseMatching subclass
            target = build_model({"match_type": "sinkhorn"})
            assert isinstance(target, KF.LoFTR) and "coarse_matching.bin_score" in state
        target.load_state_dict(state, strict=True)
        target.load_state_dict(official, strict=True)  # official Lightning layout, prefix stripped by kornia
        assert torch.equal(target.state_dict()["backbone.conv1.weight"], state["backbone.conv1.weight"])


def test_training_forward_matches_kornia_inference():
    torch.manual_seed(0)
    conf = {**SMALL_MODEL, "thr": 0.0}  # an untrained model has no confident match; keep every mutual one
    model = build_model(conf).eval()
    ref = KF.LoFTR(pretrained=None, config=kornia_config(conf)).eval()
    ref.load_state_dict(model.state_dict(), strict=True)
    g = torch.Generator().manual_seed(1)
    img = torch.rand(1, 1, 160, 160, generator=g)
    img1 = torch.roll(img, shifts=(8, 16), dims=(2, 3))
    with torch.inference_mode():
        ours = forward(model, {"image0": img, "image1": img1})
        theirs = ref({"image0": img, "image1": img1})
    assert len(theirs["keypoints0"]) > 10
    assert torch.allclose(ours["mkpts0_f"], theirs["keypoints0"]) and torch.allclose(ours["mkpts1_f"], theirs["keypoints1"], atol=1e-4)


def test_non_finite_loss_is_skipped(tmp_path):
    from matchforge.loftr.lightning_module import LoFTRModule

    rec = tum_pair(real_data("tum_rgbd"), tmp_path)
    b = default_collate([PairDataset([rec], img_resize=192, depth_max_size=640, pad=True, interpolation="linear")[0]])
    b["image0"][0, 0, 40:60, 40:60] = float("nan")  # a corrupt image
    torch.manual_seed(0)
    module = LoFTRModule({**SMALL_MODEL, "block_dims": [16, 24, 32], "initial_dim": 16})
    before = {k: v.clone() for k, v in module.matcher.named_buffers() if "running" in k}
    loss = module.training_step(b, 0)
    assert all(torch.equal(before[k], v) for k, v in module.matcher.named_buffers() if k in before)  # BN stats not poisoned
    assert not torch.isfinite(b["loss"])  # the raw loss is NaN ...
    assert float(loss.detach()) == 0.0  # ... the step's loss is a zero that reaches every parameter
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and not p.grad.any() for p in module.parameters())


def test_lr_factor_warms_up_per_step_then_decays_per_milestone_epoch():
    from matchforge.loftr.lightning_module import lr_factor
    from matchforge.loftr.config import LoFTRRunConfig

    conf = LoFTRRunConfig(warmup_ratio=0.1, milestones=[2, 4], gamma=0.5)
    assert [lr_factor(conf, 4, s, 0) for s in range(5)] == pytest.approx([0.325, 0.55, 0.775, 1.0, 1.0])
    assert [lr_factor(conf, 0, 0, e) for e in range(6)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_the_private_lightning_step_counter_exists_in_the_installed_lightning():
    """Resuming mid-epoch sets Lightning's private logged-step counter (no public API): on an install whose
    Lightning renamed it, this fails here, and training stops with the same message instead of logging at
    the wrong steps."""
    import lightning as L

    from matchforge.training.engine import set_logged_step

    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    set_logged_step(trainer, 7)
    assert trainer.fit_loop.epoch_loop._batches_that_stepped == 7
    del trainer.fit_loop.epoch_loop._batches_that_stepped
    with pytest.raises(RuntimeError, match="set_logged_step must follow its new name"):
        set_logged_step(trainer, 7)
