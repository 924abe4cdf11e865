"""Hostile and accidental input (issue 32), each case built from real photos: special files among the photos and
photo folders that are not a scene's. The risky cases run in a child process under a memory limit, so a regression
fails the test instead of taking the machine down."""

from __future__ import annotations

import json
import re
import os
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import DEMO_IMAGES, REPO
from matchforge.errors import MatchforgeError

MEMORY_LIMIT = 3 << 30  # address space of the child process (bytes)


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(code: str, timeout: float = 120) -> dict:
    """Run ``code`` (which prints one JSON line last) in a child Python under :data:`MEMORY_LIMIT` and a timeout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_limited, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def photos_with_devices(tmp_path: Path) -> Path:
    """Three real photos, a link to /dev/zero and a FIFO, both with photo names."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted(DEMO_IMAGES.glob("*.jpg"))[:3]:
        shutil.copy(p, folder / p.name)
    (folder / "zero.jpg").symlink_to("/dev/zero")
    os.mkfifo(folder / "pipe.jpg")
    return folder


def test_a_link_to_a_device_or_a_fifo_among_the_photos_is_skipped_not_read(photos_with_devices, tmp_path):
    """Planning (the photo fingerprint) and staging read only regular files: /dev/zero used to be read into memory
    until the kernel killed the process (19 GB), a FIFO would block forever."""
    res = run_limited(f"""
        import json
        from pathlib import Path
        from matchforge.sfm.inputs import photo_signature, stage_images
        digest, n = photo_signature({str(photos_with_devices)!r}, {str(tmp_path / 'cache.json')!r})
        staged = stage_images(Path({str(photos_with_devices)!r}), Path({str(tmp_path / 'staged')!r}))
        print(json.dumps({{"n": n, "names": staged.names, "skipped": staged.skipped}}))
    """)
    assert res["n"] == 5 and len(res["names"]) == 3
    reasons = {s["file"]: s["reason"] for s in res["skipped"]}
    assert reasons["zero.jpg"].startswith("a character device (through a symbolic link)")
    assert reasons["pipe.jpg"].startswith("a FIFO") and "only regular files" in reasons["pipe.jpg"]


def test_the_fingerprint_changes_when_a_device_becomes_a_photo(photos_with_devices, tmp_path):
    from matchforge.sfm.inputs import photo_signature

    before = photo_signature(photos_with_devices, tmp_path / "c.json")
    (photos_with_devices / "zero.jpg").unlink()
    shutil.copy(sorted(DEMO_IMAGES.glob("*.jpg"))[5], photos_with_devices / "zero.jpg")
    assert photo_signature(photos_with_devices, tmp_path / "c.json") != before


@pytest.mark.parametrize("images, why", [("", "empty"), ("/", "system folder"), ("/usr", "system folder"),
                                         ("..", "working directory")])
def test_a_photo_folder_that_is_no_scene_is_refused_before_anything_is_read(images, why, tmp_path, monkeypatch):
    """`images: ""` used to become the repository root, `images: /` walked the whole file system."""
    from matchforge.sfm.inputs import photo_signature, require_folder

    monkeypatch.chdir(REPO)
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


@pytest.mark.slow
def test_a_damaged_kept_sfm_database_is_set_aside_and_rebuilt(tmp_path):
    """The SfM database kept for reruns, cut in half, used to fail every rerun ("No registered database factory
    succeeded"); a record of the wrong shape gave an AttributeError on every rerun. Both are set aside and rebuilt."""
    from conftest import FAST_SFM
    from matchforge.sfm.reconstruct import main as sfm_main

    out = tmp_path / "sfm"
    first = sfm_main(FAST_SFM, DEMO_IMAGES, out, scene="kept")
    work = out / "work"
    db = work / "database.db"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    again = sfm_main(FAST_SFM, DEMO_IMAGES, out, scene="kept")
    assert "database.db unreadable" in again["database"]["reason"] and list(work.glob("database.db.damaged-*"))
    assert again["num_points3D"] == first["num_points3D"]  # deterministic: the rebuilt model is the same
    (work / "database.json").write_text("[1, 2, 3]")
    third = sfm_main(FAST_SFM, DEMO_IMAGES, out, scene="kept")
    assert "not a database record" in third["database"]["reason"] and third["num_points3D"] == first["num_points3D"]


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
    from matchforge.config_schema import validate_config

    with pytest.raises(MatchforgeError, match=re.escape(message)):
        validate_config({"scenes": scenes, "datasets": {}})


def test_messages_name_the_config_files_in_use_and_reproduce_the_invocation(monkeypatch):
    """After `--configfile my.yaml --replace-workflow-config`, messages used to name config/config.yaml, and the
    damaged-depth rebuild command omitted the user's config file (copied as is, it found no rule)."""
    from types import SimpleNamespace

    import yaml

    from matchforge.conf import CONFIG_ARGS_ENV, CONFIG_FILES_ENV, config_source
    from matchforge.io.depth import rebuild_hint
    from matchforge.workflow import prepare

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


def test_a_photo_whose_header_claims_a_huge_size_is_skipped_without_decoding(tmp_path):
    """A 1 KB PNG whose header says 40000 x 40000 px (1.6 GP, 4.8 GB decoded) is skipped before decoding, in a child
    process under the memory limit, with the size and the limit named."""
    import struct
    import zlib

    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted(DEMO_IMAGES.glob("*.jpg"))[:2]:
        shutil.copy(p, folder / p.name)
    Image.new("RGB", (32, 32)).save(tmp_path / "small.png")
    data = bytearray((tmp_path / "small.png").read_bytes())
    ihdr = data[12:29]  # chunk type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", 40000, 40000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    (folder / "bomb.png").write_bytes(bytes(data))
    res = run_limited(f"""
        import json
        from pathlib import Path
        from matchforge.sfm.inputs import stage_images
        staged = stage_images(Path({str(folder)!r}), Path({str(tmp_path / 'staged')!r}))
        print(json.dumps({{"names": staged.names, "skipped": staged.skipped}}))
    """)
    assert len(res["names"]) == 2 and [s["file"] for s in res["skipped"]] == ["bomb.png"]
    reason = res["skipped"][0]["reason"]
    assert "1600000000 pixels" in reason and "not decoded (limit 250 MP)" in reason, reason
