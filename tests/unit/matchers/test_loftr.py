"""LoFTR as a pair matcher (matchforge.matchers.loftr): kornia's own matches, each photo read once per run of pairs."""

from __future__ import annotations

import numpy as np
import torch

from testkit import real_data
from testkit.tum import SMALL_MODEL
from matchforge.loftr.model import build_model, export_state_dict, forward


def test_matching_gives_kornias_matches_and_reads_each_photo_once(tmp_path, monkeypatch):
    """The matcher runs kornia's released dual-softmax inference (no log-domain confidences, which only the loss
    reads): its keypoints are those of kornia's LoFTR forward on the same frames, bit for bit. Over pairs that share
    photos (Reichstag, each photo with the next), each photo is read and resized once."""
    import matchforge.loftr.data as loftr_data
    from matchforge.io.calibration import ImcScene
    from matchforge.matchers.loftr import LoFTRMatcher

    torch.manual_seed(0)
    conf = {**SMALL_MODEL, "match_type": "dual_softmax", "thr": 0.0}  # a random network: every mutual neighbour
    torch.save(export_state_dict(build_model(conf)), tmp_path / "weights.pt")
    matcher = LoFTRMatcher({"weights": str(tmp_path / "weights.pt"), "model_conf": conf, "img_resize": 320,
                            "pad": False, "device": "cpu"})
    root = real_data("reichstag")
    scene = ImcScene(root)
    photos = [scene.image(p.stem) for p in sorted((root / "images").glob("*.jpg"))[:4]]
    reads = []
    original = loftr_data.read_gray
    monkeypatch.setattr(loftr_data, "read_gray", lambda path, *a, **k: reads.append(path) or original(path, *a, **k))
    for p0, p1 in zip(photos, photos[1:] + photos[:1]):
        k0, k1 = matcher(p0, p1)
        (f0, _, s0, _), (f1, _, s1, _) = (original(p, 320, 8, False, interpolation="linear") for p in (p0, p1))
        data = {"image0": f0[None], "image1": f1[None]}
        with torch.inference_mode():
            forward(matcher.model, data, for_loss=False)
            ref = matcher.model({"image0": f0[None], "image1": f1[None]})  # kornia's LoFTR.forward
        assert len(ref["keypoints0"]) > 50
        assert torch.equal(data["mkpts0_f"], ref["keypoints0"]) and torch.equal(data["mkpts1_f"], ref["keypoints1"])
        assert np.allclose(k0, ref["keypoints0"].numpy() * s0.numpy(), rtol=1e-6)  # in original pixels
        assert np.allclose(k1, ref["keypoints1"].numpy() * s1.numpy(), rtol=1e-6)
    assert sorted(map(str, reads)) == sorted(map(str, photos))
