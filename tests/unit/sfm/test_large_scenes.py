"""SfM on unordered collections: retrieval pairs instead of n^2 or file-name order, a database that survives
reruns and grows with the photos, and no mapping retries when the photos genuinely split into models."""

from __future__ import annotations

import json

import pycolmap
import pytest

from matchforge.sfm.inputs import StagedImages
from matchforge.sfm.reconstruct import choose_matcher, reuse_database
from matchforge.sfm.config import SfMSection


def test_auto_matcher_never_pairs_an_unordered_collection_by_file_name(caplog):
    conf = SfMSection().to_dict()
    with caplog.at_level("INFO"):
        assert choose_matcher(conf, 10, False, "small") == "exhaustive"
        assert not caplog.records
        assert choose_matcher(conf, 200, True, "gps") == "spatial"
        assert choose_matcher(conf, 200, False, "big") == "vocab_tree"
        assert choose_matcher({**conf, "matcher": "sequential"}, 200, False, "video") == "sequential"
    assert [r.message for r in caplog.records] == [
        "gps: 200 photos (> sfm.exhaustive_max_images 150), with GPS: matcher auto chose spatial",
        "big: 200 photos (> sfm.exhaustive_max_images 150), no GPS: matcher auto chose vocab_tree"]


def test_a_missing_vocabulary_file_names_the_download(tmp_path):
    from matchforge.errors import MatchforgeError
    from matchforge.sfm.reconstruct import vocab_tree

    with pytest.raises(MatchforgeError) as err:
        vocab_tree({**SfMSection().to_dict(), "vocab_tree_path": str(tmp_path / "tree.bin")}, tmp_path / "db", tmp_path, "big")
    assert "tree.bin" in str(err.value) and "vocab_tree_faiss" in str(err.value) and "null" in str(err.value)


def test_the_database_is_kept_unless_features_or_photos_change(tmp_path):
    """What a rerun keeps: everything (same options and photos), the features (matching options changed), or
    nothing (feature options changed, or a photo replaced under its old name)."""
    conf = SfMSection().to_dict()
    work = tmp_path / "work"
    work.mkdir()
    staged = StagedImages(work / "input", names=["a.jpg", "b.jpg"], digests={"a.jpg": "1", "b.jpg": "2"})

    def create_database() -> None:
        db = pycolmap.Database.open(work / "database.db")
        db.close()

    assert reuse_database(conf, work, staged)[0] == {"reused": False, "reason": "no database from an earlier run"}
    create_database()
    assert reuse_database(conf, work, staged)[0] == {"reused": True, "reason": "same options and photos"}
    grown = StagedImages(work / "input", names=["a.jpg", "b.jpg", "c.jpg"], digests={**staged.digests, "c.jpg": "3"})
    assert reuse_database(conf, work, grown)[0]["reused"]
    assert json.loads((work / "database.json").read_text())["photos"] == {"a.jpg": "1", "b.jpg": "2", "c.jpg": "3"}
    kept = reuse_database({**conf, "max_num_matches": 1000}, work, grown)[0]
    assert kept["reused"] and "matching options changed (max_num_matches)" in kept["reason"]
    assert (work / "database.db").exists()
    new = reuse_database({**conf, "max_num_matches": 1000, "max_num_features": 100}, work, grown)[0]
    assert new == {"reused": False, "reason": "feature options changed (max_num_features)"}
    assert not (work / "database.db").exists()
    create_database()
    same = {**conf, "max_num_matches": 1000, "max_num_features": 100}
    assert reuse_database(same, work, grown)[0]["reused"]
    # c.jpg left and came back with other pixels: its old features would be wrong
    replaced = StagedImages(work / "input", names=["a.jpg", "c.jpg"], digests={"a.jpg": "1", "c.jpg": "9"})
    assert reuse_database(same, work, replaced)[0] == {"reused": False, "reason": "1 photo(s) replaced (c.jpg)"}
