"""Photo folders built from the bundled demo photos."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

from testkit import DEMO_IMAGES


def sideways_photo_folder(tmp_path: Path) -> tuple[Path, tuple[int, int], tuple[int, int]]:
    """photos/ with two demo photos (the second stored sideways with an EXIF orientation tag) and a broken file;
    returns the folder and the two photos' (width, height) as displayed."""
    photos = tmp_path / "photos"
    photos.mkdir()
    first, second = sorted(DEMO_IMAGES.glob("*.jpg"))[:2]
    shutil.copy(first, photos / "a.jpg")
    # the same photo stored sideways with an EXIF tag saying so: depth must come out upright
    img = Image.open(second)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.transpose(Image.Transpose.ROTATE_90).save(photos / "b.jpg", exif=exif)
    (photos / "broken.jpg").write_bytes(first.read_bytes()[:2000])
    return photos, Image.open(first).size, Image.open(second).size
