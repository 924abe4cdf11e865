"""Hostile and accidental input (issue 32), each case built from real photos: special files among the photos and
photo folders that are not a scene's. The risky cases run in a child process under a memory limit, so a regression
fails the test instead of taking the machine down."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testkit import DEMO_IMAGES, REPO

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


def _alias_bomb(levels: int = 9) -> str:
    """A YAML value of a few hundred bytes that stands for 9**levels strings (each level repeats the one below)."""
    value = "&l0 [x, x, x, x, x, x, x, x, x]"
    for i in range(1, levels):
        value = f"&l{i} [{value}, " + ", ".join([f"*l{i - 1}"] * 8) + "]"
    return value


def test_a_yaml_alias_bomb_in_the_config_is_refused_in_seconds_under_a_memory_limit(tmp_path):
    """387 million values from 600 bytes: the config check used to expand them while validating (3.5 GB, 46 s,
    then a traceback); the walk counts each use of an alias and stops at the limit."""
    text = (REPO / "config" / "config.yaml").read_text() + f"\nreport: {{bomb: {_alias_bomb()}}}\n"
    assert len(text) - len((REPO / "config" / "config.yaml").read_text()) < 1000
    (tmp_path / "bomb.yaml").write_text(text)
    res = run_limited(f"""
        import json, time, yaml
        from matchforge.config_check import validate_config
        from matchforge.errors import MatchforgeError
        config = yaml.safe_load(open({str(tmp_path / 'bomb.yaml')!r}))
        t = time.time()
        try:
            validate_config(config)
            message = "accepted"
        except MatchforgeError as err:
            message = str(err)
        print(json.dumps({{"message": message, "seconds": time.time() - t}}))
    """, timeout=60)
    assert "more than 100000 values (at report.bomb)" in res["message"] and "\n" not in res["message"], res
    assert res["seconds"] < 5


def test_an_array_file_whose_header_claims_more_than_it_holds_is_refused_before_allocating(tmp_path):
    """A 100-byte .npy whose header claims 10^12 float64 values: numpy allocates the claimed size before reading."""
    import numpy as np

    path = tmp_path / "pairs.npy"
    np.save(path, np.zeros(4))
    raw = path.read_bytes()
    header_end = raw.index(b"\n") + 1
    header = raw[10:header_end].decode("latin1").replace("(4,)", "(1000000000000,)")
    header = header.rstrip("\n").rstrip().ljust(((10 + len(header) + 63) // 64) * 64 - 11) + "\n"
    path.write_bytes(raw[:8] + len(header).to_bytes(2, "little") + header.encode("latin1") + np.zeros(4).tobytes())
    res = run_limited(f"""
        import json
        from matchforge.io.safe import load_array_file
        from matchforge.errors import MatchforgeError
        try:
            load_array_file({str(path)!r}, "IMC pair list")
            message = "read"
        except MatchforgeError as err:
            message = str(err)
        print(json.dumps({{"message": message}}))
    """)
    assert "IMC pair list claims an array of (1000000000000,) float64 (8000000000000 bytes) but holds 32" in \
        res["message"], res


def test_a_test_set_image_whose_header_claims_a_huge_size_is_refused_without_decoding(tmp_path):
    """Test sets, depth PNGs and datasets read images through OpenCV, whose own limit is 1 GP (3 GB decoded): a
    1 KB PNG claiming 30000 x 30000 (0.9 GP) was decoded. Now refused from the header, in a child process under the
    memory limit, with the size and the limit named; a FIFO with an image name is refused, not waited on."""
    import struct
    import zlib

    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "small.png")
    data = bytearray((tmp_path / "small.png").read_bytes())
    ihdr = data[12:29]
    ihdr[4:12] = struct.pack(">II", 30000, 30000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    os.mkfifo(tmp_path / "pipe.png")
    res = run_limited(f"""
        import json
        from matchforge.io.images import read_image
        from matchforge.errors import MatchforgeError
        said = []
        for name in ("bomb.png", "pipe.png"):
            try:
                read_image({str(tmp_path)!r} + "/" + name)
                said.append("read")
            except MatchforgeError as err:
                said.append(str(err))
        print(json.dumps(said))
    """, timeout=60)
    assert "cannot read image: its header claims 900000000 pixels, over the limit of 250 MP (not decoded)" in res[0]
    assert "cannot read image: a FIFO" in res[1]


def test_a_damaged_kept_sfm_database_is_set_aside_and_rebuilt(tmp_path):
    """The SfM database kept for reruns, cut in half, used to fail every rerun ("No registered database factory
    succeeded"); a record of the wrong shape gave an AttributeError on every rerun. Both are set aside and rebuilt."""
    from testkit import FAST_SFM
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
