"""Localization (hloc's Aachen protocol): on the demo scene's held-out photos, and on a folder in the exact Aachen
Day-Night v1.1 layout built from the Reichstag photos, whose ground truth comes from the Image Matching Challenge
reconstruction (independent of anything matchforge computes)."""

from __future__ import annotations
import shutil
from pathlib import Path

import numpy as np
import pytest

from testkit.aachen import make_aachen
from matchforge.errors import MatchforgeError


def test_aachen_layout_errors_name_the_file_and_the_fix(tmp_path):
    from matchforge.evaluation.localization import problem

    files = make_aachen(tmp_path / "aachen", queries=1)
    spec = {"type": "localization", **{k: str(v) for k, v in files.items()}}
    Path(files["query_pairs"]).write_text("query/day/nexus5x/missing.jpg db/x.jpg\n")
    with pytest.raises(MatchforgeError, match="unknown names") as err:
        problem(spec)
    assert "pairs-query.txt" in str(err.value)
    with pytest.raises(MatchforgeError, match="no 3D points"):
        problem({**spec, "query_pairs": _first_query_pair(files, tmp_path), "db_pairs": None})
    shutil.rmtree(tmp_path / "aachen" / "3D-models")
    with pytest.raises(MatchforgeError, match="aachen_v_1_1"):
        problem(spec)


def _first_query_pair(files: dict, tmp_path: Path) -> str:
    query = (Path(files["aachen"]) / "queries" / "day_time_queries_with_intrinsics.txt").read_text().split()[0]
    db = next((Path(files["aachen"]) / "images" / "images_upright" / "db").iterdir()).name
    (tmp_path / "ok.txt").write_text(f"{query} db/{db}\n")
    return str(tmp_path / "ok.txt")


def test_dense_keypoints_are_gathered_over_pairs_and_assigned_within_the_tolerance():
    """hloc's assignment for dense matchers: the same scene point matched in two pairs at slightly different
    sub-pixel positions is one keypoint (one cell); a query pair's database point joins the nearest database
    keypoint within max_error_px, else the match is dropped. Pixels are of the size the matcher saw."""
    from matchforge.evaluation.localization import assign_matches

    stored = {("db1", "db2"): (np.array([[10.2, 10.3], [50.0, 50.0]]), np.array([[20.0, 20.0], [60.0, 60.0]])),
              ("db1", "db3"): (np.array([[11.1, 10.9], [90.0, 90.0]]), np.array([[30.0, 30.0], [70.0, 70.0]])),
              ("q", "db1"): (np.array([[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]]), np.array([[10.5, 10.5], [51.0, 49.5], [80.0, 80.0]]))}
    reader = lambda a, b, sizes=None: stored[(a, b)]  # noqa: E731
    kps, db, q = assign_matches(reader, [("db1", "db2"), ("db1", "db3")], [("q", "db1")], 4.0, 2.0, lambda n: 1.0)
    assert len(kps.array("db1")) == 3  # (10.2, 10.3) and (11.1, 10.9) share a 4-px cell: 3 keypoints, not 4
    assert db[("db1", "db2")][0, 0] == db[("db1", "db3")][0, 0]  # the same keypoint in both pairs: a track
    assert len(q[("q", "db1")]) == 2  # (80, 80) is over 2 px from every database keypoint: dropped
    _, _, one_px = assign_matches(reader, [("db1", "db2"), ("db1", "db3")], [("q", "db1")], 1.0, 1.0, lambda n: 1.0)
    assert len(one_px[("q", "db1")]) == 1  # 1 px: (51, 49.5) is 1.1 px from (50, 50), dropped
    # the matcher saw the images at half size: cells and tolerance scale with the image
    kps2, _, q2 = assign_matches(reader, [("db1", "db2"), ("db1", "db3")], [("q", "db1")], 2.0, 1.0, lambda n: 2.0)
    assert len(kps2.array("db1")) == 3 and len(q2[("q", "db1")]) == 2
