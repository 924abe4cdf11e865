"""Photos: read, write, size and resize (with the matching intrinsics update).

Arrays are ``H x W x 3`` uint8 in **RGB** order (``gray``: ``H x W`` uint8); OpenCV's BGR order
never leaves this module. ``unchanged`` returns the file's own channels and bit depth (16-bit depth
PNGs, EXR). Sizes are ``(width, height)`` in pixels.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from PIL import Image

from matchforge.limits import MAX_PHOTO_PIXELS

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # read before OpenCV's first EXR decode (3D Ken Burns depth)
# OpenCV refuses to decode an image whose header claims more pixels than this (its default is 1 GP, 3 GB decoded)
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PHOTO_PIXELS))
import cv2  # noqa: E402
import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.files import not_regular
from matchforge.io.write import write_bytes

_FLAGS = {"rgb": cv2.IMREAD_COLOR, "gray": cv2.IMREAD_GRAYSCALE, "unchanged": cv2.IMREAD_UNCHANGED,
          "anydepth": cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR}


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path) -> list[tuple[str, Path]]:
    """(name relative to ``folder``, path) of every image below ``folder``, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MatchforgeError("image folder not found", fix="check the path", path=folder)
    return [(p.relative_to(folder).as_posix(), p) for p in sorted(folder.rglob("*"))
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]


def read_image(path: str | Path, mode: str = "rgb", *, required: bool = True, scene: str | None = None,
               fix: str = "check that the file exists and is a readable image") -> np.ndarray | None:
    """The image at ``path`` in ``mode`` (``rgb``, ``gray``, ``unchanged`` or ``anydepth``).

    An unreadable file raises a :class:`MatchforgeError` naming it, or returns ``None`` when
    ``required`` is false (callers that skip and report such files).
    """
    special = not_regular(path)  # a FIFO would block, a device be read until memory runs out
    try:
        img = None if special else cv2.imread(str(path), _FLAGS[mode])
    except cv2.error:  # some decoders (EXR without support) raise instead of returning None
        img = None
    if img is None:
        if not required:
            return None
        why = special or _oversized(path)
        raise MatchforgeError(f"cannot read image{': ' + why if why else ''}", scene=scene, path=path, fix=fix)
    if mode == "rgb":
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def _oversized(path: str | Path) -> str | None:
    """Why OpenCV refused ``path`` when its header claims more than :data:`MAX_PHOTO_PIXELS` (PIL reads only the
    header), else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                pixels = im.size[0] * im.size[1]
    except Image.DecompressionBombError as err:  # PIL's own, lower limit: its message has the count
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = int(found.group(1)) if found else 0
    except Exception:  # not an image PIL knows: nothing to add
        return None
    if pixels <= MAX_PHOTO_PIXELS:
        return None
    return f"its header claims {pixels} pixels, over the limit of {MAX_PHOTO_PIXELS / 1e6:.0f} MP (not decoded)"


def write_image(path: str | Path, image: np.ndarray, *, quality: int | None = None) -> None:
    """Write an RGB (or gray) uint8 image; the format follows the suffix; ``quality`` is JPEG quality."""
    path = Path(path)
    img = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if quality is not None else []
    try:
        ok, data = cv2.imencode(path.suffix, img, params)
    except cv2.error:
        ok = False
    if not ok:
        raise MatchforgeError(f"cannot encode the image as '{path.suffix}'", path=path,
                              fix="use an image suffix OpenCV writes (.png, .jpg, .tif, ...)")
    write_bytes(path, data.tobytes(), "image")


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the stored pixels, from the header only (EXIF orientation is not applied, as in COLMAP)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def resized_wh(w: int, h: int, resize: int | None) -> tuple[int, int]:
    """(w, h) scaled so that the long side is ``resize`` (rounded; None or 0 keeps the size), as LoFTR's ``get_resized_wh``."""
    if not resize:
        return w, h
    s = resize / max(h, w)
    return int(round(w * s)), int(round(h * s))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (W, H): area averaging when shrinking, bilinear when enlarging."""
    h, w = image.shape[:2]
    if (w, h) == tuple(size):
        return image
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA if size[0] < w else cv2.INTER_LINEAR)


def resize_with_K(image: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize to ``size`` (W, H) and scale K's rows accordingly.

    With pixel corners at 0 (matchforge's convention, :mod:`matchforge.geometry.pixels`) a point's
    coordinates scale exactly by W'/W and H'/H, so ``K' = diag(W'/W, H'/H, 1) K``.
    """
    h, w = image.shape[:2]
    S = np.diag([size[0] / w, size[1] / h, 1.0])
    return resize(image, size), S @ np.asarray(K, dtype=np.float64)
