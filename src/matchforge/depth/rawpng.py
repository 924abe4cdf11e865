"""Raw depth as a 16-bit PNG that can be inverted: the quantisation parameters live in a PNG text chunk.

Codes: 0 = invalid (NaN or non-finite in the float map); 1..65535 map the valid range ``[lo, hi]``:

- ``encoding="linear"``: ``v = lo + (code - 1) / 65534 * (hi - lo)`` (disparity-like maps, where 0 is a
  legitimate value);
- ``encoding="log"``: the same in ``log(v)`` (strictly positive depth maps: constant *relative* precision,
  about 7e-5 of the value for a 100x depth range).

The text chunk ``matchforge-depth`` holds JSON: ``kind`` (``disparity`` = relative inverse depth,
``metric`` = metres, ``sfm`` = SfM units), ``encoding``, ``lo``, ``hi``, and whatever the writer adds
(backend, model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from matchforge.errors import MatchforgeError

TEXT_KEY = "matchforge-depth"
KINDS = ("disparity", "metric", "sfm")
_NCODES = 65534


def encode(values: np.ndarray, encoding: str) -> tuple[np.ndarray, float, float]:
    """Quantise a float map (NaN = invalid) to uint16 codes; returns ``(codes, lo, hi)``."""
    v = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(v)
    if encoding == "log":
        valid &= v > 0
    codes = np.zeros(v.shape, dtype=np.uint16)
    if not valid.any():
        return codes, 0.0, 0.0
    t = np.log(v[valid]) if encoding == "log" else v[valid]
    lo, hi = float(t.min()), float(t.max())
    span = hi - lo if hi > lo else 1.0
    codes[valid] = 1 + np.round((t - lo) / span * _NCODES).astype(np.uint16)
    return codes, lo, hi


def decode(codes: np.ndarray, encoding: str, lo: float, hi: float) -> np.ndarray:
    """Invert :func:`encode`: float32 map with NaN where the code is 0."""
    codes = np.asarray(codes)
    span = hi - lo if hi > lo else 1.0
    t = lo + (codes.astype(np.float64) - 1) / _NCODES * span
    out = np.exp(t) if encoding == "log" else t
    out[codes == 0] = np.nan
    return out.astype(np.float32)


def write_raw(path: str | Path, values: np.ndarray, kind: str, encoding: str | None = None,
              **meta: Any) -> None:
    """Write a float map (H x W, NaN = invalid) as a 16-bit PNG with its inversion parameters."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    encoding = encoding or ("linear" if kind == "disparity" else "log")
    codes, lo, hi = encode(values, encoding)
    info = PngImagePlugin.PngInfo()
    info.add_text(TEXT_KEY, json.dumps({"kind": kind, "encoding": encoding, "lo": lo, "hi": hi, **meta}))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(codes).save(path, format="PNG", pnginfo=info)


def read_raw(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a raw depth PNG: ``(float32 map with NaN = invalid, metadata dict)``."""
    path = Path(path)
    if not path.is_file():
        raise MatchforgeError("raw depth PNG is missing", path=path,
                              fix="run the depth_predict rule (matchforge depth) for this scene first")
    with Image.open(path) as im:
        text = getattr(im, "text", {}) or {}
        codes = np.array(im)
    if TEXT_KEY not in text or codes.dtype != np.uint16:
        raise MatchforgeError(
            "not a matchforge raw depth PNG (16-bit with a 'matchforge-depth' text chunk)", path=path,
            fix="delete it and rerun `matchforge depth`; 8-bit PNGs from other tools cannot be inverted")
    meta = json.loads(text[TEXT_KEY])
    return decode(codes, meta["encoding"], meta["lo"], meta["hi"]), meta
