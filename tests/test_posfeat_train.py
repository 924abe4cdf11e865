"""PoSFeat training on a real scene (Reichstag: real photos, IMC poses): loss decreases, resume, checkpoints."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from conftest import real_data
from matchforge.conf import deep_merge
from matchforge.errors import MatchforgeError
from matchforge.posfeat.data import PairDataset, filter_rotation, pairs_from_caps, pairs_from_imc, read_img_cam, read_rgb
from matchforge.posfeat.networks import PoSFeat, ResNet, load_checkpoint, load_imagenet_backbone
from matchforge.posfeat.train import DEFAULTS, main, make_optimizer, set_modes, stage_loss


@pytest.fixture(scope="module")
def reichstag_pairs():
    return pairs_from_imc(real_data("reichstag"))


@pytest.mark.slow
def test_a_few_cpu_steps_reduce_the_epipolar_loss(reichstag_pairs):
    ds = PairDataset(reichstag_pairs[:1], (128, 96))
    batch = torch.utils.data.default_collate([ds[0]])
    torch.manual_seed(0)
    model = PoSFeat("resnet18", 64)
    sconf = {"grid_size": 8, "temperature": 60.0, "line_samples": 50, "window_size": 0.15, "loc_rand": 0.0,
             "cost_thr": 0.3, "optimizer": "adam", "lr": 1e-4}  # 3e-4 oscillates (loss back up by step 6)
    optim = make_optimizer(set_modes(model, "desc"), sconf)
    losses = []
    for _ in range(8):  # the same pair and query points every step: the loss must go down
        loss, _ = stage_loss(model, batch, "desc", sconf, torch.Generator().manual_seed(0))
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-3:]) < 0.75 * losses[0], losses


def _tiny_conf(**stage_overrides):
    conf = deep_merge(DEFAULTS, {
        "device": "cpu",
        "model": {"arch": "resnet18", "desc_dim": 32},
        "data": {"image_size": [96, 64], "num_workers": 0},
        "desc": {"steps": 2, "batch_size": 1, "vis_every": 2, "ckpt_every": 1, "line_samples": 20, "window_size": 0.2},
        "kp": {"steps": 1, "batch_size": 1, "vis_every": 1, "ckpt_every": 1},
    })
    return deep_merge(conf, stage_overrides)


@pytest.mark.slow
def test_training_resumes_after_interruption_and_chains_the_stages(reichstag_pairs, tmp_path, caplog):
    conf = _tiny_conf()
    pairs = reichstag_pairs[:3]
    first = main(conf, "desc", pairs, tmp_path, stop_after=1)  # "interrupted" after one step
    assert first["step"] == 1
    assert (tmp_path / "desc" / "last.pt").is_file() and not (tmp_path / "desc" / "model.pt").exists()
    saved = torch.load(tmp_path / "desc" / "last.pt", weights_only=False)
    with caplog.at_level(logging.INFO):
        second = main(conf, "desc", pairs, tmp_path)
    assert second["resumed_from"] == 1 and second["step"] == 2
    assert "resuming from step 1" in caplog.text
    history = (tmp_path / "desc" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 2  # header + both steps, the first one from before the interruption
    assert (tmp_path / "desc" / "vis" / "step_0000002.png").stat().st_size > 1000
    model, stored = load_checkpoint(tmp_path / "desc" / "model.pt")
    assert stored["model"]["arch"] == "resnet18"
    # the resumed run started from the saved weights, not from a fresh initialisation
    assert not torch.equal(saved["model"]["desc.local_head.weight"], model.state_dict()["desc.local_head.weight"])

    kp = main(conf, "kp", pairs, tmp_path)
    assert kp["step"] == 1
    final, _ = load_checkpoint(tmp_path / "kp" / "model.pt")
    desc_before, desc_after = model.desc.state_dict(), final.desc.state_dict()
    assert all(torch.equal(desc_before[k], desc_after[k]) for k in desc_before)  # description net frozen
    det_before, det_after = model.det.state_dict(), final.det.state_dict()
    assert any(not torch.equal(det_before[k], det_after[k]) for k in det_before)  # detection net trained
    assert (tmp_path / "kp" / "vis" / "step_0000001.png").is_file()


def test_changed_options_do_not_resume(reichstag_pairs, tmp_path, caplog):
    main(_tiny_conf(), "desc", reichstag_pairs[:2], tmp_path, stop_after=1)
    with caplog.at_level(logging.WARNING):
        out = main(_tiny_conf(desc={"lr": 5e-4}), "desc", reichstag_pairs[:2], tmp_path, stop_after=1)
    assert out["resumed_from"] == 0 and "starting over" in caplog.text


def test_rotation_filter_and_caps_reader(reichstag_pairs, tmp_path):
    from matchforge.posfeat.geometry import relative_rotation_deg

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
    item = PairDataset(caps, (96, 64))[0]
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
    model = PoSFeat("resnet50").eval()
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
