"""Hostile and accidental input (issue 32), each case built from real photos: special files among the photos and
photo folders that are not a scene's. The risky cases run in a child process under a memory limit, so a regression
fails the test instead of taking the machine down."""

from __future__ import annotations


from testkit import DEMO_IMAGES


def test_a_damaged_kept_sfm_database_is_set_aside_and_rebuilt(tmp_path):
    """The SfM database kept for reruns, cut in half, used to fail every rerun ("No registered database factory
    succeeded"); a record of the wrong shape gave an AttributeError on every rerun. Both are set aside and rebuilt."""
    from testkit import FAST_SFM
    from matchforge.sfm.reconstruct import main as sfm_main

    out = tmp_path / "sfm"
    first = sfm_main(FAST_SFM, DEMO_IMAGES, out, scene="kept")
    work = out / "work"
    db = work / "database.db"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    again = sfm_main(FAST_SFM, DEMO_IMAGES, out, scene="kept")
    assert "database.db unreadable" in again["database"]["reason"] and list(work.glob("database.db.damaged-*"))
    assert again["num_points3D"] == first["num_points3D"]  # deterministic: the rebuilt model is the same
    (work / "database.json").write_text("[1, 2, 3]")
    third = sfm_main(FAST_SFM, DEMO_IMAGES, out, scene="kept")
    assert "not a database record" in third["database"]["reason"] and third["num_points3D"] == first["num_points3D"]
