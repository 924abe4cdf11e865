"""Scene info and dataset build on the demo scene: round trip, buckets, upstream access pattern, splits."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch
import yaml

from testkit import REPO
from matchforge.dataset import build, scene_info
from matchforge.dataset.indices import load_scene_info, read_dataset
from matchforge.io.depth import write_depth
from matchforge.errors import MatchforgeError
from matchforge.io.colmap import Scene, View, load_scene

SCENE = "sacre_coeur"


def _config() -> dict:
    from matchforge.config_check import validate_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate_config(config)
    return config


def _write_sparse_depth(sfm: Scene, out: Path, skip: set[str]) -> None:
    """Depth H5 per view holding the SfM depth at the observed pixels (0 elsewhere); ``skip`` gets none."""
    for v in sfm.views.values():
        if v.name in skip:
            continue
        d = np.zeros((v.height, v.width), np.float32)
        rc = np.floor(v.xy[:, ::-1]).astype(int)
        d[rc[:, 0].clip(0, v.height - 1), rc[:, 1].clip(0, v.width - 1)] = sfm.camera_points(v)[:, 2]
        write_depth(out / f"{v.stem}.h5", d)


@pytest.fixture(scope="module")
def built(demo_sfm, tmp_path_factory):
    """Demo scene -> scene info (one image without depth) -> dataset 'demo' with the shipped config."""
    config = _config()
    root = tmp_path_factory.mktemp("dataset")
    sfm = load_scene(demo_sfm / "sparse")
    no_depth = sorted(sfm.views)[3]
    _write_sparse_depth(sfm, root / "h5", {no_depth})
    # depth only at the observation pixels, which LoFTR's coarse cell centres hardly ever hit: no pair would keep
    # ground truth, so these tests of the layout keep every pair (test_every_training_pair_has_ground_truth...)
    conf = {**config["scene_info"], "min_gt_matches": 0}
    stats = scene_info.main(conf, demo_sfm / "sparse", demo_sfm / "images", root / "h5", root / "si", SCENE)
    meta = build.main(config["datasets"]["demo"], "demo", {SCENE: root / "si"}, {SCENE: demo_sfm / "images"},
                      {SCENE: root / "h5"}, root / "demo")
    return dict(root=root, sfm=sfm, no_depth=no_depth, stats=stats, meta=meta, conf=conf, config=config,
                demo_sfm=demo_sfm)


def _obs(view: View) -> dict[int, int]:
    out: dict[int, int] = {}
    for k, pid in enumerate(view.point_ids.tolist()):
        out.setdefault(pid, k)
    return out


def _project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    x = X @ K.T
    return x[:, :2] / x[:, 2:]


def test_round_trip_reprojects_shared_points(built):
    sfm, meta = built["sfm"], built["meta"]
    dataset_json = built["root"] / "demo" / "dataset.json"
    views = {v.name: v for v in sfm.views.values()}
    n_pairs, obs_err = 0, []
    for split in ("train", "test"):
        pairs = read_dataset(dataset_json, split, 0.0)
        assert len(pairs) == meta["splits"][split]["num_pairs"] > 0
        for p in pairs:
            n_pairs += 1
            for path in (p.image0, p.image1, p.depth0, p.depth1):
                assert path.is_symlink() and path.resolve().is_file()
            v0, v1 = views[p.image0.name], views[p.image1.name]
            np.testing.assert_array_equal(p.K0, v0.K)
            np.testing.assert_array_equal(p.T1, v1.T_cw)
            o0, o1 = _obs(v0), _obs(v1)
            shared = [pid for pid in o0 if pid in o1]
            X = np.stack([sfm.point_xyz[pid] for pid in shared])
            Xc0 = X @ v0.T_cw[:3, :3].T + v0.T_cw[:3, 3]
            # lift the projection in image 0 with its SfM depth, move it with T_0to1, project into image 1
            x0 = _project(p.K0, Xc0)
            rays = np.c_[x0, np.ones(len(x0))] @ np.linalg.inv(p.K0).T
            X1 = (rays * Xc0[:, 2:]) @ p.T_0to1[:3, :3].T + p.T_0to1[:3, 3]
            x1 = _project(p.K1, X1)
            expected = _project(v1.K, X @ v1.T_cw[:3, :3].T + v1.T_cw[:3, 3])
            assert np.abs(x1 - expected).max() < 1e-6
            obs_err.append(np.linalg.norm(x1 - v1.xy[[o1[pid] for pid in shared]], axis=1))
    err = np.concatenate(obs_err)
    # against the SfM observations themselves: BA residuals only
    assert np.median(err) < 1.0 and np.mean(err < 1.0) > 0.8, (np.median(err), np.mean(err < 1.0))
    assert n_pairs == meta["splits"]["train"]["num_pairs"] + meta["splits"]["test"]["num_pairs"]


def test_overlaps_are_d2net_scores_inside_their_bucket(built):
    sfm, stats, conf = built["sfm"], built["stats"], built["conf"]
    views = list(sfm.views.values())
    points = [set(v.point_ids.tolist()) for v in views]
    seen = set()
    for (lo, hi), stem in zip(conf["buckets"], scene_info.bucket_stems(SCENE, conf)):
        info = load_scene_info(built["root"] / "si" / f"{stem}.npz")
        assert len(info["pair_infos"]) == stats["pairs_per_bucket"][stem]
        for (i, j), ov, cm in info["pair_infos"]:
            i, j = int(i), int(j)
            assert i < j and (i, j) not in seen
            seen.add((i, j))
            shared = len(points[i] & points[j])
            assert ov == pytest.approx(min(shared / len(points[i]), shared / len(points[j])))
            assert lo <= ov < hi
            # central match: one shared point's observation in each image
            xi = views[i].xy[np.isin(views[i].point_ids, list(points[i] & points[j]))]
            assert np.min(np.linalg.norm(xi - cm[:2], axis=1)) < 1e-9
    # every pair of images with depth and an overlap inside some bucket is in exactly one file
    extras = np.load(built["root"] / "si" / "d2net_extras.npz")
    sym = extras["pair_overlap"]
    in_range = {(i, j) for i in range(len(views)) for j in range(i + 1, len(views))
                if any(lo <= sym[i, j] < hi for lo, hi in conf["buckets"])}
    assert seen == in_range and len(seen) > 0


def test_image_without_depth_is_none_everywhere(built):
    stem = scene_info.bucket_stems(SCENE, built["conf"])[0]
    info = load_scene_info(built["root"] / "si" / f"{stem}.npz")
    k = sorted(built["sfm"].views).index(built["no_depth"])
    for key in ("image_paths", "depth_paths", "intrinsics", "poses"):
        assert info[key][k] is None
    assert all(k not in (int(i), int(j)) for (i, j), _, _ in info["pair_infos"])
    assert built["stats"]["depth_status"][built["no_depth"]] == "missing"
    assert built["stats"]["num_depth_valid"] == len(built["sfm"].views) - 1


def test_files_behave_like_official_ones_under_the_upstream_loader(built):
    """LoFTR's MegaDepthDataset: np.load -> dict, del pair_infos, K/T to torch, depth h5 padded to 2000."""
    data_root = built["root"] / "demo" / "train"
    list_path = built["root"] / "demo" / "index" / "trainvaltest_list" / "train_list.txt"
    npz_root = built["root"] / "demo" / "index" / "scene_info"
    with open(list_path) as f:
        npz_names = [line.split()[0] for line in f.readlines()]  # LoFTR's MultiSceneDataModule parsing
    assert npz_names
    for name in npz_names:
        raw = open(npz_root / f"{name}.npz", "rb").read()
        assert not raw.startswith(b"PK")  # a pickle, not a zip archive
        info = np.load(npz_root / f"{name}.npz", allow_pickle=True)
        assert isinstance(info, dict)
        pair_infos = [p for p in info["pair_infos"].copy() if p[1] > 0.0]
        del info["pair_infos"]
        assert pair_infos
        (idx0, idx1), overlap, central = pair_infos[0]
        K0 = torch.tensor(info["intrinsics"][idx0].copy(), dtype=torch.float).reshape(3, 3)
        T0, T1 = info["poses"][idx0], info["poses"][idx1]
        T_0to1 = torch.tensor(np.matmul(T1, np.linalg.inv(T0)), dtype=torch.float)[:4, :4]
        assert K0.shape == (3, 3) and T_0to1.shape == (4, 4) and torch.isfinite(T_0to1).all()
        img = cv2.imread(os.path.join(data_root, info["image_paths"][idx0]), cv2.IMREAD_GRAYSCALE)
        with h5py.File(os.path.join(data_root, info["depth_paths"][idx0]), "r") as f:
            depth = np.array(f["depth"])
        assert img is not None and depth.shape == img.shape and max(depth.shape) <= 2000
        padded = np.zeros((2000, 2000), depth.dtype)
        padded[: depth.shape[0], : depth.shape[1]] = depth
        assert (depth > 0).any()


