"""Readers of RGB-D sources into one item type (depth map + pinhole K + optional colour).

Every reader returns :class:`Item` objects whose ``depth`` is float32, (H, W), 0 = invalid, in metres
(RGB-D datasets) or SfM units (matchforge scenes, ``metric=False``), and whose ``K`` is the 3x3
pinhole matrix of that depth map in pixels (pixel centres at ``+0.5``, COLMAP convention).

Formats (as documented by each dataset; no dataset ships with the repo except the TUM frames):

- **ScanNet** ``.sens`` (little-endian): ``uint32 version (4)``, ``uint64 n``, ``char[n] sensor``,
  four ``float32[16]`` (colour K, colour extrinsics, depth K, depth extrinsics), ``int32`` colour and
  depth compression (2 = JPEG, 1 = zlib uint16), ``uint32`` colour w, h, depth w, h, ``float32``
  depth shift (depth = raw / shift, typically 1000), ``uint64`` frame count; per frame ``float32[16]``
  camera-to-world, ``uint64`` colour and depth timestamps and byte counts, then the bytes.
- **3D Ken Burns**: ``depths/<scene>-depth/<id>-depth.exr`` (OpenCV EXR) and
  ``rgb/<scene>/<id>-meta.json`` with ``fltFov`` (degrees, square images).
- **Taskonomy**: ``depth_zbuffer/taskonomy/<scene>/<name>_domain_depth_zbuffer.png`` (uint16, 1/512 m,
  65535 = missing) and ``point_info/taskonomy/<scene>/<name>_domain_point_info.json`` with
  ``field_of_view_rads`` (square images).
- **TUM RGB-D** folders: ``rgb/<t>.png``, ``depth/<t>.png`` (uint16, 1/5000 m, 0 = missing, registered
  to RGB), intrinsics given or parsed from ``INTRINSICS.txt`` lines ``... (<prefix>.* frames): fx= fy= cx= cy=``.
- **Middlebury 2014**: ``disp0.pfm`` or ``*_disp.npz`` (``arr_0``; missing = inf) and ``calib.txt``
  (``cam0=[f 0 cx; 0 f cy; 0 0 1]``, ``doffs``, ``baseline`` in mm); depth = f * baseline / (d + doffs).
- **matchforge scenes**: ``results/{scene}/depth/h5/{stem}.h5`` (dataset ``depth``, SfM units) with K
  from the scene's undistorted sparse model.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.depth import read_depth
from matchforge.io.images import read_image
from matchforge.io.safe import load_array_file
from matchforge.geometry.camera import focal_from_fov, intrinsics


@dataclass
class Item:
    """One depth map with its camera."""

    name: str  # unique within its source, usable as a file stem
    depth: np.ndarray = field(repr=False)  # (H, W) float32, 0 = invalid
    K: np.ndarray = field(repr=False)  # (3, 3) float64, pixels
    rgb: np.ndarray | None = field(default=None, repr=False)  # (H, W, 3) uint8 or None
    metric: bool = True  # depth in metres (False: SfM units)

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth.shape  # type: ignore[return-value]


def evenly(n_total: int, n_wanted: int | None) -> list[int]:
    """``n_wanted`` indices spread evenly over ``range(n_total)`` (all of them when ``None`` or larger)."""
    if n_wanted is None or n_wanted >= n_total:
        return list(range(n_total))
    if n_wanted <= 0:
        return []
    return sorted(set(np.linspace(0, n_total - 1, n_wanted).round().astype(int).tolist()))


def per_scene_counts(n_scenes: int, n_total: int | None) -> list[int | None]:
    """Split ``n_total`` samples as equally as possible over ``n_scenes`` (None = everything)."""
    if n_total is None:
        return [None] * n_scenes
    base, extra = divmod(n_total, max(n_scenes, 1))
    return [base + (1 if i < extra else 0) for i in range(n_scenes)]


def resize_item(item: Item, max_side: int | None) -> Item:
    """Downscale so that the long side is at most ``max_side`` (depth: one valid source pixel per
    target pixel, never an average across a depth edge, and sparse maps keep their points; colour: area).

    K is scaled exactly (corner-origin pixel coordinates scale linearly).
    """
    h, w = item.shape
    if not max_side or max(h, w) <= max_side:
        return item
    s = max_side / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    depth = np.zeros((nh, nw), np.float32)
    r, c = np.nonzero(item.depth > 0)
    tr = np.minimum(((r + 0.5) * nh / h).astype(int), nh - 1)
    tc = np.minimum(((c + 0.5) * nw / w).astype(int), nw - 1)
    depth[tr, tc] = item.depth[r, c]
    rgb = None if item.rgb is None else cv2.resize(item.rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    K = item.K.copy()
    K[0] *= nw / w
    K[1] *= nh / h
    return Item(item.name, depth, K, rgb, item.metric)


# --- ScanNet .sens ---------------------------------------------------------------------------------


@dataclass
class SensHeader:
    sensor_name: str
    intrinsic_color: np.ndarray
    extrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    extrinsic_depth: np.ndarray
    color_compression: int
    depth_compression: int
    color_width: int
    color_height: int
    depth_width: int
    depth_height: int
    depth_shift: float
    num_frames: int


def _read(f, fmt: str):
    s = struct.Struct(fmt)
    data = f.read(s.size)
    if len(data) != s.size:
        raise EOFError("truncated file")
    return s.unpack(data)


def read_sens_header(f) -> SensHeader:
    """Parse the header of an open ``.sens`` file (positioned at 0); leaves ``f`` at the first frame."""
    (version,) = _read(f, "<I")
    if version != 4:
        raise ValueError(f"unsupported .sens version {version} (expected 4)")
    (n,) = _read(f, "<Q")
    name = f.read(n).decode("utf-8", "replace")
    mats = [np.array(_read(f, "<16f"), dtype=np.float64).reshape(4, 4) for _ in range(4)]
    cc, dc = _read(f, "<ii")
    cw, ch, dw, dh = _read(f, "<4I")
    (shift,) = _read(f, "<f")
    (nf,) = _read(f, "<Q")
    return SensHeader(name, *mats, cc, dc, cw, ch, dw, dh, float(shift), int(nf))


def read_sens(path: str | Path, num_frames: int | None = None, scene: str | None = None,
              max_depth: float = 50.0) -> list[Item]:
    """Frames of a ScanNet ``.sens`` file, ``num_frames`` of them spread evenly over the sequence.

    Depth = raw / depth_shift (metres), valid in (0, ``max_depth``); K = the depth intrinsics; colour
    is decoded (JPEG) and resized to the depth resolution. Frames not selected are skipped by seeking.
    """
    path = Path(path)
    scene = scene or path.stem
    items: list[Item] = []
    try:
        with open(path, "rb") as f:
            h = read_sens_header(f)
            if h.depth_compression != 1:
                raise ValueError(f"depth compression {h.depth_compression} not supported (only 1 = zlib)")
            if h.color_compression not in (2, -1, 1):
                raise ValueError(f"colour compression {h.color_compression} not supported (JPEG/PNG only)")
            wanted = set(evenly(h.num_frames, num_frames))
            K = h.intrinsic_depth[:3, :3].copy()
            for i in range(h.num_frames):
                _read(f, "<16f")
                _, _, nc, nd = _read(f, "<4Q")
                if i not in wanted:
                    f.seek(nc + nd, io.SEEK_CUR)
                    continue
                color = f.read(nc)
                raw = zlib.decompress(f.read(nd))
                d = np.frombuffer(raw, dtype="<u2").reshape(h.depth_height, h.depth_width).astype(np.float32)
                d /= h.depth_shift
                d[(d <= 0) | (d >= max_depth)] = 0
                rgb = cv2.imdecode(np.frombuffer(color, np.uint8), cv2.IMREAD_COLOR)
                if rgb is not None:
                    rgb = cv2.resize(rgb[:, :, ::-1], (h.depth_width, h.depth_height), interpolation=cv2.INTER_AREA)
                items.append(Item(f"{scene}_{i:06d}", d, K, rgb, True))
    except (EOFError, ValueError, zlib.error) as err:
        raise MatchforgeError(f"cannot read ScanNet .sens: {err}", fix="check that the file is a complete ScanNet .sens (version 4, JPEG colour, zlib depth)", path=path) from None
    return items


def read_scannet(root: str | Path, num_samples: int | None = None) -> list[Item]:
    """All ``scans/<scene>/<scene>.sens`` (or any ``*.sens`` below ``root``), samples split evenly over scenes."""
    files = sorted(Path(root).rglob("*.sens"))
    if not files:
        raise MatchforgeError("no .sens file found", fix="point the source at a ScanNet folder (scans/<scene>/<scene>.sens)", path=root)
    out: list[Item] = []
    for f, n in zip(files, per_scene_counts(len(files), num_samples)):
        if n != 0:
            out += read_sens(f, n)
    return out


# --- 3D Ken Burns ----------------------------------------------------------------------------------

def read_depth_exr(path: Path) -> np.ndarray:
    """Depth channel of an EXR (``Z``, ``Y``, ``R`` or ``depth``, else the first by name) as float32, read with
    the OpenEXR library (any compression, scanline or tiled); the PyPI OpenCV wheels are built without it."""
    import OpenEXR

    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            chans = {name: ch.pixels for name, ch in exr.channels().items()}
    except Exception as err:  # the bindings raise RuntimeError / OSError for damaged or foreign files
        raise MatchforgeError(f"cannot read EXR depth: {err}", fix="check the file (re-download it)", path=path) from None
    name = next((c for c in ("Z", "Y", "R", "depth") if c in chans), sorted(chans)[0])
    return np.asarray(chans[name], dtype=np.float32)


def read_kenburns(root: str | Path, num_samples: int | None, depth_unit: float,
                  max_depth: float = 60.0) -> list[Item]:
    """3D Ken Burns: ``depths/<scene>-depth/<id>-depth.exr`` with ``rgb/<scene>/<id>-meta.json['fltFov']``.

    Depth = exr value * ``depth_unit`` (Train-3D divides by 1000; the dataset's unit is not documented
    here), valid in (0, ``max_depth``). The field of view spans the (square) image side.
    """
    root = Path(root)
    scenes = sorted(p for p in (root / "depths").glob("*") if p.is_dir())
    if not scenes:
        raise MatchforgeError("no depths/<scene>-depth folder", fix="point the source at the 3D Ken Burns root (depths/, rgb/)", path=root)
    out: list[Item] = []
    for sdir, n in zip(scenes, per_scene_counts(len(scenes), num_samples)):
        scene = sdir.name.removesuffix("-depth")
        files = sorted(sdir.glob("*.exr"))
        for i in evenly(len(files), n):
            exr = files[i]
            fid = exr.stem.removesuffix("-depth")
            meta = root / "rgb" / scene / f"{fid}-meta.json"
            if not meta.exists():
                raise MatchforgeError("missing field-of-view file for a depth map", fix=f"add {meta.name} (with 'fltFov') next to the colour image", path=meta)
            d = read_depth_exr(exr)
            d = d.astype(np.float32) * depth_unit
            d[~np.isfinite(d) | (d <= 0) | (d >= max_depth)] = 0
            hgt, wid = d.shape
            fov = float(json.loads(meta.read_text())["fltFov"])
            f = focal_from_fov(fov, wid)
            rgb = None
            img = meta.with_name(f"{fid}-image.png")
            if img.exists():
                rgb = read_image(img, required=False)
            out.append(Item(f"{scene}_{fid}", d, intrinsics(f, f, wid / 2, hgt / 2), rgb, True))
    return out


# --- Taskonomy -------------------------------------------------------------------------------------

TASKONOMY_UNIT = 1.0 / 512.0  # metres per count (Taskonomy README), 65535 = missing


def read_taskonomy(root: str | Path, num_samples: int | None = None, max_depth: float = 128.0) -> list[Item]:
    """Taskonomy: ``depth_zbuffer/taskonomy/<scene>/*.png`` (uint16 in 1/512 m) with
    ``point_info/taskonomy/<scene>/<name>_domain_point_info.json['field_of_view_rads']``."""
    root = Path(root)
    scenes = sorted(p for p in (root / "depth_zbuffer" / "taskonomy").glob("*") if p.is_dir())
    if not scenes:
        raise MatchforgeError("no depth_zbuffer/taskonomy/<scene> folder", fix="point the source at the Taskonomy root", path=root)
    out: list[Item] = []
    for sdir, n in zip(scenes, per_scene_counts(len(scenes), num_samples)):
        files = sorted(sdir.glob("*.png"))
        for i in evenly(len(files), n):
            png = files[i]
            base = png.stem.removesuffix("_domain_depth_zbuffer")
            info = root / "point_info" / "taskonomy" / sdir.name / f"{base}_domain_point_info.json"
            if not info.exists():
                raise MatchforgeError("missing point_info json for a depth map", fix="keep Taskonomy's point_info/ folder beside depth_zbuffer/", path=info)
            raw = read_image(png, "unchanged", required=False)
            if raw is None or raw.dtype != np.uint16:
                raise MatchforgeError("depth is not a 16-bit PNG", fix="use Taskonomy's depth_zbuffer PNGs", path=png)
            d = raw.astype(np.float32) * TASKONOMY_UNIT
            d[(raw == 65535) | (d <= 0) | (d >= max_depth)] = 0
            hgt, wid = d.shape
            fov = float(json.loads(info.read_text())["field_of_view_rads"])
            f = focal_from_fov(np.degrees(fov), wid)
            out.append(Item(f"{sdir.name}_{base}", d, intrinsics(f, f, wid / 2, hgt / 2), None, True))
    return out


# --- TUM RGB-D -------------------------------------------------------------------------------------

TUM_UNIT = 1.0 / 5000.0
_TUM_LINE = re.compile(r"\(([^)\s]*?)\*?\s*frames?\)\s*:.*?fx=([\d.]+)\s+fy=([\d.]+)\s+cx=([\d.]+)\s+cy=([\d.]+)")


def parse_tum_intrinsics(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """``(prefix, K)`` per line ``... (<prefix>* frames): fx=.. fy=.. cx=.. cy=..`` of an intrinsics note."""
    out = []
    for line in Path(path).read_text().splitlines():
        m = _TUM_LINE.search(line)
        if m:
            prefix = m.group(1).rstrip(".*")
            out.append((prefix, intrinsics(*map(float, m.groups()[1:]))))
    return out


def _tum_lookup(table: list[tuple[str, np.ndarray]], stem: str, max_gap_s: float = 86400.0) -> list[np.ndarray]:
    """Intrinsics for a frame: a line whose prefix starts the stem, else the line whose numeric
    prefix (a timestamp of the same recording) is nearest, within ``max_gap_s`` seconds."""
    exact = [k for pre, k in table if stem.startswith(pre)]
    if exact:
        return exact
    try:
        t = float(stem)
    except ValueError:
        return []
    near = []
    for pre, k in table:
        try:
            gap = abs(float(pre) - t)
        except ValueError:
            continue
        if gap <= max_gap_s:
            near.append((gap, k))
    return [k for _, k in sorted(near, key=lambda g: g[0])]


def _stamp(p: Path) -> float:
    try:
        return float(p.stem)
    except ValueError:
        return float("nan")


def read_tum(folder: str | Path, num_samples: int | None = None, K: Sequence[float] | None = None,
             max_depth: float = 10.0) -> list[Item]:
    """TUM RGB-D style folder: each ``depth/<t>.png`` paired with the nearest-timestamp ``rgb/<t>.png``.

    ``K`` = ``[fx, fy, cx, cy]`` for all frames; otherwise per frame from ``INTRINSICS.txt`` in the
    folder (the line whose prefix starts the frame's timestamp, else the nearest timestamp prefix).
    """
    folder = Path(folder)
    depths = sorted((folder / "depth").glob("*.png"))
    rgbs = sorted((folder / "rgb").glob("*.png"))
    if not depths:
        raise MatchforgeError("no depth/*.png", fix="point the source at a TUM RGB-D folder (rgb/, depth/)", path=folder)
    table = [] if K is not None else parse_tum_intrinsics(folder / "INTRINSICS.txt") if (folder / "INTRINSICS.txt").exists() else []
    rgb_t = np.array([_stamp(p) for p in rgbs])
    out: list[Item] = []
    for i in evenly(len(depths), num_samples):
        p = depths[i]
        if K is not None:
            Kd = intrinsics(*K)
        else:
            match = _tum_lookup(table, p.stem)
            if not match:
                raise MatchforgeError(f"no intrinsics for frame {p.stem}", fix="give the source `intrinsics: [fx, fy, cx, cy]` or an INTRINSICS.txt line '(<prefix>.* frames): fx=.. fy=.. cx=.. cy=..'", path=p)
            Kd = match[0]
        raw = read_image(p, "unchanged", required=False)
        if raw is None or raw.dtype != np.uint16:
            raise MatchforgeError("depth is not a 16-bit PNG", fix="TUM depth PNGs are uint16 in 1/5000 m", path=p)
        d = raw.astype(np.float32) * TUM_UNIT
        d[(d <= 0) | (d >= max_depth)] = 0
        rgb = None
        if len(rgbs):
            j = int(np.nanargmin(np.abs(rgb_t - _stamp(p)))) if np.isfinite(_stamp(p)) else min(i, len(rgbs) - 1)
            img = read_image(rgbs[j], required=False)
            if img is not None and img.shape[:2] == d.shape:
                rgb = img
        out.append(Item(f"tum_{p.stem}", d, Kd, rgb, True))
    return out


# --- Middlebury 2014 ------------------------------------------------------------------------------

def read_pfm(path: str | Path) -> np.ndarray:
    """A PFM image (top row first, as stored bottom-up in the file) as float32."""
    with open(path, "rb") as f:
        kind = f.readline().strip()
        w, h = map(int, f.readline().split())
        scale = float(f.readline())
        data = np.fromfile(f, dtype="<f4" if scale < 0 else ">f4")
    ch = 3 if kind == b"PF" else 1
    img = data.reshape(h, w, ch) if ch == 3 else data.reshape(h, w)
    return np.flipud(img).astype(np.float32)


def parse_middlebury_calib(path: str | Path) -> dict[str, float]:
    """``calib.txt`` -> ``{f, cx, cy, doffs, baseline_m}`` (baseline converted from mm)."""
    vals: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            vals[k.strip()] = v.strip()
    cam = [float(x) for x in re.findall(r"[-+\d.eE]+", vals["cam0"])]
    return {"f": cam[0], "cx": cam[2], "cy": cam[5], "doffs": float(vals["doffs"]), "baseline_m": float(vals["baseline"]) / 1000.0}


def read_middlebury(folder: str | Path, calib: dict[str, float] | None = None) -> list[Item]:
    """Left view of a Middlebury 2014 scene: depth = f * baseline / (disparity + doffs) in metres.

    Disparity from ``disp0.pfm`` or ``*_disp.npz`` (``arr_0``); missing = inf. ``calib`` overrides
    ``calib.txt`` (keys ``f, cx, cy, doffs, baseline_m``).
    """
    folder = Path(folder)
    if calib is None:
        if not (folder / "calib.txt").exists():
            raise MatchforgeError("no calib.txt", fix="add Middlebury's calib.txt or give the source `calib: {f, cx, cy, doffs, baseline_m}`", path=folder)
        calib = parse_middlebury_calib(folder / "calib.txt")
    if (folder / "disp0.pfm").exists():
        disp = read_pfm(folder / "disp0.pfm")
    else:
        npz = sorted(folder.glob("*disp*.npz"))
        if not npz:
            raise MatchforgeError("no disparity (disp0.pfm or *_disp.npz)", fix="use a Middlebury 2014 scene folder", path=folder)
        disp = np.asarray(load_array_file(npz[0], "disparity map")["arr_0"], dtype=np.float32)
    valid = np.isfinite(disp) & (disp + calib["doffs"] > 0)
    depth = np.zeros_like(disp, dtype=np.float32)
    depth[valid] = calib["f"] * calib["baseline_m"] / (disp[valid] + calib["doffs"])
    rgb = None
    for name in ("im0.png", "*left*.png"):
        hits = sorted(folder.glob(name))
        if hits:
            img = read_image(hits[0], required=False)
            rgb = None if img is None or img.shape[:2] != depth.shape else img
            break
    K = intrinsics(calib["f"], calib["f"], calib["cx"], calib["cy"])
    return [Item(f"middlebury_{folder.name}", depth, K, rgb, True)]


# --- matchforge scenes -----------------------------------------------------------------------------

def read_matchforge(h5_dir: str | Path, sparse_dir: str | Path, images_dir: str | Path | None = None,
                    num_samples: int | None = None, scene: str | None = None) -> list[Item]:
    """Aligned depth of a matchforge scene (``{stem}.h5``, dataset ``depth``, SfM units, 0 = invalid)
    with K from the undistorted sparse model; colour from ``images_dir`` when given."""
    from matchforge.io.colmap import load_scene

    h5_dir = Path(h5_dir)
    files = sorted(h5_dir.glob("*.h5"))
    if not files:
        raise MatchforgeError("no depth .h5 files", fix="run the depth stage first (rule depth_align)", scene=scene, path=h5_dir)
    views = {v.stem: v for v in load_scene(sparse_dir).views.values()}
    out: list[Item] = []
    for i in evenly(len(files), num_samples):
        p = files[i]
        view = views.get(p.stem)
        if view is None:
            raise MatchforgeError(f"depth map {p.name} has no registered image in the sparse model", fix="rerun the depth stage on this SfM model", scene=scene, path=p)
        d = read_depth(p, scene=scene)
        if d.shape != (view.height, view.width):
            raise MatchforgeError(f"depth is {d.shape[1]}x{d.shape[0]}, image is {view.width}x{view.height}", fix="depth H5 must have the undistorted image size; rerun the depth stage", scene=scene, path=p)
        d[~np.isfinite(d) | (d < 0)] = 0
        rgb = None
        if images_dir is not None and (Path(images_dir) / view.name).exists():
            img = read_image(Path(images_dir) / view.name, required=False)
            rgb = None if img is None or img.shape[:2] != d.shape else img
        out.append(Item(f"{scene or 'scene'}_{p.stem}", d, view.K.copy(), rgb, False))
    return out


def iter_source(conf: dict, paths: dict[str, str]) -> list[Item]:
    """Read one configured source (``conf['type']``) from its resolved ``paths``."""
    kind = conf["type"]
    n = conf.get("max_items")
    if kind == "scannet":
        return read_scannet(paths["path"], n)
    if kind == "kenburns":
        return read_kenburns(paths["path"], n, depth_unit=conf["depth_unit"])
    if kind == "taskonomy":
        return read_taskonomy(paths["path"], n)
    if kind == "tum":
        return read_tum(paths["path"], n, K=conf.get("intrinsics"))
    if kind == "middlebury":
        return read_middlebury(paths["path"], conf.get("calib"))
    if kind == "matchforge":
        return read_matchforge(paths["h5"], paths["sparse"], paths.get("images"), n, scene=conf.get("scene"))
    raise MatchforgeError(f"unknown source type '{kind}'", fix="use one of scannet, kenburns, taskonomy, tum, middlebury, matchforge")
