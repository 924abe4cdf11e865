"""Find a scene's photos, skip unreadable ones and duplicates (with the reason), and honour EXIF orientation.

Duplicates: a photo whose file bytes, or whose decoded pixels, equal an earlier photo's (in sorted path
order) is skipped as ``duplicate of <file>``. Scraped collections hold the same photo under several
names; kept twice it would register at one pose with overlap 1.0, and a split by images could put the
copy in test and the original in train.

COLMAP reads pixels as stored and ignores the EXIF orientation tag, so a portrait photo taken with
a rotated phone would enter SfM sideways. Photos with a non-trivial orientation are rewritten
upright into the staging folder.

Photos larger than the SfM working size (``sfm.max_image_size``) are staged at that size. COLMAP extracts
features at the working size but keeps the camera at the full size, so the pixel thresholds of
mapping (reprojection error, bundle adjustment) are ~12 times too strict for a 12000 px photo among
1000 px ones; one such photo cost a 10-photo scene 7 registrations (tests/integration/test_sfm.py). All other
photos are linked unchanged. Staged copies keep the EXIF focal length, so COLMAP's focal prior
scales with them.

Each staged photo's perceptual hash (``imagehash.phash``, 64 bits) is recorded, so that later stages
can keep near-duplicates (a re-encoded or resized copy) in one split.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import imagehash
from PIL import Image, ImageFile, ImageOps
from tqdm import tqdm

from matchforge.errors import MatchforgeError
from matchforge.io.files import not_regular
from matchforge.io.images import IMAGE_SUFFIXES
from matchforge.io.write import read_kept_json
from matchforge.limits import MAX_PHOTO_PIXELS
from matchforge.conf import config_source

logger = logging.getLogger(__name__)

EXIF_ORIENTATION = 0x0112
EXIF_GPS = 0x8825


@dataclass
class StagedImages:
    """Photos ready for COLMAP: names are flat (``sub/a.jpg`` -> ``sub__a.jpg``) with unique stems."""

    folder: Path
    names: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}
    rotated: list[str] = field(default_factory=list)  # staged names rewritten upright from EXIF
    resized: dict[str, list[int]] = field(default_factory=dict)  # staged name -> [w, h] of the original (larger) photo
    digests: dict[str, str] = field(default_factory=dict)  # staged name -> pixel digest (stats.json photo_digests)
    hashes: dict[str, str] = field(default_factory=dict)  # staged name -> perceptual hash, hex (stats.json photo_hashes)
    gps: dict[str, tuple[float, float] | None] = field(default_factory=dict)  # staged name -> (lat, lon), None: unusable
    metadata_problems: list[str] = field(default_factory=list)  # EXIF values treated as absent, one line each

    @property
    def has_gps(self) -> bool:
        """Spatial matching can trust the GPS: every photo has a valid position and they are not all at one place."""
        found = list(self.gps.values())
        return bool(found) and all(found) and len(set(found)) > 1

    def gps_problems(self) -> list[str]:
        """Why the GPS is not used, per photo or for the scene (for the log)."""
        bad = [f"{n} (no valid position: absent, NaN, out of range or 0, 0)" for n, v in self.gps.items() if not v]
        if bad:
            return bad
        return ["every photo at the same position"] if self.gps and len(set(self.gps.values())) == 1 else []

    @property
    def num_found(self) -> int:
        return len(self.names) + len(self.skipped)


# folders that hold a system, never a scene's photos: scanning one reads devices, other users' files, or everything
SYSTEM_FOLDERS = frozenset({"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc",
                            "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var"})
CHUNK = 1 << 20  # bytes read at a time when hashing a file


def folder_problem(images: str | Path) -> str | None:
    """Why ``images`` cannot be a scene's photo folder, or None: an empty path (it would mean the working
    directory), a system folder or the home folder itself, or a folder that holds the working directory (its
    ``results/`` would become photos)."""
    if not str(images).strip():
        return "the path is empty (it would mean the working directory and everything below it)"
    real = Path(images).expanduser().resolve()
    if str(real) in SYSTEM_FOLDERS or real == Path.home().resolve():
        return f"'{real}' is a system folder, not a folder of photos (scanning it would read devices and other users' files)"
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        return f"'{real}' holds the workflow's working directory {cwd}: its results/ would become photos"
    return None


def require_folder(images: str | Path, scene: str) -> None:
    """Fail with the config key, the path and the fix when a scene's images folder is missing or refused
    (:func:`folder_problem`)."""
    problem = folder_problem(images)
    if problem:
        raise MatchforgeError(f"scenes.{scene}.images is refused: {problem}", scene=scene, path=images,
                              fix=f"set scenes.{scene}.images in {config_source()} to the folder that holds the scene's photos")
    if not Path(images).is_dir():
        raise MatchforgeError(f"the images folder does not exist (config key scenes.{scene}.images)", scene=scene,
                              path=images, fix=f"set scenes.{scene}.images in {config_source()} to a folder of photos")


def file_digest(path: str | Path) -> str:
    """Content digest of a regular file, read in bounded chunks."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def skipped_summary(skipped: list[dict[str, str]], limit: int = 5) -> str:
    """``a.jpg (reason); b.jpg (reason); ... and N more`` for messages."""
    parts = [f"{s['file']} ({s['reason']})" for s in skipped[:limit]]
    more = f"; and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return "; ".join(parts) + more


