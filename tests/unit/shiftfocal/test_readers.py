"""Readers of the shift/focal data sources: each format written here in its real layout, read back;
real depth (TUM RGB-D, Middlebury) checked against its own geometry."""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
import cv2  # noqa: E402

from testkit import real_data  # noqa: E402
from matchforge.errors import MatchforgeError  # noqa: E402
from matchforge.geometry.camera import focal_from_fov, unproject  # noqa: E402
from matchforge.shiftfocal.readers import (  # noqa: E402
    Item, evenly, read_depth_exr, read_kenburns, read_middlebury, read_pfm, read_sens, read_taskonomy, read_tum,
    resize_item,
)

MIDDLEBURY = {"f": 994.978, "cx": 311.193, "cy": 254.877, "doffs": 31.086, "baseline_m": 0.193001}


def _write_sens(path: Path, depths_mm: list[np.ndarray], colors: list[np.ndarray], K_depth: np.ndarray, shift: float = 1000.0) -> None:
    """A ScanNet .sens v4 file: header, then per frame pose, timestamps, JPEG colour and zlib uint16 depth."""
    dh, dw = depths_mm[0].shape
    ch, cw = colors[0].shape[:2]
    K4 = np.eye(4)
    K4[:3, :3] = K_depth
    name = b"StructureSensor"
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 4) + struct.pack("<Q", len(name)) + name)
        for m in (K4, np.eye(4), K4, np.eye(4)):
            f.write(struct.pack("<16f", *m.ravel()))
        f.write(struct.pack("<ii", 2, 1) + struct.pack("<4I", cw, ch, dw, dh) + struct.pack("<f", shift))
        f.write(struct.pack("<Q", len(depths_mm)))
        for i, (d, c) in enumerate(zip(depths_mm, colors)):
            jpg = cv2.imencode(".jpg", c)[1].tobytes()
            z = zlib.compress(d.astype("<u2").tobytes())
            f.write(struct.pack("<16f", *np.eye(4).ravel()) + struct.pack("<4Q", i, i, len(jpg), len(z)))
            f.write(jpg + z)


def test_sens_round_trip_samples_frames_evenly(tmp_path):
    rng = np.random.default_rng(0)
    K = np.array([[577.6, 0, 319.5], [0, 578.7, 239.5], [0, 0, 1]])
    depths = [rng.integers(400, 6000, (48, 64)).astype(np.uint16) for _ in range(7)]
    for i, d in enumerate(depths):
        d[0, :5] = 0  # missing
        d[1, 0] = 60000 + i  # beyond 50 m: invalid
    colors = [np.full((96, 128, 3), 30 * i, np.uint8) for i in range(7)]
    path = tmp_path / "scene0000_00.sens"
    _write_sens(path, depths, colors, K)
    items = read_sens(path, num_frames=3)
    # evenly over the sequence (frames 0, 3, 6), not the first three (the Train-3D bug)
    assert [it.name for it in items] == ["scene0000_00_000000", "scene0000_00_000003", "scene0000_00_000006"]
    for it, i in zip(items, (0, 3, 6)):
        ref = depths[i].astype(np.float32) / 1000.0
        ref[ref >= 50] = 0
        np.testing.assert_allclose(it.depth, ref, rtol=1e-6)
        assert it.depth[1, 0] == 0 and (it.depth[0, :5] == 0).all()
        np.testing.assert_allclose(it.K, K, rtol=1e-6)
        assert it.rgb.shape == (48, 64, 3) and abs(int(it.rgb.mean()) - 30 * i) <= 2
    assert len(read_sens(path)) == 7


def test_sens_truncated_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.sens"
    _write_sens(path, [np.ones((8, 8), np.uint16)] * 2, [np.zeros((8, 8, 3), np.uint8)] * 2, np.eye(3))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(MatchforgeError, match="ScanNet"):
        read_sens(path)


def _write_exr(path: Path, img: np.ndarray, channel: str = "Y", compression: str = "ZIP", tiled: bool = False) -> None:
    """An OpenEXR file with one FLOAT channel, written by the OpenEXR library."""
    import OpenEXR

    header = {"compression": getattr(OpenEXR, f"{compression}_COMPRESSION"),
              "type": OpenEXR.tiledimage if tiled else OpenEXR.scanlineimage}
    if tiled:
        tiles = OpenEXR.TileDescription()
        tiles.xSize = tiles.ySize = 16
        header["tiles"] = tiles
    with OpenEXR.File(header, {channel: np.ascontiguousarray(img, np.float32)}) as exr:
        exr.write(str(path))


@pytest.mark.parametrize("compression,tiled", [("NO", False), ("ZIP", False), ("PIZ", True)])
def test_exr_depth_round_trip(tmp_path, compression, tiled):
    """Scanline and tiled files, several compressions (the hand-written reader this replaced read neither PIZ
    nor tiles); a damaged file is a clear error."""
    img = np.random.default_rng(2).uniform(0, 5e4, (37, 29)).astype(np.float32)
    img[5:20, 3:9] = 1234.5  # compressible part
    _write_exr(tmp_path / "d.exr", img, "Z", compression, tiled)
    np.testing.assert_array_equal(read_depth_exr(tmp_path / "d.exr"), img)
    (tmp_path / "bad.exr").write_bytes((tmp_path / "d.exr").read_bytes()[:100])
    with pytest.raises(MatchforgeError, match="cannot read EXR depth"):
        read_depth_exr(tmp_path / "bad.exr")


