"""SfM on unordered collections: retrieval pairs instead of n^2 or file-name order, a database that survives
reruns and grows with the photos, and no mapping retries when the photos genuinely split into models."""

from __future__ import annotations
import random
import shutil
from collections import Counter
from pathlib import Path

import pycolmap
from matchforge.sfm.reconstruct import main as sfm_main

from testkit import DEMO_IMAGES, real_data

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
