"""Hostile and accidental input (issue 32), each case built from real photos or files: photo folders that are not a
scene's, tampered match files, lying metadata, config values past their limits, damaged kept state. The cases that
could exhaust the machine (special files, bombs, headers claiming huge sizes) run in a child process under a memory
limit, in tests/integration/test_hostile_input.py."""

from __future__ import annotations

import json
import re
import os
import shutil
from pathlib import Path

import pytest

from testkit import DEMO_IMAGES, REPO
from matchforge.errors import MatchforgeError


@pytest.mark.parametrize("images, why", [("", "empty"), ("/", "system folder"), ("/usr", "system folder"),
                                         ("..", "working directory")])
def test_a_photo_folder_that_is_no_scene_is_refused_before_anything_is_read(images, why, tmp_path, monkeypatch):
    """`images: ""` used to become the repository root, `images: /` walked the whole file system."""
    from matchforge.sfm.inputs import photo_signature, require_folder

    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # ".." then holds the working directory wherever the repository is
    assert photo_signature(images, tmp_path / "c.json") == ("refused", 0)
    with pytest.raises(MatchforgeError, match=why) as err:
        require_folder(images, "hostile")
    assert "scenes.hostile.images" in str(err.value)
    assert not (tmp_path / "c.json").exists()


def _tampered(path: Path, change) -> Path:
    import h5py
    import numpy as np

    from matchforge.io.matches import MatchWriter

    rng = np.random.default_rng(0)
    with MatchWriter(path, {"name": "test"}) as w:
        w.write("a.jpg", "b.jpg", rng.uniform(0, 470, (50, 2)), rng.uniform(0, 470, (50, 2)))
    with h5py.File(path, "a") as f:
        change(f["a.jpg/b.jpg"])
    return path


def _replace(name, data):
    def change(group):
        del group[name]
        group[name] = data
    return change


@pytest.mark.parametrize("case, change, message", [
    ("huge", lambda g: g["keypoints0"].__setitem__(0, [1e6, -1e6]), "outside the 640x480 image"),
    ("nan", lambda g: g["keypoints1"].__setitem__(3, [float("nan"), 1.0]), "NaN or infinite"),
    ("strings", _replace("keypoints0", [["a", "b"]] * 50), "not (M, 2) numbers"),
    ("three columns", _replace("keypoints1", [[1.0, 2.0, 3.0]] * 50), "not (M, 2) numbers"),
    ("lengths", _replace("keypoints1", [[1.0, 2.0]] * 49), "50 keypoints0 but 49 keypoints1"),
    ("missing", lambda g: g.__delitem__("keypoints1"), "no keypoints0/keypoints1"),
    ("scalar", _replace("keypoints0", 3.0), "not (M, 2) numbers"),
])
def test_a_tampered_match_file_is_refused_with_the_pair_named(case, change, message, tmp_path):
    """Coordinates of +-1e6 used to be scored (MMA 8.5 -> 6.3, pose AUC 70 -> 0 with failed: 0); other damage
    gave raw tracebacks."""
    from matchforge.io.matches import MatchReader
    from matchforge.io.safe import DamagedFile

    path = _tampered(tmp_path / "m.h5", change)
    with MatchReader(path) as reader, pytest.raises(DamagedFile, match=re.escape(message)) as err:
        reader("a.jpg", "b.jpg", sizes=((640, 480), (640, 480)))
    assert "a.jpg / b.jpg" in str(err.value) and "run the matching step again" in str(err.value)


def test_an_array_file_that_would_inflate_past_the_limit_is_refused_before_inflating(tmp_path, monkeypatch):
    """A small .npz whose member inflates to gigabytes (a zip bomb) used to be inflated whole (MemoryError at 3.5 GB);
    the member sizes in the zip directory are checked first. Shown with the limit lowered to 1 MiB."""
    import numpy as np

    from matchforge.io import safe

    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, zeros=np.zeros(4 << 20, np.uint8))  # 4 MiB of zeros in a few KiB
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(safe, "MAX_INFLATED", 1 << 20)
    with pytest.raises(MatchforgeError, match=r"would expand to .* over the 0 GiB limit|would expand to"):
        safe.load_array_file(path)
    monkeypatch.setattr(safe, "MAX_INFLATED", 8 << 20)
    assert safe.load_array_file(path)["zeros"].shape == (4 << 20,)


def test_weights_and_indices_are_read_only_from_regular_files(tmp_path):
    from matchforge.io.safe import load_array_file, load_torch

    (tmp_path / "w.pt").symlink_to("/dev/zero")
    (tmp_path / "i.npz").symlink_to("/dev/zero")
    with pytest.raises(MatchforgeError, match="a character device"):
        load_torch(tmp_path / "w.pt", "initial weights")
    with pytest.raises(MatchforgeError, match="a character device"):
        load_array_file(tmp_path / "i.npz")


