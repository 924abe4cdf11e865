"""The index readers on LoFTR's official index files (MegaDepth-1500 and ScanNet-1500)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from testkit import real_data
from matchforge.dataset.indices import (load_scene_info, read_list, read_megadepth_list,
                                        read_megadepth_scene_info, read_scannet_index)
from matchforge.errors import MatchforgeError


def _is_rotation(R: np.ndarray) -> bool:
    return np.allclose(R @ R.T, np.eye(3), atol=1e-4) and abs(np.linalg.det(R) - 1) < 1e-4


def test_megadepth_1500_through_list():
    root = real_data("loftr_indices", "megadepth_test_1500_scene_info")
    stems = read_list(root / "megadepth_test_1500.txt")
    assert len(stems) == 5
    pairs = read_megadepth_list(root, root / "megadepth_test_1500.txt", "/data/megadepth", 0.0)
    assert len(pairs) == 1500
    for stem in stems:
        mine = [p for p in pairs if p.scene == stem]
        assert len(mine) == 300
        lo, hi = map(float, stem.split("_")[1:])
        ov = np.array([p.overlap for p in mine])
        assert (ov >= lo).all() and (ov < hi).all(), stem
    for p in pairs[::37]:
        assert p.K0.shape == (3, 3) and p.K0.dtype == np.float64 and p.K0[2, 2] == 1
        assert _is_rotation(p.T0[:3, :3]) and _is_rotation(p.T1[:3, :3])
        np.testing.assert_allclose(p.T_0to1 @ p.T0, p.T1, atol=1e-9)
        assert str(p.image0).startswith("/data/megadepth/Undistorted_SfM/")
        assert p.depth0 is not None and p.depth0.suffix == ".h5"


def test_min_overlap_is_the_upstream_strict_filter():
    npz = real_data("loftr_indices", "megadepth_test_1500_scene_info", "0015_0.1_0.3.npz")
    all_pairs = read_megadepth_scene_info(npz, "root", 0.0)
    ov = np.array([p.overlap for p in all_pairs])
    thr = float(np.median(ov))
    kept = read_megadepth_scene_info(npz, "root", min_overlap=thr)
    assert len(kept) == int((ov > thr).sum()) and 0 < len(kept) < len(all_pairs)


def test_load_scene_info_is_the_upstream_dict():
    npz = real_data("loftr_indices", "megadepth_test_1500_scene_info", "0022_0.5_0.7.npz")
    info = load_scene_info(npz)
    assert isinstance(info, dict)
    for key in ("image_paths", "depth_paths", "intrinsics", "poses"):
        assert info[key].dtype == object and info[key].ndim == 1
    del info["pair_infos"]  # what the upstream loader does


def test_scannet_1500():
    root = real_data("loftr_indices", "scannet_test_1500")
    pairs = read_scannet_index(root / "test.npz", root / "intrinsics.npz", "/data/scannet")
    assert len(pairs) == 1500
    assert len({p.scene for p in pairs}) == 100
    for p in pairs:
        assert np.array_equal(p.T0, np.eye(4)) and np.array_equal(p.T1, p.T_0to1)
        assert np.isnan(p.overlap)
    p = pairs[0]
    assert p.scene == "scene0707_00" and p.image0.name == "15.jpg" and p.image0.parent.name == "color"
    assert p.depth1.name == "585.png"
    assert _is_rotation(p.T_0to1[:3, :3])
    # ScanNet intrinsics are for 640x480 frames
    assert 300 < p.K0[0, 2] < 340 and 220 < p.K0[1, 2] < 260


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(MatchforgeError, match="not found"):
        read_megadepth_scene_info(tmp_path / "missing.npz", tmp_path, 0.0)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(MatchforgeError, match="bad.npz"):
        load_scene_info(bad)


def test_real_npz_archives_are_read_too(tmp_path):
    """Third-party scripts (LoFTR-train) write real np.savez archives; the reader turns them into the dict."""
    info = load_scene_info(real_data("loftr_indices", "megadepth_test_1500_scene_info", "0015_0.3_0.5.npz"))
    pairs = np.empty(len(info["pair_infos"]), dtype=object)
    pairs[:] = info["pair_infos"]
    archive = tmp_path / "0015_savez.npz"
    np.savez(archive, image_paths=info["image_paths"], depth_paths=info["depth_paths"],
             intrinsics=info["intrinsics"], poses=info["poses"], pair_infos=pairs)
    assert open(archive, "rb").read(2) == b"PK"
    again = load_scene_info(archive)
    assert isinstance(again, dict) and len(again["pair_infos"]) == 300
    theirs = read_megadepth_scene_info(archive, "r", 0.0)
    ours = read_megadepth_scene_info(real_data("loftr_indices", "megadepth_test_1500_scene_info", "0015_0.3_0.5.npz"), "r", 0.0)
    assert [(p.image0, p.overlap) for p in theirs] == [(p.image0, p.overlap) for p in ours]


def test_scannet_poses_from_pose_files_agree_with_rel_pose(tmp_path):
    """With pose_dir, T_0to1 is recomputed the way upstream LoFTR does, from camera->world pose files."""
    root = real_data("loftr_indices", "scannet_test_1500")
    with np.load(root / "test.npz") as data:
        names, rel = data["name"], data["rel_pose"]
    # one pair per scene (so no frame is shared between pairs), 5 scenes
    first = [int(np.flatnonzero(names[:, 0] == s)[0]) for s in np.unique(names[:, 0])[:5]]
    np.savez(tmp_path / "test.npz", name=names[first], rel_pose=rel[first])
    pairs = read_scannet_index(tmp_path / "test.npz", root / "intrinsics.npz", "/data/scannet")
    rng = np.random.default_rng(0)
    for p in pairs:
        # an arbitrary world frame: camera 0 at a random pose, camera 1 placed so that T1 inv(T0) = rel_pose
        A = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        A *= np.sign(np.linalg.det(A))
        T0 = np.eye(4)
        T0[:3, :3], T0[:3, 3] = A, rng.normal(size=3)
        for frame, T in ((p.image0.stem, T0), (p.image1.stem, p.T_0to1 @ T0)):
            (tmp_path / "poses" / p.scene / "pose").mkdir(parents=True, exist_ok=True)
            np.savetxt(tmp_path / "poses" / p.scene / "pose" / f"{frame}.txt", np.linalg.inv(T))
    with_files = read_scannet_index(tmp_path / "test.npz", root / "intrinsics.npz", "/data/scannet",
                                    pose_dir=tmp_path / "poses")
    assert len(with_files) == 5
    for a, b in zip(pairs, with_files):
        np.testing.assert_allclose(b.T_0to1, a.T_0to1, atol=1e-6)
        assert not np.allclose(b.T0, np.eye(4))
    with pytest.raises(MatchforgeError, match="pose file not found"):
        read_scannet_index(root / "test.npz", root / "intrinsics.npz", "/data/scannet", pose_dir=tmp_path / "poses")