def test_split_is_deterministic_and_has_no_leakage(built, tmp_path):
    root, meta, demo_sfm = built["root"], built["meta"], built["demo_sfm"]
    again = build.main(built["config"]["datasets"]["demo"], "demo", {SCENE: root / "si"},
                       {SCENE: demo_sfm / "images"}, {SCENE: root / "h5"}, tmp_path / "demo")
    assert again["splits"] == meta["splits"] and again["scenes"] == meta["scenes"]
    images = meta["scenes"][SCENE]["images"]
    assert not set(images["train"]) & (set(images["test"]) | set(images["val"]))
    assert len(images["test"]) == 3  # 30 % of the 10 demo photos
    dataset_json = root / "demo" / "dataset.json"
    train_used = {p.image0.name for p in read_dataset(dataset_json, "train", 0.0)} | \
                 {p.image1.name for p in read_dataset(dataset_json, "train", 0.0)}
    test_used = {p.image0.name for p in read_dataset(dataset_json, "test", 0.0)} | \
                {p.image1.name for p in read_dataset(dataset_json, "test", 0.0)}
    assert train_used <= set(images["train"]) and test_used <= set(images["test"])
    linked = {p.name for p in (root / "demo" / "train").rglob("*.jpg")}
    assert linked == train_used and not linked & set(images["test"])
    # the other splits' images are None in a split's scene-info file, so no loader can reach them
    for stem in meta["splits"]["train"]["scene_infos"]:
        info = load_scene_info(root / "demo" / "index" / "scene_info" / f"{stem}.npz")
        names = {Path(p).name for p in info["image_paths"] if p is not None}
        assert names <= set(images["train"])
    lists = root / "demo" / "index" / "trainvaltest_list"
    assert (lists / "val_list.txt").read_text() == (lists / "test_list.txt").read_text()  # no val group
    # a different seed is still a valid split
    other = build.main({**built["config"]["datasets"]["demo"], "split": {"seed": 1, "val_fraction": 0.0,
                        "test_fraction": 0.3}}, "demo", {SCENE: root / "si"}, {SCENE: demo_sfm / "images"},
                       {SCENE: root / "h5"}, tmp_path / "demo_seed1")
    assert other["splits"]["train"]["num_pairs"] > 0 and other["splits"]["test"]["num_pairs"] > 0