def _with_gps(src: Path, positions: list) -> Path:
    from PIL import Image
    from PIL.TiffImagePlugin import IFDRational

    folder = src / "gps"
    folder.mkdir()
    for p, pos in zip(sorted(DEMO_IMAGES.glob("*.jpg")), positions):
        im = Image.open(p)
        exif = im.getexif()
        if pos is not None:
            (lat, lon) = pos
            nan = IFDRational(0, 0)  # what a broken writer leaves: 0/0, read back as NaN
            exif.get_ifd(0x8825).update({1: "N", 2: (nan if lat != lat else lat, 0.0, 0.0), 3: "E", 4: (lon, 0.0, 0.0)})
        im.save(folder / p.name, exif=exif)
    return folder


@pytest.mark.parametrize("positions, usable", [
    ([(0.0, 0.0)] * 4, False),  # every photo at 0, 0 (a camera without a fix): used to give 0 pairs
    ([(48.0, 2.0), (float("nan"), 2.0), (48.0, 2.0), (48.1, 2.0)], False),  # NaN: used to leave photos unmatched
    ([(48.0, 2.0)] * 4, False),  # all at one place: nothing to pair by
    ([(48.0, 2.0), (48.1, 2.0), (95.0, 2.0), (48.2, 2.1)], False),  # latitude out of range
    ([(48.0, 2.0), (48.001, 2.0), (48.002, 2.0), (48.003, 2.001)], True),
])
def test_degenerate_gps_is_treated_as_absent(positions, usable, tmp_path):
    """The auto matcher pairs by GPS only when every photo has a valid position and they differ; otherwise it
    retrieves by appearance, and the photos without a usable position are named."""
    from matchforge.sfm.inputs import stage_images
    from matchforge.sfm.reconstruct import choose_matcher

    staged = stage_images(_with_gps(tmp_path, positions), tmp_path / "staged")
    assert staged.has_gps is usable and bool(staged.gps_problems()) is not usable
    conf = {"matcher": "auto", "exhaustive_max_images": 2}
    assert choose_matcher(conf, 4, staged.has_gps) == ("spatial" if usable else "vocab_tree")


def test_a_garbage_vocabulary_is_named_before_colmap_aborts(tmp_path):
    """A garbage sfm.vocab_tree_path made COLMAP abort the job (exit 134, "Check failed: file_version == 1") after
    feature extraction, naming no option; a folder there was reported as missing."""
    from matchforge.sfm.reconstruct import vocab_tree

    garbage = tmp_path / "vocab.bin"
    garbage.write_bytes(os.urandom(4096))
    conf = {"vocab_tree_path": str(garbage)}
    with pytest.raises(MatchforgeError, match="sfm.vocab_tree_path is not a COLMAP") as err:
        vocab_tree(conf, tmp_path / "database.db", tmp_path, "s")
    assert "vocab_tree_path: null" in str(err.value)
    with pytest.raises(MatchforgeError, match="is a folder"):
        vocab_tree({"vocab_tree_path": str(tmp_path)}, tmp_path / "database.db", tmp_path, "s")


@pytest.mark.parametrize("scenes, message", [
    ({123: {"images": "photos"}}, "the name 123 under scenes is read by YAML as a number, not text"),
    ({True: {"images": "photos"}}, "read by YAML as a boolean"),
    ({"x" * 300: {"images": "photos"}}, "has 300 characters, over 64"),
    ({"a/b": {"images": "photos"}}, "not a valid name under scenes"),
])
def test_odd_names_end_in_one_line_naming_the_key(scenes, message):
    """A numeric scene name used to end in a traceback from a regular expression; a 300-character one in Snakemake's
    PeriodicWildcardError."""
    from matchforge.config_check import validate_config

    with pytest.raises(MatchforgeError, match=re.escape(message)):
        validate_config({"scenes": scenes, "datasets": {}})