def test_kenburns_exr_and_fov(tmp_path):
    rng = np.random.default_rng(1)
    depth_units = rng.uniform(500, 20000, (32, 32)).astype(np.float32)
    depth_units[0, 0] = 70000  # beyond 60 m
    (tmp_path / "depths" / "city-depth").mkdir(parents=True)
    (tmp_path / "rgb" / "city").mkdir(parents=True)
    for fid, fov in (("00001", 40.0), ("00002", 65.0)):
        _write_exr(tmp_path / "depths" / "city-depth" / f"{fid}-depth.exr", depth_units)
        (tmp_path / "rgb" / "city" / f"{fid}-meta.json").write_text(json.dumps({"fltFov": fov}))
    items = read_kenburns(tmp_path, None, 0.001)
    assert [it.name for it in items] == ["city_00001", "city_00002"]
    np.testing.assert_allclose(items[0].depth[1:], depth_units[1:] / 1000.0, rtol=1e-6)
    assert items[0].depth[0, 0] == 0
    assert items[1].K[0, 0] == pytest.approx(16 / math.tan(math.radians(32.5)))
    assert items[0].K[0, 2] == 16 and items[0].K[1, 2] == 16


def test_taskonomy_png_in_512ths_of_a_metre(tmp_path):
    raw = np.array([[512, 1024, 65535], [256, 0, 5120]], np.uint16)
    sdir = tmp_path / "depth_zbuffer" / "taskonomy" / "allensville"
    idir = tmp_path / "point_info" / "taskonomy" / "allensville"
    sdir.mkdir(parents=True)
    idir.mkdir(parents=True)
    base = "point_0_view_0"
    cv2.imwrite(str(sdir / f"{base}_domain_depth_zbuffer.png"), raw)
    (idir / f"{base}_domain_point_info.json").write_text(json.dumps({"field_of_view_rads": 1.0}))
    (it,) = read_taskonomy(tmp_path)
    np.testing.assert_allclose(it.depth, [[1.0, 2.0, 0.0], [0.5, 0.0, 10.0]])
    assert it.K[0, 0] == pytest.approx(1.5 / math.tan(0.5))


def test_tum_real_frames_and_intrinsics():
    folder = real_data("tum_rgbd")
    items = read_tum(folder)
    assert len(items) == 4
    fr1, fr3 = items[0], items[3]
    assert fr1.K[0, 0] == 517.3 and fr1.K[1, 2] == 255.3
    assert fr3.K[0, 0] == 535.4 and fr3.K[1, 1] == 539.2  # nearest-timestamp line of INTRINSICS.txt
    for it in items:
        valid = it.depth[it.depth > 0]
        assert it.depth.shape == (480, 640) and it.rgb.shape == (480, 640, 3)
        assert 0.6 < valid.mean() < 5 and valid.max() < 10 and (it.depth > 0).mean() > 0.5  # metres, indoor
    assert evenly(4, 2) == [0, 3]
    assert [i.name for i in read_tum(folder, num_samples=2)] == [items[0].name, items[3].name]


def test_tum_missing_intrinsics_is_a_clear_error(tmp_path):
    folder = tmp_path / "tum"
    shutil.copytree(real_data("tum_rgbd"), folder)
    (folder / "INTRINSICS.txt").unlink()
    with pytest.raises(MatchforgeError, match="intrinsics"):
        read_tum(folder)
    assert read_tum(folder, K=[525, 525, 319.5, 239.5])[0].K[0, 0] == 525


def _quat_to_R(qx, qy, qz, qw):
    from scipy.spatial.transform import Rotation

    return Rotation.from_quat([qx, qy, qz, qw]).as_matrix()