def test_split_by_scene_and_loftr_config(built, tmp_path):
    root, demo_sfm = built["root"], built["demo_sfm"]
    scene_info.main(built["conf"], demo_sfm / "sparse", demo_sfm / "images", root / "h5", tmp_path / "si_b", "twin")
    conf = {"scenes": [SCENE, "twin"], "split": {"seed": 3}, "loftr": {"data_prefix": "data/two"}}
    # the twin holds the same photos: whichever scene is the test one, all its images duplicate training ones
    with pytest.raises(MatchforgeError, match="no test pairs \\([0-9]+ val/test images were left out as duplicates"):
        build.main(conf, "two", {SCENE: root / "si", "twin": tmp_path / "si_b"},
                   {SCENE: demo_sfm / "images", "twin": demo_sfm / "images"},
                   {SCENE: root / "h5", "twin": root / "h5"}, tmp_path / "leaky")
    # an existing COLMAP model (no SfM record of its photos) whose photos were re-encoded at JPEG quality 90
    # (other bytes, other pixels): checked from its images by perceptual hash, still refused
    twin_images = tmp_path / "twin_model" / "images"
    shutil.copytree(demo_sfm / "images", twin_images)
    for p in twin_images.iterdir():
        cv2.imwrite(str(p), cv2.imread(str(p)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    with pytest.raises(MatchforgeError, match="no test pairs \\([0-9]+ val/test images were left out as duplicates"):
        build.main(conf, "two", {SCENE: root / "si", "twin": tmp_path / "si_b"},
                   {SCENE: demo_sfm / "images", "twin": twin_images},
                   {SCENE: root / "h5", "twin": root / "h5"}, tmp_path / "leaky2")
    for p in twin_images.iterdir():  # mirrored: other photos as far as the split can tell
        cv2.imwrite(str(p), cv2.flip(cv2.imread(str(p)), 1))
    meta = build.main(conf, "two", {SCENE: root / "si", "twin": tmp_path / "si_b"},
                      {SCENE: demo_sfm / "images", "twin": twin_images},
                      {SCENE: root / "h5", "twin": root / "h5"}, tmp_path / "two")
    assert meta["split_by"] == "scene"
    where = {s: m["split"] for s, m in meta["scenes"].items()}
    assert sorted(where.values()) == ["test", "train"]
    for split in ("train", "test"):
        (scene,) = [s for s, w in where.items() if w == split]
        assert all(stem.startswith(scene + "_") for stem in meta["splits"][split]["scene_infos"])
        assert {p.scene.rsplit("_", 2)[0] for p in read_dataset(tmp_path / "two" / "dataset.json", split, 0.0)} == {scene}
    text = (tmp_path / "two" / "loftr_data_config.py").read_text()
    assert 'cfg.DATASET.TRAIN_DATA_ROOT = "data/two/train"' in text
    assert 'TRAIN_BASE_PATH = "data/two/index"' in text
    for field in ("TRAINVAL_DATA_SOURCE", "TRAIN_NPZ_ROOT", "TRAIN_LIST_PATH", "MIN_OVERLAP_SCORE_TRAIN",
                  "TEST_DATA_SOURCE", "VAL_DATA_ROOT", "TEST_DATA_ROOT", "VAL_NPZ_ROOT", "VAL_LIST_PATH",
                  "TEST_LIST_PATH", "MIN_OVERLAP_SCORE_TEST", "N_SAMPLES_PER_SUBSET", "MGDPT_IMG_RESIZE"):
        assert field in text, field
    compile(text, "loftr_data_config.py", "exec")


def test_bucket_options(built, tmp_path):
    demo_sfm, root = built["demo_sfm"], built["root"]
    args = (demo_sfm / "sparse", demo_sfm / "images", root / "h5")
    keep = {"min_gt_matches": 0}  # see `built`
    everything = scene_info.main({"buckets": [[0.0, 1.0]], **keep}, *args, tmp_path / "all", SCENE)
    capped = scene_info.main({"buckets": [[0.0, 1.0]], "max_pairs_per_bucket": 5, **keep}, *args, tmp_path / "cap", SCENE)
    limited = scene_info.main({"buckets": [[0.0, 1.0]], "max_scale_ratio": 1.05, **keep}, *args, tmp_path / "sr", SCENE)
    n_all = everything["num_pairs"]
    assert n_all == everything["num_candidate_pairs"] > built["stats"]["num_pairs"]
    assert capped["num_pairs"] == 5
    ratios = np.load(tmp_path / "all" / "d2net_extras.npz")["scale_ratio_matrix"]
    finite = ratios[np.triu_indices(len(ratios), 1)]
    assert limited["num_pairs"] == int(np.sum(finite[np.isfinite(finite)] <= 1.05)) < n_all
    # files from an earlier bucket layout are removed
    scene_info.main({"buckets": [[0.2, 0.9]], **keep}, *args, tmp_path / "all", SCENE)
    assert sorted(p.name for p in (tmp_path / "all").glob("*_*_*.npz")) == [f"{SCENE}_0.2_0.9.npz"]


def test_bad_inputs_are_explained(built, tmp_path):
    demo_sfm, root = built["demo_sfm"], built["root"]
    with pytest.raises(MatchforgeError, match="bucket"):
        scene_info.main({"buckets": [[0.5, 0.3]]}, demo_sfm / "sparse", demo_sfm / "images", root / "h5",
                        tmp_path / "x", SCENE)
    with pytest.raises(MatchforgeError, match="sparse model folder not found"):
        scene_info.main({}, tmp_path / "nope", demo_sfm / "images", root / "h5", tmp_path / "x", SCENE)
    # a single narrow bucket leaves at most a pair or two: one split ends up empty
    scene_info.main({"buckets": [[0.75, 1.0]], "min_gt_matches": 0}, demo_sfm / "sparse", demo_sfm / "images", root / "h5",
                    tmp_path / "narrow", SCENE)
    with pytest.raises(MatchforgeError, match="no (train|test) pairs"):
        build.main({"scenes": [SCENE]}, "narrow", {SCENE: tmp_path / "narrow"}, {SCENE: demo_sfm / "images"},
                   {SCENE: root / "h5"}, tmp_path / "narrow_ds")
    with pytest.raises(MatchforgeError, match="by scene but has one scene"):
        build.main({"scenes": [SCENE], "split": {"by": "scene"}}, "one", {SCENE: root / "si"},
                   {SCENE: demo_sfm / "images"}, {SCENE: root / "h5"}, tmp_path / "one")
    bad = tmp_path / "bad_si"
    bad.mkdir()
    (bad / f"{SCENE}_0.1_0.3.npz").write_bytes(pickle.dumps("not a dict"))
    with pytest.raises(MatchforgeError, match="not a dict"):
        build.main({"scenes": [SCENE]}, "bad", {SCENE: bad}, {SCENE: demo_sfm / "images"}, {}, tmp_path / "bad")


def test_track_wise_covisibility_matches_the_pairwise_d2net_loop(built):
    from matchforge.dataset.covisibility import covisibility, covisibility_pairwise

    sfm = built["sfm"]
    views = list(sfm.views.values())
    valid = np.ones(len(views), bool)
    valid[2] = False
    fast, slow = covisibility(sfm, views, valid), covisibility_pairwise(sfm, views, valid)
    np.testing.assert_array_equal(fast.shared, slow.shared)
    np.testing.assert_allclose(fast.overlap, slow.overlap)
    np.testing.assert_allclose(fast.scale_ratio, slow.scale_ratio)
    np.testing.assert_array_equal(fast.n_points3D, slow.n_points3D)
    assert (fast.overlap[2] == -1).all() and (fast.shared[2] == 0).all()
    assert (fast.overlap[valid][:, valid] > 0).sum() > len(views)  # the demo photos do overlap


def test_viewpoint_split_holds_out_a_separated_group_of_cameras(built):
    """The demo's held-out photos are a group of cameras: each one's nearest training camera is farther
    than the held-out photos are from each other (separation > 1), as dataset.json reports."""
    vp = built["meta"]["scenes"][SCENE]["viewpoint"]
    images = built["meta"]["scenes"][SCENE]["images"]
    assert set(vp["held_out"]) == set(images["test"]) | set(images["val"])
    assert vp["separated"] and all(v["separation"] > 1 for v in vp["held_out"].values()), vp
    assert all(v["nearest_train"] in images["train"] for v in vp["held_out"].values())


def test_near_duplicate_photos_stay_in_one_split(built, tmp_path):
    """A photo re-encoded at JPEG quality 90 under another name passes byte and pixel checks; its perceptual
    hash groups it with the original, so both land in the same split, whatever the seed, and dataset.json
    lists them."""
    root, demo_sfm = built["root"], built["demo_sfm"]
    images = tmp_path / "model" / "images"  # an existing COLMAP model: hashes come from its images
    shutil.copytree(demo_sfm / "images", images)
    names = sorted(p.name for p in images.iterdir())
    original, copy = names[1], names[6]
    cv2.imwrite(str(images / copy), cv2.imread(str(images / original)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert (images / copy).read_bytes() != (images / original).read_bytes()
    together = 0
    for seed in range(6):
        conf = {**built["config"]["datasets"]["demo"], "split": {"seed": seed, "val_fraction": 0.0, "test_fraction": 0.3}}
        meta = build.main(conf, "demo", {SCENE: root / "si"}, {SCENE: images}, {SCENE: root / "h5"}, tmp_path / f"d{seed}")
        where = {n: s for s, ns in meta["scenes"][SCENE]["images"].items() for n in ns}
        if original in where or copy in where:
            assert where.get(original) == where.get(copy), (seed, where)
            together += 1
        assert [sorted(g) for g in meta["scenes"][SCENE]["viewpoint"]["near_duplicates"]] == [sorted([original, copy])]
    assert together == 6


def test_every_training_pair_has_ground_truth_and_pairs_csv_says_how_much(demo_sfm, demo_dataset, tmp_path):
    """The demo as the shipped config builds it (sparse depth, consistency filter): pairs.csv lists each bucketed
    pair with its ground-truth coarse matches at gt_img_resize; a threshold drops the weakest (listed in
    stats.json); every pair LoFTR then loads, through its own loader and supervision, has at least that many."""
    import pandas as pd
    from torch.utils.data import default_collate

    from matchforge.loftr.data import PairDataset
    from matchforge.loftr.supervision import coarse_supervision

    config = _config()
    root, h5 = demo_dataset.parent.parent, demo_dataset.parents[1] / "depth" / "h5"
    table = pd.read_csv(root / "si" / "pairs.csv")
    shipped = json.loads((root / "si" / "stats.json").read_text())
    assert list(table.columns) == ["image0", "image1", "bucket", "overlap", "gt_coarse_matches", "valid0", "valid1"]
    assert len(table) == shipped["num_pairs"] + shipped["num_dropped_few_gt_matches"]
    assert table["valid0"].between(0, 1).all() and (table["gt_coarse_matches"] >= 1).all()
    cut = int(table["gt_coarse_matches"].median())
    conf = {**config["scene_info"], "min_gt_matches": cut}
    stats = scene_info.main(conf, demo_sfm / "sparse", demo_sfm / "images", h5, tmp_path / "si", SCENE)
    weak = {(r.image0, r.image1) for r in table.itertuples() if r.gt_coarse_matches < cut}
    assert weak and {(d["image0"], d["image1"]) for d in stats["dropped_few_gt_matches"]} == weak
    assert stats["num_pairs"] == len(table) - len(weak)
    build.main(config["datasets"]["demo"], "demo", {SCENE: tmp_path / "si"}, {SCENE: demo_sfm / "images"},
               {SCENE: h5}, tmp_path / "demo")
    records = [r for split in ("train", "test") for r in read_dataset(tmp_path / "demo" / "dataset.json", split, 0.0)]
    assert records
    data = PairDataset(records, img_resize=conf["gt_img_resize"], depth_max_size=None, pad=True, interpolation="linear")
    counts = [int(coarse_supervision(default_collate([data[k]]), depth_check=False)["conf_matrix_gt"].sum()) for k in range(len(data))]
    assert min(counts) >= cut, counts  # the loader and the supervision training runs agree with pairs.csv


def read_posed_images(root: Path) -> dict[str, dict]:
    """A reader written to glue-factory's posed-images layout (gluefactory/datasets/posed_images.py): per scene,
    views.txt (name R t MODEL w h params), pairs.txt, images/<name>, depths/<stem before the first dot>.h5."""
    scenes = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        views = {}
        for line in (folder / "views.txt").read_text().splitlines():
            name, *v = line.split(" ")
            T = np.eye(4)
            T[:3, :3] = np.array(v[:9], float).reshape(3, 3)
            T[:3, 3] = np.array(v[9:12], float)
            model, w, h, params = v[12], int(v[13]), int(v[14]), np.array(v[15:], float)
            assert model == "PINHOLE" and len(params) == 4
            with h5py.File(folder / "depths" / f"{name.split('.')[0]}.h5", "r") as f:
                depth = f["/depth"][()].astype(np.float32)
            image = cv2.imread(str(folder / "images" / name))
            assert image.shape[:2] == depth.shape == (h, w)
            K = np.array([[params[0], 0, params[2]], [0, params[1], params[3]], [0, 0, 1]])
            views[name] = {"T": T, "K": K, "depth": depth, "image": folder / "images" / name}
        pairs = [tuple(line.split(" ")) for line in (folder / "pairs.txt").read_text().splitlines()]
        scenes[folder.name] = {"views": views, "pairs": pairs}
    return scenes


def test_gluefactory_export_reads_back_and_its_depth_reprojects(demo_dataset, tmp_path):
    """The glue-factory export, read back by a reader written to that layout: every test pair of the dataset is
    there with its images, and the exported poses, intrinsics and depth are geometrically right: view 0's depth,
    carried into view 1 by the exported cameras, agrees with view 1's depth (a transposed R, a camera->world
    pose or a half-pixel shift would not)."""
    from matchforge.dataset.export import gluefactory

    summary = gluefactory(demo_dataset, tmp_path / "gf")
    assert summary["val"] == {"same_as": "test"} and summary["test"]["sacre_coeur"]["pairs"] >= 1
    exported = read_posed_images(tmp_path / "gf" / "test")
    assert list(exported) == ["sacre_coeur"]
    scene = exported["sacre_coeur"]
    records = read_dataset(demo_dataset, "test", 0.0)
    assert sorted(scene["pairs"]) == sorted(tuple(sorted((r.image0.name, r.image1.name))) for r in records)
    for r in records:
        a, b = scene["views"][r.image0.name], scene["views"][r.image1.name]
        assert a["image"].resolve() == r.image0.resolve()
        np.testing.assert_allclose(b["T"] @ np.linalg.inv(a["T"]), r.T_0to1, atol=1e-6)
        rows, cols = np.nonzero(a["depth"] > 0)
        z = a["depth"][rows, cols]
        X = np.linalg.inv(a["K"]) @ np.stack([cols + 0.5, rows + 0.5, np.ones_like(z)]) * z
        Xb = (b["T"] @ np.linalg.inv(a["T"]) @ np.vstack([X, np.ones_like(z)]))[:3]
        uv = b["K"] @ Xb
        u, v = np.floor(uv[0] / uv[2]).astype(int), np.floor(uv[1] / uv[2]).astype(int)
        h, w = b["depth"].shape
        inside = (Xb[2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        zb = b["depth"][v[inside], u[inside]]
        seen = zb > 0
        agree = np.abs(Xb[2][inside][seen] - zb[seen]) <= 0.05 * zb[seen]
        assert seen.sum() > 500 and agree.mean() > 0.8, (r.image0.name, r.image1.name, seen.sum(), agree.mean())