def test_messages_name_the_config_files_in_use_and_reproduce_the_invocation(monkeypatch):
    """After `--configfile my.yaml --replace-workflow-config`, messages used to name config/config.yaml, and the
    damaged-depth rebuild command omitted the user's config file (copied as is, it found no rule)."""
    from types import SimpleNamespace

    import yaml

    from matchforge.conf import CONFIG_ARGS_ENV, CONFIG_FILES_ENV, config_source
    from matchforge.io.depth import rebuild_hint
    from matchforge.workflow.glue import prepare

    monkeypatch.setenv(CONFIG_FILES_ENV, "")
    monkeypatch.setenv(CONFIG_ARGS_ENV, "")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    settings = SimpleNamespace(configfiles=["my lab.yaml"], replace_workflow_config=True)
    prepare(config, ["my lab.yaml", "config/config.yaml"], None, settings)
    assert config_source() == "my lab.yaml"
    hint = rebuild_hint(Path("results/s/depth/h5/a.h5"))
    assert hint.endswith("results/s/depth/align.json --configfile 'my lab.yaml' --replace-workflow-config`, then run "
                         "snakemake as before (the jobs after it rerun)")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    prepare(config, ["config/config.yaml"], None, SimpleNamespace(configfiles=[], replace_workflow_config=False))
    assert config_source() == "config/config.yaml" and "--configfile" not in rebuild_hint(Path("results/s/depth/h5/a.h5"))


@pytest.mark.parametrize("path, value, message", [
    ("loftr.train.img_resize", 10**9, "loftr.train.img_resize: Input should be less than or equal to 16384"),
    ("datasets.demo.loftr.n_samples_per_subset", 10**12, "datasets.demo.loftr.n_samples_per_subset: Input should be "
                                                         "less than or equal to 10000000"),
    ("posfeat.train.data.image_size", [160000, 128], "posfeat.train.data.image_size.0: Input should be less than or "
                                                     "equal to 16384"),
    ("shiftfocal.train.resolution", 4096, "shiftfocal.train.resolution: Input should be less than or equal to 512"),
    ("loftr.runs.demo_ds.train.batch_size", 10**8, "loftr.runs.demo_ds.train.batch_size: Input should be less than or "
                                                   "equal to 4096"),
    ("sfm.max_num_features", {"a": list(range(10000))}, "sfm.max_num_features: Input should be a valid integer (got "
                                                        "{'a': [0, 1, 2, 3,"),
    ("scene_info.max_pairs_per_bucket", float("nan"), "scene_info.max_pairs_per_bucket: Input should be a finite number"),
])
def test_a_config_value_past_its_limit_ends_in_one_line_naming_the_key(path, value, message):
    """Sizes that allocate (an img_resize of 1e9, a batch of 1e8) used to pass planning and fail (or exhaust the
    machine) inside a job; a nested value's message repeated all of it."""
    import yaml

    from matchforge.config_check import check_references, validate_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    *parents, key = path.split(".")
    section = config
    for name in parents:
        section = section.setdefault(name, {})
    section[key] = value
    with pytest.raises(MatchforgeError) as err:
        validate_config(config)
        check_references(config)
    assert message in str(err.value) and "\n" not in str(err.value) and len(str(err.value)) < 500, str(err.value)


def test_a_depth_file_whose_header_claims_a_huge_map_is_refused_before_decompressing(tmp_path):
    """A few-KB H5 whose chunked 'depth' claims 100000 x 100000 px (40 GB as float32) was decompressed whole."""
    import h5py

    from matchforge.io.depth import read_depth, read_depth_padded
    from matchforge.io.safe import DamagedFile

    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("depth", shape=(100000, 100000), dtype="f4", chunks=(256, 256), compression="gzip")
    assert path.stat().st_size < 100_000
    for read in (read_depth, lambda p: read_depth_padded(p, None)):
        with pytest.raises(DamagedFile, match=r"claims 100000x100000 px, over the limit of 250 MP"):
            read(path)


def _with_exif(folder: Path, tags: dict[str, dict[int, object]]) -> Path:
    """Copies of the first demo photos with EXIF tags set (0x0112 in the main IFD, others in the Exif IFD)."""
    from PIL import Image

    folder.mkdir()
    for p, (name, values) in zip(sorted(DEMO_IMAGES.glob("*.jpg")), tags.items()):
        im = Image.open(p)
        exif = Image.Exif()
        for tag, value in values.items():
            (exif if tag == 0x0112 else exif.get_ifd(0x8769))[tag] = value
        im.save(folder / name, exif=exif, quality=95)
    return folder


