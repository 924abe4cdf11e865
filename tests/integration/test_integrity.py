"""Bad input that would silently give wrong or stale training data: duplicate photos, empty models,
scenes without pairs, photos replaced in place, missing folders, misleading messages (real photos)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
import pytest
import yaml

from testkit import DEMO_IMAGES, FAST_SFM, REPO, real_data
from matchforge.dataset import build, scene_info
from matchforge.dataset.indices import load_scene_info
from matchforge.dataset.scene_info import object_array, save_scene_info
from matchforge.errors import MatchforgeError
from testkit.workflow import planned_jobs, snakemake, write_config

PHOTOS = sorted(DEMO_IMAGES.glob("*.jpg"))


def _copy_scene_info(src: Path, dst: Path, scene: str, new: str, keep: set[str]) -> None:
    """The demo's scene info as another scene that holds only the photos named in ``keep``."""
    dst.mkdir(parents=True)
    for npz in src.glob(f"{scene}_*.npz"):
        info = load_scene_info(npz)
        ok = [v is not None and Path(str(v)).name in keep for v in info["image_paths"]]
        out = {k: object_array([None if not ok[i] else (str(v).replace(f"{scene}/", f"{new}/", 1)
                                                        if k.endswith("paths") else v) for i, v in enumerate(info[k])])
               for k in ("image_paths", "depth_paths", "intrinsics", "poses")}
        out["pair_infos"] = [p for p in info["pair_infos"] if ok[int(p[0][0])] and ok[int(p[0][1])]]
        save_scene_info(dst / npz.name.replace(scene, new, 1), out)


def test_identical_photos_never_land_in_different_splits(demo_sfm, demo_dataset, tmp_path):
    """Two scenes sharing photos (a scraped collection indexed twice): the second holds only the demo's
    training photos, so a split by images must put some of them in its test split. Every val/test image
    identical to a training image of either scene is left out, and dataset.json says why."""
    root = demo_dataset.parent.parent
    demo_train = set(json.loads(demo_dataset.read_text())["scenes"]["sacre_coeur"]["images"]["train"])
    _copy_scene_info(root / "si", tmp_path / "si_copy", "sacre_coeur", "copy", demo_train)
    images_copy = tmp_path / "copy_sfm" / "images"
    shutil.copytree(demo_sfm / "images", images_copy)
    shutil.copy(demo_sfm / "stats.json", images_copy.parent / "stats.json")
    conf = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["datasets"]["demo"]
    conf = {**conf, "scenes": ["sacre_coeur", "copy"], "split": {**conf.get("split", {}), "by": "images"}}
    meta = build.main(conf, "dup", {"sacre_coeur": root / "si", "copy": tmp_path / "si_copy"},
                      {"sacre_coeur": demo_sfm / "images", "copy": images_copy},
                      {"sacre_coeur": root / "depth" / "h5", "copy": root / "depth" / "h5"}, tmp_path / "dup")
    digests = json.loads((demo_sfm / "stats.json").read_text())["photo_digests"]
    in_split: dict[str, set[str]] = {s: set() for s in ("train", "val", "test")}
    for s in ("train", "val", "test"):
        for stem in (tmp_path / "dup" / "index" / "trainvaltest_list" / f"{s}_list.txt").read_text().split():
            info = load_scene_info(tmp_path / "dup" / "index" / "scene_info" / f"{stem}.npz")
            used = {int(i) for p in info["pair_infos"] for i in p[0]}
            in_split[s] |= {digests[Path(str(info["image_paths"][i])).name] for i in used}
    assert in_split["train"] and in_split["test"]
    assert not in_split["train"] & (in_split["val"] | in_split["test"])
    excluded = {**meta["scenes"]["sacre_coeur"]["excluded_duplicates"], **meta["scenes"]["copy"]["excluded_duplicates"]}
    assert excluded and all(r.startswith("duplicate of ") and r.endswith("(train)") for r in excluded.values())


def test_scene_without_training_pairs_fails_with_the_numbers(demo_sfm, tmp_path):
    with pytest.raises(MatchforgeError) as err:
        scene_info.main({"buckets": [[0.98, 1.0]]}, demo_sfm / "sparse", demo_sfm / "images", None, tmp_path / "si",
                        "sacre_coeur")
    msg = str(err.value)
    assert "scene 'sacre_coeur'" in msg and "no training pairs" in msg and "10 registered images" in msg
    assert "Fix:" in msg and "scene_info.buckets" in msg


