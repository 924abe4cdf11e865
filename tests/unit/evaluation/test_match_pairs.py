"""A test set's ``img_resize: run`` when matched by hand: the weights' own record gives the training size."""

from __future__ import annotations

import json

import pytest

from matchforge.errors import MatchforgeError
from matchforge.evaluation.match_pairs import main as match_pairs, trained_size
from testkit import REPO

REICHSTAG = REPO / "resources" / "testsets" / "reichstag"


def test_run_size_comes_from_the_model_record_beside_the_weights(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"run": "r", "conf": {"img_resize": 320}}))
    assert trained_size({"name": "loftr", "weights": str(tmp_path / "weights.pt")}) == 320
    with pytest.raises(MatchforgeError, match="no model.json that records it") as err:
        trained_size({"name": "loftr", "weights": "outdoor"}, "reichstag")
    assert "give img_resize in pixels" in str(err.value)


def test_sift_on_a_run_sized_test_set_needs_a_size_by_hand(tmp_path):
    ts = {"type": "imc", "root": str(REICHSTAG), "max_pairs": 1}  # img_resize: run, the default
    with pytest.raises(MatchforgeError, match="img_resize: run"):
        match_pairs(ts, {"name": "sift"}, tmp_path / "m.h5", name="reichstag")
    stats = match_pairs(ts, {"name": "sift", "img_resize": 240}, tmp_path / "m.h5", name="reichstag")
    assert stats["num_pairs"] == 1
