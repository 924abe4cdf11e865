"""Bad input that would silently give wrong or stale training data: duplicate photos, empty models,
scenes without pairs, photos replaced in place, missing folders, misleading messages (real photos)."""

from __future__ import annotations

import json
import shutil
import pytest
from PIL import Image

from testkit import DEMO_IMAGES
from matchforge.errors import MatchforgeError
from matchforge.sfm.inputs import stage_images
from matchforge.sfm.reconstruct import main as sfm_main

PHOTOS = sorted(DEMO_IMAGES.glob("*.jpg"))


def test_duplicate_photos_are_skipped_when_staging(tmp_path):
    """The same file under another name, and a lossless re-encoding of another photo (PNG of the decoded
    JPEG), are skipped as duplicates of the first in path order."""
    src = tmp_path / "photos"
    src.mkdir()
    for p in PHOTOS[:3]:
        shutil.copy(p, src / p.name)
    shutil.copy(PHOTOS[0], src / "zz_copy.jpg")
    Image.open(PHOTOS[1]).save(src / "zz_reencoded.png")
    staged = stage_images(src, tmp_path / "staged")
    assert staged.names == [p.name for p in PHOTOS[:3]]
    reasons = {s["file"]: s["reason"] for s in staged.skipped}
    assert reasons == {"zz_copy.jpg": f"duplicate of {PHOTOS[0].name} (identical file)",
                       "zz_reencoded.png": f"duplicate of {PHOTOS[1].name} (identical pixels)"}
    assert sorted(p.name for p in (tmp_path / "staged").iterdir()) == staged.names


def test_one_photo_suggests_single_images(tmp_path):
    (tmp_path / "one").mkdir()
    shutil.copy(PHOTOS[0], tmp_path / "one" / PHOTOS[0].name)
    (tmp_path / "one" / "broken.jpg").write_bytes(PHOTOS[1].read_bytes()[:2000])
    with pytest.raises(MatchforgeError) as err:
        sfm_main({}, tmp_path / "one", tmp_path / "out", scene="one")
    msg = str(err.value)
    assert "only 1 readable photo" in msg and "scenes.one.single_images: true" in msg and "broken.jpg" in msg
    record = json.loads((tmp_path / "out" / "work" / "stats.json").read_text())  # written although SfM failed
    assert record["num_images"] == 1 and [s["file"] for s in record["skipped"]] == ["broken.jpg"]
    assert str(tmp_path / "out" / "work" / "stats.json") in msg


def test_names_and_keys_inside_runs_get_the_short_message():
    """One name rule for every scene, dataset, run and test set of every family (they become folders under
    results/), and unknown keys at any depth, inside runs and their sections too, with the closest name.
    (The Snakefile prints exactly this message and stops: test_config_mistakes_get_a_short_message_naming_the_file.)"""
    from matchforge.config_check import check_references, validate_config

    cases = [
        ({"loftr": {"runs": {"r": {"dataset": "d", "train": {"num_worker": 2}}}}}, "unknown config key 'loftr.runs.r.train.num_worker' (did you mean 'num_workers'?)"),
        ({"loftr": {"train": {"img_resise": 320}}}, "unknown config key 'loftr.train.img_resise' (did you mean 'img_resize'?)"),
        ({"loftr": {"runs": {"r": {"dataset": "d", "num_workers": 2}}}}, "'loftr.runs.r.num_workers' is a training option: put it under loftr.runs.r.train"),
        ({"posfeat": {"runs": {"r": {"dataset": "d", "train": {"desc": {"stepz": 3}}}}}}, "unknown config key 'posfeat.runs.r.train.desc.stepz' (did you mean 'steps'?)"),
        ({"shiftfocal": {"sources": {"s": {"type": "tum", "path": "x"}}, "runs": {"r": {"sources": ["s"], "train": {"step": 3}}}}},
         "unknown config key 'shiftfocal.runs.r.train.step' (did you mean 'steps'?)"),
        ({"posfeat": {"runs": {"../../x": {"dataset": "d"}}}}, "'../../x' is not a valid name under posfeat.runs"),
        ({"posfeat": {"runs": {"pf x": {"dataset": "d"}}}}, "'pf x' is not a valid name under posfeat.runs"),
        ({"shiftfocal": {"sources": {"a b": {"type": "tum", "path": "x"}}}}, "'a b' is not a valid name under shiftfocal.sources"),
        ({"loftr": {"testsets": {"t/u": {"type": "dataset", "dataset": "d"}}}}, "'t/u' is not a valid name under loftr.testsets"),
        ({"loftr": {"runs": {"r": {"dataset": "d", "testsets": ["demo_tset"]}}, "testsets": {"demo_test": {"type": "dataset", "dataset": "d"}}}},
         "names unknown test set 'demo_tset' (did you mean 'demo_test'?)"),
        # test sets: one tagged union per family on `type`; the old spelling is named, a key of another type is unknown
        ({"loftr": {"testsets": {"t": {"kind": "dataset", "dataset": "d"}}}},
         "'loftr.testsets.t' needs `type:` one of dataset, imc, megadepth, scannet (`kind: dataset` is now `type: dataset`)"),
        ({"loftr": {"testsets": {"t": {"type": "hpatches"}}}}, "'loftr.testsets.t' needs `type:` one of dataset, imc, megadepth, scannet"),
        ({"loftr": {"testsets": {"t": {"type": "dataset", "dataset": "d", "vis_threshold": "0.2"}}}},
         "unknown config key 'loftr.testsets.t.vis_threshold'"),
        ({"loftr": {"testsets": {"t": {"type": "imc", "root": "x", "img_resise": 480}}}},
         "unknown config key 'loftr.testsets.t.img_resise' (did you mean 'img_resize'?)"),
        ({"posfeat": {"testsets": {"t": {"type": "pose"}}}}, "invalid config at posfeat.testsets.t.dataset: Field required"),
        ({"posfeat": {"testsets": {"t": {"type": "reconstruction", "images": "x", "scene": "demo"}}}},
         "give one of images, scene and eth"),
        ({"localization": {"testsets": {"l": {"dataset": "d"}}}}, "localization.testsets.l.type: Field required (one of dataset, aachen)"),
        ({"localization": {"testsets": {"l": {"type": "aachen", "aachen": "x"}}}}, "type aachen needs aachen and query_pairs"),
    ]
    for entry, expected in cases:
        config = {"scenes": {"demo": {"images": str(DEMO_IMAGES)}}, "datasets": {"d": {"scenes": ["demo"]}}, **entry}
        with pytest.raises(MatchforgeError) as err:
            validate_config(config)
            check_references(config)
        assert expected in str(err.value), (expected, str(err.value))


def test_weights_that_are_not_a_checkpoint_get_a_message_not_a_key_error(tmp_path):
    """A file of plain tensors given as PoSFeat or shift/focal initial weights (an ImageNet backbone, say)."""
    import torch

    from matchforge.posfeat.networks import load_checkpoint
    from matchforge.shiftfocal.recover import load_model

    plain = tmp_path / "resnet18.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, plain)
    with pytest.raises(MatchforgeError, match="not a PoSFeat checkpoint written by matchforge"):
        load_checkpoint(plain)
    with pytest.raises(MatchforgeError, match="not a shift/focal model written by matchforge"):
        load_model(plain)