def find_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted by name), links that point nowhere included (staging
    lists them as skipped); other files are ignored."""
    return [Path(entry.path) for _, entry in sorted(_scan(Path(folder)), key=lambda x: x[0])]


def _scan(folder: Path, prefix: str = "", seen: set[tuple[int, int]] | None = None) -> Iterator[tuple[str, os.DirEntry]]:
    """(relative name, entry) of every image file below ``folder``, in no particular order. Hidden entries
    are skipped; linked folders are followed once (a link back up the tree is not a loop forever)."""
    seen = set() if seen is None else seen
    st = folder.stat()
    if (st.st_dev, st.st_ino) in seen:
        return
    seen.add((st.st_dev, st.st_ino))
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:  # a link loop: listed below (as an image name) or ignored
                is_dir = False
            if is_dir:
                yield from _scan(Path(entry.path), f"{prefix}{entry.name}/", seen)
            elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                yield f"{prefix}{entry.name}", entry


def _valid_photo_cache(value: Any) -> bool:
    """name -> [[inode, size, mtime_ns, ctime_ns], digest] for every photo."""
    return isinstance(value, dict) and all(
        isinstance(v, list) and len(v) == 2 and isinstance(v[0], list) and isinstance(v[1], str) for v in value.values())


def photo_signature(folder: str | Path, cache: str | Path) -> tuple[str, int]:
    """A digest of the names and **contents** of the photos below ``folder``, for the SfM job's params, and
    the number of photos (for the cluster resources of the scene's jobs). The digest
    changes when a photo is added, removed or replaced, whatever the replacement's timestamp (``cp -p``,
    ``rsync -a`` and unpacked archives keep old mtimes), and not when a photo is only touched.

    Each photo's content digest is kept in ``cache`` (JSON) under its stat key (inode, size, mtime, ctime);
    the kernel sets ctime on every write or rename, so only new or changed files are read again. A link
    that points nowhere counts as its own entry ("unreadable"), so fixing it reruns the scene too.
    """
    folder, cache = Path(folder), Path(cache)
    if folder_problem(folder):
        return "refused", 0  # the job fails with the reason (require_folder); planning reads nothing there
    if not folder.is_dir():
        return "missing", 0
    known = read_kept_json(cache, _valid_photo_cache, "the photo fingerprint cache") or {}
    current, digests = {}, []
    for name, entry in sorted(_scan(folder)):
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError:
            digests.append(f"{name}:unreadable")
            continue
        key = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        old = known.get(name)
        if not stat.S_ISREG(st.st_mode):
            digest = "not a regular file"
        elif old and old[0] == key:
            digest = old[1]
        else:
            try:
                digest = file_digest(entry.path)
            except OSError:
                digest = "unreadable"
        current[name] = [key, digest]
        digests.append(f"{name}:{digest}")
    if current != known:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + f".{os.getpid()}")
        tmp.write_text(json.dumps(current))
        os.replace(tmp, cache)
    return hashlib.blake2b("\n".join(digests).encode(), digest_size=16).hexdigest(), len(digests)


def check_image(path: Path) -> tuple[Image.Image | None, str | None]:
    """Decode the whole image; return (image, None) or (None, reason). The size in the header is checked first
    (PIL's decompression-bomb check, at :data:`MAX_PHOTO_PIXELS`): a larger photo is skipped without being decoded
    (a few-KB file can claim 40000 x 40000)."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = MAX_PHOTO_PIXELS // 2  # PIL warns above this and refuses above twice it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                if im.width < 16 or im.height < 16:
                    return None, f"too small ({im.width}x{im.height} px)"
                return im.copy(), None
    except Image.DecompressionBombError as err:  # raised by open(), from the header, before anything is decoded
        return None, f"{str(err).split(',')[0]}; not decoded (limit {MAX_PHOTO_PIXELS / 1e6:.0f} MP)"
    except Exception as err:  # PIL raises many types for broken files
        reason = str(err) or type(err).__name__
        return None, f"unreadable: {reason}"


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def pixel_digest(image: Image.Image) -> str:
    """Digest of the decoded pixels (mode and size included): equal for re-encodings that lose nothing."""
    return _digest(f"{image.mode}{image.size}".encode() + image.tobytes())


def perceptual_hash(image: Image.Image) -> str:
    """64-bit DCT perceptual hash (hex) of a photo: a few bits apart for re-encodings and resized copies,
    16+ bits apart for distinct photos of one landmark (measured on the bundled scenes, docs/dataset.md)."""
    return str(imagehash.phash(image))


def gps_position(exif: Any) -> tuple[float, float] | None:
    """(latitude, longitude) in degrees from EXIF, or None when absent or not a position: non-finite, out of range,
    or exactly (0, 0), which cameras write when they have no fix."""
    import math

    gps = exif.get_ifd(EXIF_GPS) if exif else {}
    try:
        lat, lon = (_degrees(gps[k], gps.get(r, "N")) for k, r in ((2, 1), (4, 3)))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
        return None
    return round(lat, 7), round(lon, 7)


def _degrees(dms: Any, ref: str) -> float:
    d, m, sec = (float(v) for v in dms)
    return (d + m / 60 + sec / 3600) * (-1 if str(ref).upper() in ("S", "W") else 1)


def stage_images(src: Path, dst: Path, max_size: int | None = None,
                 sizes: dict[str, tuple[int, int]] | None = None) -> StagedImages:
    """Check every photo under ``src`` and place the usable ones in ``dst`` (links, or upright / working-size
    copies when the EXIF orientation is not the identity or the long side exceeds ``max_size``).

    ``sizes``: staged name -> (width, height) the photo must have, overriding ``max_size`` (an existing COLMAP
    database's cameras: its keypoints are in pixels of the images it was built from)."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    staged = StagedImages(dst)
    stems: dict[str, str] = {}
    seen: dict[str, str] = {}  # file or pixel digest -> first file with it
    for path in tqdm(find_images(src), desc="checking photos", unit="img"):
        rel = path.relative_to(src).as_posix()
        name = rel.replace("/", "__")
        special = not_regular(path)
        image, reason = (None, special) if special else check_image(path)
        if image is None and not special and path.is_symlink():
            try:
                path.stat()
                target_ok = True
            except OSError as err:
                target_ok = False
                loop = err.errno == errno.ELOOP
            if not target_ok:
                reason = ("a symbolic link loop" if loop else
                          f"a symbolic link to '{os.readlink(path)}', which does not exist")
        stem = Path(name).stem
        if image is None:
            staged.skipped.append({"file": rel, "reason": reason})
            logger.warning("skipping %s: %s", path, reason)
            continue
        if stem in stems:
            reason = f"same stem as {stems[stem]} (depth and scene-info files are named by stem); rename one"
            staged.skipped.append({"file": rel, "reason": reason})
            logger.warning("skipping %s: %s", path, reason)
            continue
        file_key, pixel_key = "file:" + file_digest(path), "pixels:" + pixel_digest(image)
        first = seen.get(file_key) or seen.get(pixel_key)
        if first is not None:
            how = "identical file" if file_key in seen else "identical pixels"
            staged.skipped.append({"file": rel, "reason": f"duplicate of {first} ({how})"})
            logger.warning("skipping %s: duplicate of %s (%s)", path, first, how)
            continue
        seen[file_key] = seen[pixel_key] = rel
        staged.digests[name] = pixel_key.removeprefix("pixels:")
        staged.hashes[name] = perceptual_hash(image)
        stems[stem] = rel
        exif = image.getexif()
        staged.gps[name] = gps_position(exif)
        orientation = exif.get(EXIF_ORIENTATION, 1) if exif else 1
        if orientation not in range(9):
            staged.metadata_problems.append(f"{rel}: EXIF orientation {str(orientation)[:20]!r} is not one of 1-8; "
                                            "treated as absent (stored upright)")
            logger.warning("%s", staged.metadata_problems[-1])
            orientation = 1
        target = dst / name
        upright = image.size[::-1] if orientation in (5, 6, 7, 8) else image.size
        want = tuple(sizes[name]) if sizes and name in sizes else None  # the database's size wins
        if want is None and max_size is not None and max(upright) > max_size:
            scale = max_size / max(upright)
            want = (max(1, round(upright[0] * scale)), max(1, round(upright[1] * scale)))
        resize = want is not None and want != tuple(upright)
        if orientation not in (0, 1) or resize:
            out = ImageOps.exif_transpose(image) if orientation not in (0, 1) else image
            if resize:
                staged.resized[name] = list(image.size)
                out = out.resize(want, Image.LANCZOS)
                logger.info("%s is %dx%d: staged at %dx%d (%s)", rel, *image.size, *out.size,
                            "the existing database's size" if sizes and name in sizes else "sfm.max_image_size")
            if orientation not in (0, 1):
                staged.rotated.append(name)
            save_kwargs = {"quality": 95} if target.suffix.lower() in (".jpg", ".jpeg") else {}
            out.save(target, exif=out.getexif(), **save_kwargs)  # keeps the focal length for COLMAP
        else:
            os.symlink(path.resolve(), target)
        staged.names.append(name)
    return staged
