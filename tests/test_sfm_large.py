"""SfM on unordered collections: retrieval pairs instead of n^2 or file-name order, a database that survives
reruns and grows with the photos, and no mapping retries when the photos genuinely split into models."""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pycolmap
import pytest

from matchforge.sfm.inputs import StagedImages
from matchforge.sfm.reconstruct import choose_matcher, main as sfm_main, reuse_database
from matchforge.config_schema import schema_defaults

from conftest import DEMO_IMAGES, real_data

# 640 px and 1024 features keep the 33 photos under 30 s; one thread: the models repeat exactly; every photo its own camera (Flickr);
# models of 5 photos are kept (COLMAP drops models under 10 by default)
SMALL = {"num_threads": 1, "max_image_size": 640, "max_num_features": 1024, "camera_mode": "per_image", "mapping_threads": 1,
         "exhaustive_max_images": 20, "retrieval_num_images": 8, "min_model_size": 5}


def unordered_collection(dst: Path) -> dict[str, str]:
    """Three landmarks' photos (Sacre Coeur 10, Reichstag 10, 13 from four other places) under random names,
    so that name order says nothing; returns name -> landmark."""
    groups = {"sacre_coeur": sorted(DEMO_IMAGES.glob("*.jpg")),
              "reichstag": sorted(real_data("reichstag", "images").glob("*.jpg")),
              "other": sorted(real_data("phototourism_samples").glob("*.jpg"))}
    rng = random.Random(0)
    dst.mkdir(parents=True)
    landmark = {}
    for group, photos in groups.items():
        for photo in photos:
            name = f"{rng.getrandbits(40):010x}.jpg"
            shutil.copy(photo, dst / name)
            landmark[name] = group
    return landmark


def models_by_landmark(out: Path, landmark: dict[str, str], attempt: int) -> list[Counter]:
    models = sorted((out / "work" / "distorted" / f"attempt{attempt}").iterdir())
    return [Counter(landmark[img.name] for img in pycolmap.Reconstruction(m).images.values()) for m in models]


@pytest.mark.slow
def test_retrieval_registers_an_unordered_collection_and_added_photos_cost_only_themselves(tmp_path):
    photos = tmp_path / "photos"
    landmark = unordered_collection(photos)
    held_back = [n for n in sorted(landmark) if landmark[n] == "other"][:3]
    aside = tmp_path / "aside"
    aside.mkdir()
    for name in held_back:
        shutil.move(photos / name, aside / name)
    out = tmp_path / "out"

    stats = sfm_main(SMALL, photos, out, scene="mixed")  # 30 photos
    assert stats["matcher"] == "vocab_tree"
    assert stats["extracted"] == 30 and stats["exhaustive_pairs"] == 435
    # name order would pair unrelated photos; exhaustive would match all 435 pairs
    assert stats["pairs_matched"] <= 0.45 * 435, stats["pairs_matched"]
    assert stats["vocabulary"]["source"] == "built from this scene"
    kept = next(i for i, a in enumerate(stats["attempts"]) if "kept_model" in a)
    found = models_by_landmark(out, landmark, kept)
    assert max(c["reichstag"] for c in found) == 10, found
    assert max(c["sacre_coeur"] for c in found) == 10, found
    assert all(len(c) == 1 for c in found), f"a model mixes landmarks: {found}"
    # three buildings that no verified pair joins: one mapping run, not mapping_attempts
    assert len(stats["attempts"]) == 1 and stats["attempts"][0]["genuine_split"], stats["attempts"]

    for name in held_back:  # the user adds three photos
        shutil.move(aside / name, photos / name)
    again = sfm_main(SMALL, photos, out, scene="mixed")
    assert again["database"]["reused"], again["database"]
    assert again["extracted"] == 3
    # only the new photos query the index: 8 pairs each at most, against 30 x 3 + 3 with exhaustive matching
    assert 0 < again["pairs_matched"] <= 3 * SMALL["retrieval_num_images"], again["pairs_matched"]
    assert again["vocabulary"]["source"].startswith("built from this scene (kept")

    removed = next(n for n in sorted(landmark) if landmark[n] == "sacre_coeur")
    (photos / removed).unlink()  # and removes one: it stays in the database, out of mapping
    third = sfm_main(SMALL, photos, out, scene="mixed")
    assert third["extracted"] == third["pairs_matched"] == 0 and third["database"]["reused"]
    kept = next(i for i, a in enumerate(third["attempts"]) if "kept_model" in a)
    found = models_by_landmark(out, landmark, kept)
    assert max(c["sacre_coeur"] for c in found) >= 8, found  # 8 of the 9 left (deterministic, one thread)
    names = {img.name for m in (out / "work" / "distorted" / f"attempt{kept}").iterdir()
             for img in pycolmap.Reconstruction(m).images.values()}
    assert removed not in names


def test_auto_matcher_never_pairs_an_unordered_collection_by_file_name(caplog):
    conf = schema_defaults("sfm")
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
        vocab_tree({**schema_defaults("sfm"), "vocab_tree_path": str(tmp_path / "tree.bin")}, tmp_path / "db", tmp_path, "big")
    assert "tree.bin" in str(err.value) and "vocab_tree_faiss" in str(err.value) and "null" in str(err.value)


def test_the_database_is_kept_unless_features_or_photos_change(tmp_path):
    """What a rerun keeps: everything (same options and photos), the features (matching options changed), or
    nothing (feature options changed, or a photo replaced under its old name)."""
    conf = schema_defaults("sfm")
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
