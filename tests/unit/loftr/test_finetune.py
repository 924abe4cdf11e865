"""Fine-tuning LoFTR from existing weights (issue 12): init_weights, architecture check, freeze, before/after."""

from __future__ import annotations

import json

import pytest
import torch

from testkit.tum import LOFTR_BASE
from matchforge.errors import MatchforgeError
from matchforge.loftr.train import main as train_main


def test_before_is_one_more_match_file_scored_on_the_same_pairs(pretrained, tmp_path):
    """A fine-tuning run's "before" numbers: its initial weights' matches of the same test set, scored by the same
    code, with its per-pair rows; the paired comparison finds no difference between identical matches."""
    from matchforge.evaluation.match_pairs import main as match_pairs
    from matchforge.evaluation.score import main as score

    dataset, a = pretrained
    testset = {"type": "dataset", "dataset": "tiny", "img_resize": 192}
    match_pairs(testset, {"name": "loftr", "weights": str(a / "weights.pt")}, tmp_path / "a.h5", dataset_json=dataset)
    res = score(testset, tmp_path / "a.h5", tmp_path / "e.json", dataset_json=dataset, name="tiny", before=tmp_path / "a.h5")
    saved = json.loads((tmp_path / "e.json").read_text())
    assert {"auc@5", "auc@10", "auc@20", "precision", "num_matches", "auc@10_ci"} <= set(saved["before"])
    # the same matches before and after: identical numbers, every pair tied, no verdict of a change
    assert all(saved["before"][k] == res[k] for k in ("auc@5", "auc@10", "auc@20", "precision", "num_matches"))
    assert saved["before"]["pairs"] == saved["pairs"]
    paired = saved["vs_before"]["auc@10"]
    assert paired["diff"] == 0 and paired["wins"] == paired["losses"] == 0 and paired["p_value"] == 1.0
    assert paired["verdict"] in ("no significant difference", f"too few photos ({paired['photos']})") and saved["few_pairs"]
    # a rescoring with other scoring options reads the stored matches: same matches, other threshold
    strict = score({**testset, "epi_err_thr": 1e-6}, tmp_path / "a.h5", tmp_path / "s.json", dataset_json=dataset)
    assert strict["num_matches"] == res["num_matches"] and strict["precision"] <= res["precision"]


def test_architecture_conflicts_are_listed_at_once_and_unset_options_follow_the_weights(pretrained, tmp_path):
    dataset, a = pretrained
    # the run sets two architecture options that differ from the weights: one message names both
    conf = {**LOFTR_BASE, "init_weights": str(a / "weights.pt"), "initial_dim": 16, "block_dims": [16, 24, 32]}
    with pytest.raises(MatchforgeError) as err:
        train_main(conf, dataset, tmp_path / "c", run="c")
    text = str(err.value)
    assert "initial_dim = 32 (the run sets 16)" in text and "block_dims = [32, 48, 64] (the run sets [16, 24, 32])" in text
    assert "remove initial_dim, block_dims from loftr.runs.c" in text
    conf = {**LOFTR_BASE, "init_weights": str(a / "weights.pt"), "match_type": "sinkhorn"}
    with pytest.raises(MatchforgeError, match="match_type = dual_softmax"):
        train_main(conf, dataset, tmp_path / "c", run="c")
    assert not (tmp_path / "c" / "weights.pt").exists()
    # a run that states no architecture option trains the weights' architecture
    unset = {k: v for k, v in LOFTR_BASE.items() if k not in ("initial_dim", "block_dims", "coarse_layers")}
    summary = train_main({**unset, "init_weights": str(a / "weights.pt"), "n_samples_per_subset": 1}, dataset,
                         tmp_path / "d", run="d")
    assert (summary["conf"]["initial_dim"], summary["conf"]["block_dims"], summary["conf"]["coarse_layers"]) == (32, [32, 48, 64], 1)


def test_non_finite_weights_are_never_trained_or_published(pretrained, tmp_path):
    """All-NaN init_weights used to be trained (every step skipped), exit 0 and publish a NaN weights.pt (issue 32).
    Now: refused before training; and a run whose every step is skipped fails and publishes nothing."""
    from matchforge.training.engine import _refuse_failed_run

    dataset, a = pretrained
    state = torch.load(a / "weights.pt")
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()},
               tmp_path / "nan.pt")
    with pytest.raises(MatchforgeError, match="initial weights hold .* non-finite values") as err:
        train_main({**LOFTR_BASE, "init_weights": str(tmp_path / "nan.pt")}, dataset, tmp_path / "b", run="b")
    assert "nothing was trained" in str(err.value)
    assert not (tmp_path / "b" / "weights.pt").exists()

    # the engine's check after training: every step skipped (a module counts them), or non-finite weights
    from types import SimpleNamespace

    from matchforge.loftr.lightning_module import LoFTRModule

    from matchforge.loftr.config import LoFTRRunConfig

    module = LoFTRModule(LoFTRRunConfig.model_validate(LOFTR_BASE))
    spec = SimpleNamespace(name="loftr/b", ckpt_dir=tmp_path / "ckpt")
    spec.ckpt_dir.mkdir()
    (spec.ckpt_dir / "last.ckpt").write_bytes(b"x")
    module.skipped_steps = 3
    with pytest.raises(MatchforgeError, match="every one of its 3 steps was skipped"):
        _refuse_failed_run(module, SimpleNamespace(global_step=3), spec, 0)
    assert not (spec.ckpt_dir / "last.ckpt").exists() and list(spec.ckpt_dir.glob("last.ckpt.damaged-*"))
    module.skipped_steps = 1
    _refuse_failed_run(module, SimpleNamespace(global_step=3), spec, 0)  # some steps trained: fine
    with torch.no_grad():
        next(module.parameters()).fill_(float("inf"))
    with pytest.raises(MatchforgeError, match="non-finite values after training"):
        _refuse_failed_run(module, SimpleNamespace(global_step=3), spec, 0)