def test_lying_exif_orientation_and_focal_are_treated_as_absent(tmp_path):
    """An orientation of 99 and a 35 mm-equivalent focal of 65535 mm (COLMAP took it as a 2-million-pixel focal
    prior, which its two-view verification trusts) are named in the log and ignored; a real 28 mm is kept."""
    import pycolmap

    from matchforge.sfm.inputs import stage_images
    from matchforge.sfm.reconstruct import distrust_focal_priors

    folder = _with_exif(tmp_path / "photos", {"turned.jpg": {0x0112: 99}, "lying.jpg": {0xA405: 65535},
                                              "honest.jpg": {0xA405: 28}})
    staged = stage_images(folder, tmp_path / "staged")
    assert sorted(staged.names) == ["honest.jpg", "lying.jpg", "turned.jpg"] and staged.rotated == []
    assert staged.metadata_problems == ["turned.jpg: EXIF orientation '99' is not one of 1-8; treated as absent "
                                        "(stored upright)"]
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_RADIAL"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size, extraction.num_threads = 320, 1
    database = tmp_path / "database.db"
    pycolmap.extract_features(database, staged.folder, camera_mode=pycolmap.CameraMode.PER_IMAGE,
                              reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)
    problems = distrust_focal_priors(database, "s")
    assert len(problems) == 1 and problems[0].startswith("lying.jpg: the EXIF focal length gives ") and \
        "outside 0.1-10); treated as absent" in problems[0]
    db = pycolmap.Database.open(database)
    cams = {img.name: db.read_camera(img.camera_id) for img in db.read_all_images()}
    db.close()
    assert not cams["lying.jpg"].has_prior_focal_length
    assert cams["lying.jpg"].focal_length == pytest.approx(1.2 * max(cams["lying.jpg"].width, cams["lying.jpg"].height))
    honest = cams["honest.jpg"]
    assert honest.has_prior_focal_length and 0.7 < honest.focal_length / max(honest.width, honest.height) < 0.85  # 28 mm


def test_photos_that_do_not_fit_an_imported_models_cameras_are_left_out(tmp_path):
    """An imported COLMAP model whose camera says 780x1063 for a photo that is now 390x531 (resized after SfM):
    its keypoints and intrinsics refer to other pixels, so the photo is dropped and named, not used."""
    import pycolmap
    from PIL import Image

    from matchforge.sfm.reconstruct import drop_misfit_photos

    folder = tmp_path / "photos"
    folder.mkdir()
    rec = pycolmap.Reconstruction()
    for i, p in enumerate(sorted(DEMO_IMAGES.glob("*.jpg"))[:3], start=1):
        with Image.open(p) as im:
            w, h = im.size
            (im.resize((w // 2, h // 2)) if i == 2 else im).save(folder / p.name)
        rec.add_camera_with_trivial_rig(pycolmap.Camera.create_from_model_id(i, pycolmap.CameraModelId.PINHOLE,
                                                                             1.2 * max(w, h), w, h))
        image = pycolmap.Image(name=p.name, camera_id=i, image_id=i)
        rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d())
    dropped = drop_misfit_photos(rec, folder, "s")
    misfit = sorted(DEMO_IMAGES.glob("*.jpg"))[1].name
    assert [d["file"] for d in dropped] == [misfit] and rec.num_reg_images() == 2
    assert re.search(r"the photo is \d+x\d+ px, its camera 2 says \d+x\d+; left out", dropped[0]["reason"])


@pytest.mark.parametrize("content", ["[1, 2, 3]", '{"a.jpg": 5}', "{not json"])
def test_a_damaged_photo_cache_is_set_aside_and_planning_goes_on(content, tmp_path):
    """The photo fingerprint cache read at planning: valid JSON of the wrong shape used to raise an AttributeError or
    TypeError on every `snakemake` call."""
    from matchforge.sfm.inputs import photo_signature

    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted(DEMO_IMAGES.glob("*.jpg"))[:2]:
        shutil.copy(p, folder / p.name)
    fresh = photo_signature(folder, tmp_path / "fresh.json")
    cache = tmp_path / "cache.json"
    cache.write_text(content)
    assert photo_signature(folder, cache) == fresh
    assert len(list(tmp_path.glob("cache.json.damaged-*"))) == 1 and json.loads(cache.read_text())


@pytest.mark.parametrize("content", ["[1]", '{"options": 3}', "\x00\x00"])
def test_a_damaged_run_identity_is_set_aside_and_the_run_starts_over(content, tmp_path, caplog):
    """A training run's identity record (checkpoints/identity.json), damaged: every rerun of the job used to fail."""
    from matchforge.training.engine import Engine, RunSpec, prepare

    spec = RunSpec(out_dir=tmp_path, name="run x", identity={"lr": 1}, data_fingerprint="d", engine=Engine())
    spec.ckpt_dir.mkdir()
    (spec.ckpt_dir / "identity.json").write_text(content)
    with caplog.at_level("WARNING"):
        assert prepare(spec) == (None, None)
    assert "the run's identity record" in caplog.text and list(spec.ckpt_dir.glob("identity.json.damaged-*"))
    assert json.loads((spec.ckpt_dir / "identity.json").read_text())["options"] == {"lr": 1}
