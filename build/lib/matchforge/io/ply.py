"""Write point clouds as binary PLY (viewable in MeshLab, CloudCompare, Open3D)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> None:
    """Write ``points`` (N, 3) float and optional ``colors`` (N, 3) uint8 as a little-endian binary PLY."""
    points = np.asarray(points, dtype="<f4").reshape(-1, 3)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rec = np.empty(len(points), dtype=fields)
    rec["x"], rec["y"], rec["z"] = points.T
    if colors is not None:
        c = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        rec["red"], rec["green"], rec["blue"] = c.T
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(points)}"]
    header += ["property float x", "property float y", "property float z"]
    if colors is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header.append("end_header")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(rec.tobytes())


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read back a PLY written by :func:`write_ply`: ``(points, colors or None)``."""
    with open(path, "rb") as f:
        n, has_color = 0, False
        while True:
            line = f.readline().decode("ascii").strip()
            if line.startswith("element vertex"):
                n = int(line.split()[-1])
            if line == "property uchar red":
                has_color = True
            if line == "end_header":
                break
        fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + ([("r", "u1"), ("g", "u1"), ("b", "u1")] if has_color else [])
        rec = np.frombuffer(f.read(), dtype=fields, count=n)
    pts = np.stack([rec["x"], rec["y"], rec["z"]], axis=1)
    cols = np.stack([rec["r"], rec["g"], rec["b"]], axis=1) if has_color else None
    return pts, cols
