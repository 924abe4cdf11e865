"""Summary tables from real evaluation results: one table per kind, only the inputs it is given."""

from __future__ import annotations

import shutil

import pandas as pd

from testkit import real_data


def test_summary_has_one_table_per_kind_and_ignores_stale_results(tmp_path):
    from matchforge.evaluation.match_pairs import main as match_pairs
    from matchforge.evaluation.score import main as score
    from matchforge.evaluation.testsets import testset_images
    from matchforge.posfeat.extract import main as extract
    from matchforge.summary import COLUMNS, main as summarize

    results = tmp_path / "results"
    reichstag = {"type": "imc", "root": str(real_data("reichstag")), "img_resize": 480, "max_pairs": 3}
    relpose = results / "eval" / "sift" / "ratio" / "reichstag.json"
    match_pairs(reichstag, {"name": "sift", "max_keypoints": 1024, "ratio": 0.8}, tmp_path / "m.h5", name="reichstag")
    score(reichstag, tmp_path / "m.h5", relpose, name="reichstag", label="sift (mutual NN + ratio 0.8, 1024 kp)")
    spec = {"type": "homography", "path": str(real_data("homography"))}
    feats = extract({"method": "sift", "max_size": 480, "num_pts": 1024}, testset_images(spec), tmp_path / "f.h5")
    homography = results / "eval" / "sift" / "mnn" / "homography.json"
    match_pairs(spec, {"name": "features", "features": feats, "working_size": 480}, tmp_path / "h.h5")
    score(spec, tmp_path / "h.h5", homography, name="homography", label="sift (mutual NN, 1024 kp at 480 px)")
    # a stale result of a run no longer configured: present on disk, not among the summary's inputs
    stale = results / "eval" / "loftr" / "old_run" / "reichstag.json"
    stale.parent.mkdir(parents=True)
    shutil.copy(relpose, stale)

    tables = summarize([relpose, homography], tmp_path / "summary")
    assert set(tables) == {"scenes", *COLUMNS}
    for kind in COLUMNS:
        table = pd.read_csv(tmp_path / "summary" / f"{kind}.csv")
        assert list(table.columns) == COLUMNS[kind]
        assert (tmp_path / "summary" / f"{kind}.png").stat().st_size > 5000
    rel = pd.read_csv(tmp_path / "summary" / "relpose.csv")
    assert rel[["family", "run", "method", "testset"]].values.tolist() == [
        ["sift", "ratio", "sift (mutual NN + ratio 0.8, 1024 kp)", "reichstag"]]  # not old_run
    assert 0 < rel["auc@20"].iloc[0] <= 100 and 1 < rel["precision"].iloc[0] <= 100 and rel["num_pairs"].iloc[0] == 3
    lo, hi = (float(v) for v in rel["auc@20_ci"].iloc[0].strip("[]").split(","))
    assert lo <= rel["auc@20"].iloc[0] <= hi and "(< 10)" in rel["note"].iloc[0]  # 3 pairs: flagged
    hom = pd.read_csv(tmp_path / "summary" / "homography.csv")
    assert hom[["family", "run", "testset"]].values.tolist() == [["sift", "mnn", "homography"]]
    assert 0 < hom["mma@1"].iloc[0] <= hom["mma@5"].iloc[0] <= hom["mma@10"].iloc[0] <= 100  # percent
    assert 0 <= hom["h_ransac_auc@1"].iloc[0] <= hom["h_ransac_auc@3"].iloc[0] <= hom["h_ransac_auc@5"].iloc[0] <= 100
    assert len(pd.read_csv(tmp_path / "summary" / "reconstruction.csv")) == 0  # a kind without results: header only
