"""The README's demo: the shipped config, the whole default DAG, on CPU, then a report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from testkit import REPO


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Run `snakemake --cores 2` with the shipped config in a scratch copy of the working directory."""
    work = tmp_path_factory.mktemp("demo_run")
    (work / "config").mkdir()
    (work / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    (work / "resources").symlink_to(REPO / "resources")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--cores", "2", "--workflow-profile", "none"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    logs = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in sorted((work / "logs").rglob("*.log"))) \
        if (work / "logs").exists() else ""
    assert proc.returncode == 0, f"{proc.stderr[-6000:]}\n{logs[-8000:]}"
    return work, cmd


def test_every_stage_runs_on_the_demo(demo_run):
    work, _ = demo_run
    results = work / "results"
    stats = json.loads((results / "sacre_coeur" / "sfm" / "stats.json").read_text())
    assert stats["num_registered"] == stats["num_images"] == 10
    assert sorted((results / "sacre_coeur" / "depth" / "h5").glob("*.h5"))
    assert (results / "sacre_coeur" / "depth" / "qa.json").exists()
    assert sorted((results / "sacre_coeur" / "scene_info").glob("sacre_coeur_*.npz"))
    assert (results / "datasets" / "demo" / "index" / "trainvaltest_list" / "train_list.txt").exists()
    families = {p.name for p in (results / "models").iterdir()}
    assert {"loftr", "posfeat", "shiftfocal"} <= families
    evaluated = {p.name for p in (results / "eval").iterdir()}
    assert {"loftr", "posfeat", "shiftfocal", "sift"} <= evaluated
    import pandas as pd
    import yaml

    from matchforge.summary import COLUMNS

    # one table per kind, each with exactly its own columns and exactly the evaluations the config asks for
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    tables = {kind: pd.read_csv(results / "summary" / f"{kind}.csv") for kind in COLUMNS}
    for kind, table in tables.items():
        assert list(table.columns) == COLUMNS[kind], kind
        assert (results / "summary" / f"{kind}.png").stat().st_size > 10_000, kind
    rows = {kind: set(zip(t["family"], t["run"], t["testset"])) for kind, t in tables.items()}
    loftr_ts = {ts for rc in config["loftr"]["runs"].values() for ts in rc["testsets"]}
    expected_relpose = ({("loftr", run, ts) for run, rc in config["loftr"]["runs"].items() for ts in rc["testsets"]}
                        | {("loftr", f"{run} (before)", ts) for run, rc in config["loftr"]["runs"].items()
                           if {**config["loftr"].get("train", {}), **rc.get("train", {})}.get("init_weights")
                           for ts in rc["testsets"]}
                        | {("sift", "ratio", ts) for ts in loftr_ts})
    by_type = {}
    for run, rc in config["posfeat"]["runs"].items():
        for ts in rc["testsets"]:
            by_type.setdefault(config["posfeat"]["testsets"][ts]["type"], set()).update({("posfeat", run, ts), ("sift", "mnn", ts)})
    assert rows["relpose"] == expected_relpose | by_type["pose"]
    assert rows["homography"] == by_type["homography"] and rows["reconstruction"] == by_type["reconstruction"]
    assert rows["shape"] == {("shiftfocal", run, ts) for run, rc in config["shiftfocal"]["runs"].items() for ts in rc["testsets"]}
    assert tables["relpose"][["auc@5", "auc@10", "auc@20", "precision", "inlier_ratio", "num_matches"]].notna().all().all()
    assert tables["relpose"]["precision"].between(0, 100).all() and (tables["relpose"]["precision"] > 1).any()  # percent
    assert tables["relpose"]["auc@10_ci"].str.match(r"^\[\d+\.\d, \d+\.\d\]$").all()  # an interval on every score
    few = tables["relpose"][tables["relpose"]["num_pairs"] < 10]
    assert len(few) and few["note"].str.contains("< 10").all()  # demo_test has 2 pairs: flagged
    assert set(tables["relpose"][tables["relpose"]["family"] == "sift"]["method"]) == {
        "sift (mutual NN + ratio 0.8, 4096 kp)", "sift (mutual NN, 2048 kp at 480 px)"}  # each protocol by its name
    assert tables["homography"][["mma@1", "mma@3", "mma@5", "mma@10"]].stack().between(0, 100).all()  # percent
    assert tables["homography"][["h_ransac_auc@1", "h_dlt_auc@5"]].notna().all().all()
    # with the scene's known cameras SIFT (480 px, about 1400 keypoints) maps at least half of the 10 demo photos
    # (6-7 of 10 registered without the structure-less fallback, 2026-12-07) and more than the untrained PoSFeat (2-4)
    rec = tables["reconstruction"].set_index("family")
    assert rec.loc["sift", "num_images"] == 10 and rec.loc["sift", "num_registered"] >= 5
    assert rec.loc["sift", "num_registered"] > rec.loc["posfeat", "num_registered"]
    # localization: every LoFTR run, the SIFT baseline and every PoSFeat run localize the demo's held-out photos
    loc = config["localization"]["testsets"]
    methods = ({("loftr", run) for run in config["loftr"]["runs"]} | {("sift", "ratio")}
               | {("posfeat", run) for run in config["posfeat"]["runs"]})
    # each with visual retrieval, and again with the ground truth's covisibility (an upper bound)
    assert rows["localization"] == ({(f, r, ts) for f, r in methods for ts in loc}
                                    | {(f, f"{r} (oracle retrieval)", ts) for f, r in methods for ts in loc})
    lt = tables["localization"]
    assert (lt["unit"] == "median baseline").all() and lt["thresholds"].str.contains("median baseline").all()
    assert lt["recall@3_ci"].str.match(r"^\[\d+\.\d, \d+\.\d\]$").all() and lt["note"].str.contains("3 queries").all()
    assert lt[lt["family"] == "sift"]["recall@3"].iloc[0] > 0  # SIFT localizes at least one of the 3 queries
    # the test photos are a separated viewpoint group (dataset.json says how far each is from training)
    view = json.loads((results / "datasets" / "demo" / "dataset.json").read_text())["scenes"]["sacre_coeur"]["viewpoint"]
    assert view["separated"] and min(v["separation"] for v in view["held_out"].values()) > 1.0, view
    scenes = pd.read_csv(results / "summary" / "scenes.csv")
    assert scenes["scene"].tolist() == ["sacre_coeur"] and scenes["num_points3D"].iloc[0] > 500


def test_demo_loftr_learns_and_fine_tunes(demo_run):
    """The demo's from-scratch runs learn their training photos; the fine-tuning run is scored before and after."""
    import pandas as pd

    work, _ = demo_run
    results = work / "results"
    for run in ("demo_ds", "demo_ot"):
        m = pd.read_csv(results / "models" / "loftr" / run / "metrics.csv").dropna(subset=["train/loss_c"])
        assert m["train/loss_c"].tail(10).mean() < 0.5 * m["train/loss_c"].head(3).mean(), (run, m["train/loss_c"].tolist())
        assert m["train/correct_c"].tail(10).mean() > 5 * max(m["train/correct_c"].head(10).mean(), 1), run
        learned = json.loads((results / "eval" / "loftr" / run / "demo_train.json").read_text())
        # an untrained model has no confident match; after 90 steps on the 7 viewpoint-split training photos:
        # 35 (DS) and 23 (OT) matches per pair, 53 % and 64 % epipolar-correct after 120 steps (2026-12-07)
        assert learned["num_matches"] >= 10 and learned["precision"] >= 25, (run, learned["num_matches"], learned["precision"])
    ft = json.loads((results / "eval" / "loftr" / "demo_ds_ft" / "demo_train.json").read_text())
    before = json.loads((results / "eval" / "loftr" / "demo_ds" / "demo_train.json").read_text())
    # before = demo_ds on the same pairs: demo_ds's own match file, matched once and scored for both
    assert ft["before"]["matches"] == "results/eval/matches/loftr/demo_ds/demo_train.h5" == before["matches"]
    assert ft["before"]["auc@10"] == before["auc@10"] and ft["before"]["pairs"] == before["pairs"]
    paired = ft["vs_before"]["auc@10"]  # pair by pair on the same pairs: difference, interval, sign test, verdict
    assert paired["diff"] == pytest.approx(ft["auc@10"] - before["auc@10"])
    assert paired["verdict"] in ("better", "worse", "no significant difference") and paired["diff_ci"][0] <= paired["diff"] <= paired["diff_ci"][1]
    assert [(p["image0"], p["image1"]) for p in ft["pairs"]] == [(p["image0"], p["image1"]) for p in before["pairs"]]
    table = pd.read_csv(results / "summary" / "relpose.csv")
    rows = table[table["testset"] == "demo_test"]
    assert {"demo_ds_ft", "demo_ds_ft (before)"} <= set(rows["run"]) and "sift" in set(rows["family"])
    # every LoFTR row is compared with SIFT on the same pairs; the fine-tune also with its initial weights
    train = table[table["testset"] == "demo_train"].set_index("run")
    assert train.loc["demo_ds_ft", "vs_before"].startswith("AUC@10 ") and "sign test p" in train.loc["demo_ds_ft", "vs_before"]
    assert train.loc[["demo_ds", "demo_ot", "demo_ds_ft", "demo_ds_ft (before)"], "vs_sift"].str.contains("sign test p").all()


def test_demo_is_up_to_date_and_reports(demo_run):
    work, cmd = demo_run
    proc = subprocess.run(cmd + ["-n"], capture_output=True, text=True, check=True)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    # a scoring option of a test set rescores the stored matches: no matching job is planned
    from testkit.workflow import planned_jobs

    config_file = work / "config" / "config.yaml"
    original = config_file.read_text()
    import yaml

    edited = yaml.safe_load(original)
    edited["loftr"]["testsets"]["demo_test"]["ransac_thresh"] = 1.0
    edited["localization"]["testsets"]["demo_loc"]["ransac_px"] = 8.0
    config_file.write_text(yaml.safe_dump(edited))
    try:
        jobs = planned_jobs(subprocess.run(cmd + ["-n"], capture_output=True, text=True, check=True))
    finally:
        config_file.write_text(original)
    assert jobs.get("loftr_score") == 3 and jobs.get("sift_ratio_score") == 1, jobs
    assert jobs.get("loftr_localize") == 3 and jobs.get("sift_ratio_localize") == 1 and jobs.get("posfeat_score") == 1, jobs
    assert not {k for k in jobs if "match" in k}, jobs
    # edits that change nothing a job computes plan nothing: the photo folder spelt absolute with a trailing
    # slash, and engine options of a finished training run (workers, checkpoint frequency)
    edited = yaml.safe_load(original)
    edited["scenes"]["sacre_coeur"]["images"] = str(work / edited["scenes"]["sacre_coeur"]["images"]) + "/"
    edited["loftr"]["runs"]["demo_ds"]["train"].update(num_workers=1, checkpoint_every_n_steps=7, checkpoint_minutes=3)
    edited["posfeat"]["train"]["data"]["num_workers"] = 1
    config_file.write_text(yaml.safe_dump(edited))
    try:
        proc = subprocess.run(cmd + ["-n"], capture_output=True, text=True, check=True)
        assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    finally:
        config_file.write_text(original)
    report = work / "report.html"
    # as in `make demo`: no --cores (a rule whose threads depend on the core count would refuse)
    no_cores = [a for i, a in enumerate(cmd) if a != "--cores" and (i == 0 or cmd[i - 1] != "--cores")]
    subprocess.run(no_cores + ["--report", str(report)], capture_output=True, text=True, check=True)
    html = report.read_text(errors="replace")
    # every figure people look at is in the report: curves of each run, match pictures, depth QA, summary plot
    for run in ("demo_ds", "demo_ot", "demo_ds_ft"):
        assert f"models/loftr/{run}/curve.png" in html, run
        assert f"eval/loftr/{run}/demo_test_matches.jpg" in html, run
    for needle in ("models/posfeat/demo/desc/curve.png", "models/posfeat/demo/kp/curve.png", "summary/relpose.png",
                   "summary/homography.png", "summary/reconstruction.png", "summary/shape.png", "summary/localization.png",
                   "summary/relpose.csv", "summary/scenes.csv", "depth/qa", "depth/preview/"):
        assert needle in html, needle


def test_doc_tables_come_from_the_run(demo_run, tmp_path):
    """`matchforge doc-tables` rewrites each generated block of the docs from the run's summary, row for row,
    and leaves every other line alone."""
    import re

    import pandas as pd

    from matchforge.doc_tables import BLOCK, main, parse_spec

    work, _ = demo_run
    doc = tmp_path / "evaluation.md"
    original = (REPO / "docs" / "evaluation.md").read_text()
    doc.write_text(original)
    done = main([doc], work / "results" / "summary", "demo test run")
    new = doc.read_text()
    specs = [m.group("spec") for m in BLOCK.finditer(original)]
    assert done == {str(doc): len(specs)} and len(specs) >= 4
    assert BLOCK.sub("", new) == BLOCK.sub("", original)  # outside the blocks nothing changed
    for m in BLOCK.finditer(new):
        name, filters = parse_spec(m.group("spec"))
        csv = pd.read_csv(work / "results" / "summary" / f"{name}.csv")
        for column, value in filters.items():
            csv = csv[csv[column].astype(str) == value]
        rows = [line for line in m.group(0).splitlines() if line.startswith("|")][2:]
        assert [re.split(r"\s*\|\s*", r)[1:3] for r in rows] == csv[["method", "testset"]].astype(str).values.tolist()
        assert "demo test run" in m.group(0)


SIFT_RELPOSE = ("demo_train", "demo_test", "reichstag")  # the LoFTR protocol's SIFT rows (sift/ratio)
TIMING = {"seconds_per_pair", "seconds"}  # the only fields of a result that may differ between runs


def _without_timing(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in TIMING}


def test_the_same_numbers_on_every_run(demo_run, tmp_path):
    """Same photos, config and packages -> the same numbers: a second run of the demo's SfM, depth, scene info,
    dataset and SIFT scoring, in another folder while two other processes keep both CPU cores busy, gives the same
    sparse model bit for bit, the same split lists and pairs.csv, and the same SIFT results (every per-pair row)."""
    import numpy as np
    import pycolmap

    first, cmd = demo_run
    again = tmp_path / "again"
    (again / "config").mkdir(parents=True)
    shutil.copy(first / "config" / "config.yaml", again / "config" / "config.yaml")
    (again / "resources").symlink_to(REPO / "resources")
    targets = ["results/datasets/demo/dataset.json", *(f"results/eval/sift/ratio/{ts}.json" for ts in SIFT_RELPOSE)]
    rerun = [str(again) if c == str(first) else c for c in cmd] + targets
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        proc = subprocess.run(rerun, capture_output=True, text=True)
    finally:
        for p in load:
            p.kill()
    assert proc.returncode == 0, proc.stderr[-4000:]
    models = [pycolmap.Reconstruction(str(w / "results" / "sacre_coeur" / "sfm" / "sparse")) for w in (first, again)]
    poses = [{im.name: im.cam_from_world().matrix() for im in m.images.values()} for m in models]
    assert poses[0].keys() == poses[1].keys() and all(np.array_equal(poses[0][n], poses[1][n]) for n in poses[0])
    points = [np.array(sorted(tuple(p.xyz) for p in m.points3D.values())) for m in models]
    assert np.array_equal(*points), (len(points[0]), len(points[1]))
    for rel in ["results/sacre_coeur/scene_info/pairs.csv",
                *(f"results/datasets/demo/index/trainvaltest_list/{s}_list.txt" for s in ("train", "val", "test"))]:
        assert (first / rel).read_bytes() == (again / rel).read_bytes(), rel
    for ts in SIFT_RELPOSE:
        a, b = (json.loads((w / f"results/eval/sift/ratio/{ts}.json").read_text()) for w in (first, again))
        assert _without_timing(a) == _without_timing(b), ts


def test_the_sift_rows_in_the_docs_are_a_fresh_runs(demo_run):
    """docs/evaluation.md's generated tables come from a run of this code: a fresh demo run reproduces its SIFT rows
    (the rows no training touches) digit for digit."""
    from matchforge.doc_tables import BLOCK, render

    work, _ = demo_run
    doc = (REPO / "docs" / "evaluation.md").read_text()
    for m in BLOCK.finditer(doc):
        spec = m.group("spec")
        if spec.split()[0] not in ("relpose", "localization"):
            continue
        fresh = render(spec, work / "results" / "summary", "")
        sift = lambda text: sorted(line for line in text.splitlines() if line.startswith("| sift"))  # noqa: E731
        assert sift(m.group(0)) and sift(m.group(0)) == sift(fresh), spec