def test_config_mistakes_get_a_short_message_naming_the_file(tmp_path):
    work = tmp_path / "w"
    write_config(work, {"demo": {"images": str(DEMO_IMAGES)}})
    config = yaml.safe_load((work / "config.yaml").read_text())
    (work / "config.yaml").write_text(yaml.safe_dump({**config, "scene_inf": {"buckets": [[0.1, 0.3]]}}))
    proc = snakemake(work, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "unknown config key 'scene_inf' (did you mean 'scene_info'?)" in out and str(work / "config.yaml") in out
    assert "Traceback" not in out and 'File "' not in out and len(out.splitlines()) <= 2, out  # the message alone
    write_config(work, {"demo": {"imgaes": str(DEMO_IMAGES)}})
    proc = snakemake(work, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert "unknown config key 'scenes.demo.imgaes' (did you mean 'images'?)" in out


def test_bad_scenes_fail_alone_and_a_replaced_photo_rebuilds_only_its_scene(tmp_path):
    """One run, five scenes: a good one (with a duplicate and a broken file among its photos), a second
    good one, one whose model is too sparse (sfm.min_points3D), one whose folder does not exist and one
    whose folder is empty. Under --keep-going both good scenes get their scene info; the three bad ones fail
    with their own message. Then replacing one photo of the first scene in place, or adding one, replans
    exactly that scene's SfM and its downstream jobs, and so does an SfM option edited for the second."""
    work = tmp_path / "w"
    (tmp_path / "empty").mkdir()
    photos = tmp_path / "demo_photos"
    shutil.copytree(DEMO_IMAGES, photos)
    shutil.copy(PHOTOS[2], photos / "zz_same_photo.jpg")
    (photos / "zz_broken.jpg").write_bytes(PHOTOS[3].read_bytes()[:3000])
    scenes = {"demo": {"images": str(photos), "sfm": FAST_SFM},
              "reichstag": {"images": str(real_data("reichstag", "images")), "sfm": FAST_SFM},
              "sparse": {"images": str(DEMO_IMAGES), "sfm": {**FAST_SFM, "min_points3D": 1_000_000}},
              "missing": {"images": str(tmp_path / "no_such_folder")},
              "empty": {"images": str(tmp_path / "empty")}}
    write_config(work, scenes)
    targets = [f"results/{s}/scene_info" for s in scenes]
    proc = snakemake(work, "--keep-going", *targets, check=False)
    assert proc.returncode != 0
    for good in ("demo", "reichstag"):
        assert json.loads((work / "results" / good / "scene_info" / "stats.json").read_text())["num_pairs"] > 0
    stats = json.loads((work / "results" / "demo" / "sfm" / "stats.json").read_text())
    assert stats["num_images"] == 10 and stats["num_files"] == 12
    assert {s["file"]: s["reason"] for s in stats["skipped"]}["zz_same_photo.jpg"] == f"duplicate of {PHOTOS[2].name} (identical file)"
    sfm_log = (work / "logs" / "demo" / "sfm.log").read_text()
    assert f"{stats['num_registered']}/10 photos registered" in sfm_log and "2 file(s) skipped" in sfm_log

    log = (work / "logs" / "sparse" / "sfm.log").read_text()
    assert "scene 'sparse'" in log and "3D points (sfm.min_points3D is 1000000)" in log and "Fix:" in log
    assert not (work / "results" / "sparse" / "sfm" / "sparse").exists()
    assert not (work / "results" / "sparse" / "scene_info").exists()
    log = (work / "logs" / "missing" / "sfm.log").read_text()
    assert "scenes.missing.images" in log and str(tmp_path / "no_such_folder") in log
    assert str(work / "config.yaml") in log
    log = (work / "logs" / "empty" / "sfm.log").read_text()
    assert "scene 'empty'" in log and "no readable photos" in log and "Fix:" in log
    assert not (work / "results" / "empty" / "sfm" / "stats.json").exists()

    good = targets[:2]
    assert planned_jobs(snakemake(work, "-n", *good)) == {}
    old = (946684800, 946684800)  # 2000-01-01: what `cp -p`, `rsync -a` or an old archive leave on a new file
    shutil.copy(PHOTOS[4], photos / PHOTOS[0].name)  # replaced in place: same name, other content, older mtime
    os.utime(photos / PHOTOS[0].name, old)
    downstream = {"sfm": 1, "depth_predict": 1, "depth_align": 1, "scene_info": 1}
    proc = snakemake(work, "-n", *good)
    assert {k: v for k, v in planned_jobs(proc).items() if k in downstream} == downstream
    outputs = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip().startswith("output:")]
    assert outputs and not [ln for ln in outputs if "results/reichstag" in ln]
    shutil.copy(PHOTOS[0], photos / PHOTOS[0].name)  # back as it was: the content SfM ran on, nothing to do
    os.utime(photos / PHOTOS[0].name, old)
    assert planned_jobs(snakemake(work, "-n", *good)) == {}
    (photos / PHOTOS[1].name).touch()  # a newer timestamp alone changes nothing either
    assert planned_jobs(snakemake(work, "-n", *good)) == {}
    shutil.copy(real_data("reichstag", "images") / sorted(p.name for p in real_data("reichstag", "images").iterdir())[0],
                photos / "added.jpg")
    os.utime(photos / "added.jpg", old)
    assert planned_jobs(snakemake(work, "-n", *good)).get("sfm") == 1
    (photos / "added.jpg").unlink()
    scenes["reichstag"]["sfm"] = {**FAST_SFM, "max_num_features": 3000}  # one scene's SfM option: only its chain
    write_config(work, scenes)
    proc = snakemake(work, "-n", *good)
    assert {k: v for k, v in planned_jobs(proc).items() if k in downstream} == downstream
    outputs = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip().startswith("output:")]
    assert outputs and all("results/reichstag" in ln for ln in outputs)


def test_damaged_depth_file_fails_the_job_with_the_rebuild_command(demo_sfm, demo_dataset, tmp_path):
    """One depth H5 cut short (a full disk, a copy interrupted): scene info fails naming the file and the
    Snakemake call that rebuilds it, instead of dropping the photo and training on less data."""
    h5 = tmp_path / "results" / "sacre_coeur" / "depth" / "h5"
    shutil.copytree(demo_dataset.parents[1] / "depth" / "h5", h5)
    victim = sorted(h5.glob("*.h5"))[3]
    victim.write_bytes(victim.read_bytes()[:2000])
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    from matchforge.conf import scene_conf
    from matchforge.config_check import validate_config

    validate_config(config)
    with pytest.raises(MatchforgeError) as err:
        scene_info.main(scene_conf(config, "sacre_coeur", "scene_info"), demo_sfm / "sparse", demo_sfm / "images",
                        h5, tmp_path / "si", "sacre_coeur")
    text = str(err.value)
    assert victim.name in text and "cannot be read" in text, text
    assert "snakemake --cores all --forcerun depth_align results/sacre_coeur/depth/align.json" in text, text
