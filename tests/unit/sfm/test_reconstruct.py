"""SfM stage on real photos: accuracy against Image Matching Challenge poses, and bad input."""

from __future__ import annotations
import shutil
import numpy as np
import pytest
from PIL import Image

from matchforge.errors import MatchforgeError
from matchforge.sfm.inputs import stage_images
from matchforge.sfm.reconstruct import main as sfm_main

from testkit import DEMO_IMAGES


def test_stage_images_skips_broken_and_honours_exif(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    good = sorted(DEMO_IMAGES.glob("*.jpg"))[:2]
    shutil.copy(good[0], src / "ok.jpg")
    # a truncated JPEG, a text file pretending to be a JPEG, and a non-image file (ignored)
    data = good[1].read_bytes()
    (src / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (src / "notes.jpg").write_text("not an image")
    (src / "readme.txt").write_text("ignored")
    # links: one to a photo (staged), one to a file that is gone, one to itself, and a folder link back up
    (src / "zz_linked.jpg").symlink_to(good[0])
    (src / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (src / "loop.jpg").symlink_to(src / "loop.jpg")
    (src / "up").symlink_to(src)
    # a photo stored sideways with EXIF orientation 6 (rotate 90 deg clockwise to view)
    upright = Image.open(good[1]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(src / "sideways.jpg", exif=exif, quality=95)

    staged = stage_images(src, tmp_path / "staged")
    assert sorted(staged.names) == ["ok.jpg", "sideways.jpg"]
    skipped = {s["file"]: s["reason"] for s in staged.skipped}
    assert set(skipped) == {"truncated.jpg", "notes.jpg", "zz_linked.jpg", "dangling.jpg", "loop.jpg"}
    assert skipped["zz_linked.jpg"] == "duplicate of ok.jpg (identical file)"
    assert skipped["dangling.jpg"] == f"a symbolic link to '{tmp_path / 'gone.jpg'}', which does not exist"
    assert skipped["loop.jpg"] == "a symbolic link loop"
    assert skipped["truncated.jpg"].startswith("unreadable") and skipped["notes.jpg"].startswith("unreadable")
    assert staged.rotated == ["sideways.jpg"]
    fixed = Image.open(tmp_path / "staged" / "sideways.jpg")
    assert fixed.size == upright.size
    diff = np.abs(np.asarray(fixed, dtype=float) - np.asarray(upright, dtype=float)).mean()
    assert diff < 4.0  # JPEG re-encoding only


def test_empty_folder_fails_with_scene_and_fix(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MatchforgeError) as err:
        sfm_main({}, tmp_path / "empty", tmp_path / "out", scene="empty_scene")
    msg = str(err.value)
    assert "scene 'empty_scene'" in msg and "no readable photos" in msg and "Fix:" in msg


def test_single_image_fails(tmp_path):
    (tmp_path / "one").mkdir()
    shutil.copy(next(DEMO_IMAGES.glob("*.jpg")), tmp_path / "one")
    with pytest.raises(MatchforgeError, match=r"scene 'lonely'.*at least 2 overlapping photos.*Fix: add more photos"):
        sfm_main({}, tmp_path / "one", tmp_path / "out", scene="lonely")