def test_tum_unprojection_is_metric_across_frames():
    """Unproject TUM fr1 frame A with its K, move it with the motion-capture poses into frame B,
    and compare with B's own measured depth: the metric points agree (median within 2 cm)."""
    folder = real_data("tum_rgbd")
    a, b = read_tum(folder)[:2]
    gt = [list(map(float, line.split()[1:])) for line in (folder / "groundtruth_excerpt.txt").read_text().splitlines() if line[:1].isdigit()]
    T = []
    for t in gt:  # camera -> world
        M = np.eye(4)
        M[:3, :3], M[:3, 3] = _quat_to_R(*t[3:]), t[:3]
        T.append(M)
    pts, _ = unproject(a.depth, a.K)
    X = pts @ (np.linalg.inv(T[1]) @ T[0])[:3, :3].T + (np.linalg.inv(T[1]) @ T[0])[:3, 3]
    u = b.K[0, 0] * X[:, 0] / X[:, 2] + b.K[0, 2]
    v = b.K[1, 1] * X[:, 1] / X[:, 2] + b.K[1, 2]
    inside = (u >= 0) & (u < 640) & (v >= 0) & (v < 480)
    db = b.depth[v[inside].astype(int), u[inside].astype(int)]
    ok = db > 0
    err = np.abs(db[ok] - X[inside][ok, 2])
    assert inside.mean() > 0.8
    assert np.median(err) < 0.02, np.median(err)
    # a wrong focal breaks the agreement: the check can fail
    wrong = unproject(a.depth, a.K * np.array([[0.7], [0.7], [1]]))[0]
    Xw = wrong @ (np.linalg.inv(T[1]) @ T[0])[:3, :3].T + (np.linalg.inv(T[1]) @ T[0])[:3, 3]
    uw = b.K[0, 0] * Xw[:, 0] / Xw[:, 2] + b.K[0, 2]
    vw = b.K[1, 1] * Xw[:, 1] / Xw[:, 2] + b.K[1, 2]
    iw = (uw >= 0) & (uw < 640) & (vw >= 0) & (vw < 480)
    dw = b.depth[vw[iw].astype(int), uw[iw].astype(int)]
    assert np.median(np.abs(dw[dw > 0] - Xw[iw][dw > 0, 2])) > 3 * np.median(err)


def _middlebury_folder(tmp_path: Path) -> Path:
    """The shared Middlebury pair with its calibration written as Middlebury's calib.txt (baseline in mm)."""
    src = real_data("middlebury_motorcycle")
    folder = tmp_path / "Motorcycle-perfect"
    folder.mkdir()
    shutil.copy(src / "motorcycle_disp.npz", folder)
    shutil.copy(src / "motorcycle_left.png", folder)
    c = MIDDLEBURY
    (folder / "calib.txt").write_text(
        f"cam0=[{c['f']} 0 {c['cx']}; 0 {c['f']} {c['cy']}; 0 0 1]\n"
        f"cam1=[{c['f']} 0 {c['cx'] + c['doffs']}; 0 {c['f']} {c['cy']}; 0 0 1]\n"
        f"doffs={c['doffs']}\nbaseline={c['baseline_m'] * 1000}\nwidth=741\nheight=500\nndisp=270\n")
    return folder


def test_middlebury_depth_reprojects_to_the_right_view(tmp_path):
    """Metric points from the left view, moved by the baseline into the right camera (whose principal
    point is shifted by doffs), land exactly at u - disparity: calibration and unprojection agree."""
    folder = _middlebury_folder(tmp_path)
    (it,) = read_middlebury(folder)
    disp = np.load(folder / "motorcycle_disp.npz")["arr_0"]
    valid = np.isfinite(disp)
    assert ((it.depth > 0) == valid).all() and it.rgb is not None
    z = it.depth[valid]
    assert 1.0 < np.median(z) < 5.0  # a motorcycle a few metres away
    pts, _ = unproject(it.depth, it.K)
    c = MIDDLEBURY
    u_right = c["f"] * (pts[:, 0] - c["baseline_m"]) / pts[:, 2] + c["cx"] + c["doffs"]
    v, u = np.nonzero(valid)
    np.testing.assert_allclose(u_right, u + 0.5 - disp[valid], atol=1e-3)
    # the same through a PFM file, and through an explicit calib dict
    pfm = folder / "disp0.pfm"
    with open(pfm, "wb") as f:
        f.write(b"Pf\n741 500\n-1.0\n")
        np.flipud(np.where(valid, disp, np.inf)).astype("<f4").tofile(f)
    np.testing.assert_array_equal(read_pfm(pfm)[valid], disp[valid])
    (it2,) = read_middlebury(folder, calib=c)
    np.testing.assert_allclose(it2.depth, it.depth, rtol=1e-5)


def test_resize_keeps_sparse_points_and_scales_K():
    depth = np.zeros((100, 200), np.float32)
    depth[::10, ::10] = 5.0
    item = Item("x", depth, np.array([[100.0, 0, 100], [0, 100, 50], [0, 0, 1]]))
    small = resize_item(item, 50)
    assert small.depth.shape == (25, 50)
    assert (small.depth > 0).sum() == (depth > 0).sum()  # every sparse point lands in its own cell
    np.testing.assert_allclose(small.K, [[25, 0, 25], [0, 25, 12.5], [0, 0, 1]])
    # a pixel centre maps to the same ray before and after
    r, c = 30, 70
    tr, tc = int((r + 0.5) / 4), int((c + 0.5) / 4)
    ray = ((c + 0.5 - 100) / 100, (r + 0.5 - 50) / 100)
    ray_small = ((tc + 0.5 - 25) / 25, (tr + 0.5 - 12.5) / 25)
    assert abs(ray[0] - ray_small[0]) < 4 / 100 and abs(ray[1] - ray_small[1]) < 4 / 100


def test_focal_from_fov():
    assert focal_from_fov(90.0, 640) == pytest.approx(320.0)
