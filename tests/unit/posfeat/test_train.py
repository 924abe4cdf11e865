"""PoSFeat training on a real scene (Reichstag: real photos, IMC poses): loss decreases, resume, checkpoints."""

from __future__ import annotations
import logging

import numpy as np
import pytest
import torch

from testkit import real_data
from matchforge.errors import MatchforgeError
from matchforge.dataset.indices import read_imc
from matchforge.posfeat.data import PairDataset, filter_rotation, pairs_from_caps, read_img_cam
from matchforge.io.images import read_image as read_rgb
from matchforge.posfeat.networks import PoSFeat, ResNet, load_imagenet_backbone


@pytest.fixture(scope="module")
def reichstag_pairs():
    return read_imc(real_data("reichstag"), "0.1")


def test_rotation_filter_and_caps_reader(reichstag_pairs, tmp_path):
    from matchforge.geometry.pose import relative_rotation_deg

    angles = [relative_rotation_deg(p.T0, p.T1) for p in reichstag_pairs]
    thr = float(np.median(angles))
    kept = filter_rotation(reichstag_pairs, thr)
    assert 0 < len(kept) < len(reichstag_pairs)
    assert all(relative_rotation_deg(p.T0, p.T1) <= thr for p in kept)
    # CAPS layout: <root>/<scene>/dense0/aligned/{images/, img_cam.txt, pairs.txt};
    # img_cam.txt lines: name w h fx fy cx cy R(9, row-major) t(3), world->camera
    p = reichstag_pairs[0]
    folder = tmp_path / "0001" / "dense0" / "aligned"
    (folder / "images").mkdir(parents=True)
    lines = ["# name w h fx fy cx cy R t"]
    for name, img, K, T in (("a.jpg", p.image0, p.K0, p.T0), ("b.jpg", p.image1, p.K1, p.T1)):
        (folder / "images" / name).symlink_to(img)
        lines.append(" ".join([name, "1000", "600", *map(str, [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]),
                               *map(str, T[:3, :3].ravel()), *map(str, T[:3, 3])]))
    (folder / "img_cam.txt").write_text("\n".join(lines) + "\n")
    (folder / "pairs.txt").write_text("a.jpg b.jpg\n")
    K, T = read_img_cam(folder / "img_cam.txt")["a.jpg"]
    assert np.allclose(K, p.K0) and np.allclose(T, p.T0)
    caps = pairs_from_caps(tmp_path)
    assert len(caps) == 1 and caps[0].scene == "0001/dense0/aligned"
    assert np.allclose(caps[0].T1, p.T1) and np.allclose(caps[0].K1, p.K1)
    item = PairDataset(caps, (96, 64), 80.0)[0]
    width = read_rgb(p.image0).shape[1]
    assert item["image1"].shape == (3, 64, 96) and item["K0"][0, 0] == pytest.approx(p.K0[0, 0] * 96 / width, rel=1e-4)
    with pytest.raises(MatchforgeError, match="no img_cam.txt"):
        pairs_from_caps(tmp_path / "0001" / "dense0" / "aligned" / "images")


def test_imagenet_weights_load_by_torchvision_names(tmp_path, caplog):
    reference = ResNet("resnet18", full=True)  # same names as torchvision.models.resnet18 (+ layer4)
    state = reference.state_dict()
    state["fc.weight"] = torch.zeros(1000, 512)  # torchvision files carry the classifier too
    torch.save(state, tmp_path / "resnet18.pth")
    model = PoSFeat("resnet18", 32)
    assert load_imagenet_backbone(model, str(tmp_path / "resnet18.pth"))
    assert torch.equal(model.desc.encoder.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    assert torch.equal(model.desc.encoder.bn1.running_var, reference.bn1.running_var)
    with pytest.raises(MatchforgeError, match="do not fit"):
        load_imagenet_backbone(PoSFeat("resnet50", 32), str(tmp_path / "resnet18.pth"))
    with caplog.at_level(logging.WARNING):
        assert not load_imagenet_backbone(PoSFeat("resnet18", 32), None)
    assert "RANDOM initialisation" in caplog.text


def test_network_output_shapes():
    model = PoSFeat("resnet50", 128).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 96))
    assert out["local_map"].shape == (1, 128, 16, 24)
    assert out["local_map_small"].shape == (1, 64, 16, 24)
    assert out["global_map"].shape == (1, 128, 4, 6)
    assert out["score_map"].shape == (1, 1, 64, 96) and float(out["score_map"].min()) >= 0


def test_imagenet_weights_from_a_hub_id(tmp_path, monkeypatch):
    """``hf:<repo>`` downloads model.safetensors through huggingface_hub (offline here: the download is faked)."""
    import huggingface_hub
    from safetensors.torch import save_file

    reference = ResNet("resnet18", full=True)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(tmp_path / "model.safetensors"))
    asked = []

    def fake_download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        return str(tmp_path / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    model = PoSFeat("resnet18", 32)
    assert load_imagenet_backbone(model, "hf:timm/resnet18.tv_in1k")
    assert asked == [("timm/resnet18.tv_in1k", "model.safetensors")]
    assert torch.equal(model.desc.encoder.layer2[0].downsample[0].weight, reference.layer2[0].downsample[0].weight)
    # a folder holding the weight file works too
    model2 = PoSFeat("resnet18", 32)
    assert load_imagenet_backbone(model2, str(tmp_path))
    assert torch.equal(model2.desc.encoder.conv1.weight, reference.conv1.weight)
