"""Minimal OpenEXR reader (scanline images, NONE / ZIPS / ZIP compression) in numpy.

The PyPI OpenCV wheels are built without OpenEXR, so 3D Ken Burns depth (``.exr``) is read with
OpenCV when it can, else with this reader. Format (openexr.com, "OpenEXR File Layout"): magic
``20000630``, version, attributes ``name\\0 type\\0 int32 size value`` up to an empty name, an offset
table (one uint64 per chunk), then chunks ``int32 y, int32 size, data``; each scanline of a chunk holds
every channel (alphabetical order) in turn. ZIP data is zlib of the bytes split into even/odd halves
with a delta predictor; a chunk that would not shrink is stored raw.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

MAGIC = 20000630
_DTYPES = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}
_LINES = {0: 1, 2: 1, 3: 16}  # compression -> scanlines per chunk (NONE, ZIPS, ZIP)


class ExrError(ValueError):
    pass


def _cstr(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(b"\0", pos)
    return buf[pos:end].decode("latin-1"), end + 1


def _unzip(data: bytes, size: int) -> bytes:
    raw = np.frombuffer(zlib.decompress(data), np.uint8).astype(np.int64)
    if len(raw) != size:
        raise ExrError(f"ZIP chunk inflates to {len(raw)} bytes, expected {size}")
    t = np.empty(size, np.uint8)
    if size:
        t[0] = raw[0]
        t[1:] = (raw[0] + np.cumsum(raw[1:] - 128)) % 256  # undo the delta predictor
    out = np.empty(size, np.uint8)
    half = (size + 1) // 2
    out[0::2] = t[:half]
    out[1::2] = t[half:]
    return out.tobytes()


def read_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Channels of a scanline EXR as float32 arrays ``(H, W)``, by channel name."""
    buf = Path(path).read_bytes()
    magic, version = struct.unpack_from("<ii", buf, 0)
    if magic != MAGIC:
        raise ExrError("not an OpenEXR file")
    if version & 0x200 or version & 0x1000:
        raise ExrError("tiled or multi-part EXR is not supported")
    pos = 8
    attrs: dict[str, tuple[str, bytes]] = {}
    while True:
        name, pos = _cstr(buf, pos)
        if not name:
            break
        typ, pos = _cstr(buf, pos)
        (size,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        attrs[name] = (typ, buf[pos : pos + size])
        pos += size
    channels = []
    cl = attrs["channels"][1]
    p = 0
    while cl[p] != 0:
        cname, p = _cstr(cl, p)
        ptype, _, xs, ys = struct.unpack_from("<iIii", cl, p)
        p += 16
        if xs != 1 or ys != 1:
            raise ExrError("sub-sampled channels are not supported")
        channels.append((cname, ptype))
    compression = attrs["compression"][1][0]
    if compression not in _LINES:
        raise ExrError(f"compression {compression} not supported (only NONE, ZIPS, ZIP)")
    x0, y0, x1, y1 = struct.unpack("<4i", attrs["dataWindow"][1])
    w, h = x1 - x0 + 1, y1 - y0 + 1
    lines = _LINES[compression]
    n_chunks = (h + lines - 1) // lines
    offsets = struct.unpack_from(f"<{n_chunks}Q", buf, pos)
    out = {c: np.zeros((h, w), np.float32) for c, _ in channels}
    line_bytes = sum(_DTYPES[t].itemsize * w for _, t in channels)
    for off in offsets:
        y, size = struct.unpack_from("<ii", buf, off)
        data = buf[off + 8 : off + 8 + size]
        n_lines = min(lines, y1 - y + 1)
        raw_size = line_bytes * n_lines
        if compression != 0 and size < raw_size:
            data = _unzip(data, raw_size)
        q = 0
        for r in range(n_lines):
            for cname, t in channels:
                dt = _DTYPES[t]
                out[cname][y - y0 + r] = np.frombuffer(data, dt, w, q).astype(np.float32)
                q += dt.itemsize * w
    return out
