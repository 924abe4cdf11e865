"""The depth stage end to end on the demo scene's real SfM: sparse backend, QA, the seed recipe's depth,
and the depth_anything path (tiny random model) through alignment and its poor-fit policies."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import yaml

from testkit import REPO
from matchforge.conf import scene_conf
from matchforge.depth import align, consistency, predict, qa
from matchforge.depth.fit import holdout_mask
from matchforge.depth.rawpng import read_raw
from matchforge.depth.sparse import densify
from matchforge.depth.transfer import depth_at_observations, summarize, track_transfer
from matchforge.io.colmap import load_scene
from matchforge.config_check import validate_config


@pytest.fixture(scope="module")
def shipped_conf() -> dict:
    """The demo scene's depth options exactly as the shipped config gives them."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate_config(config)
    return scene_conf(config, "sacre_coeur", "depth")


@pytest.fixture(scope="module")
def sparse_run(demo_sfm, shipped_conf, tmp_path_factory):
    out = tmp_path_factory.mktemp("depth_sparse")
    assert shipped_conf["backend"] == "sparse"
    predict.main(shipped_conf, demo_sfm, out, scene="sacre_coeur")
    report = align.main(shipped_conf, demo_sfm, out / "raw", out / "aligned", out / "align.json", scene="sacre_coeur")
    consistency.main(shipped_conf, demo_sfm, out / "aligned", out / "h5", out / "consistency.json", scene="sacre_coeur")
    result = qa.main(shipped_conf, demo_sfm, out / "raw", out / "h5", out / "qa.json", out / "qa.png", scene="sacre_coeur",
                     align_report=out / "align.json", consistency_report=out / "consistency.json")
    return out, report, result


def test_sparse_backend_outputs_follow_the_contract(demo_sfm, sparse_run):
    out, report, _ = sparse_run
    scene = load_scene(demo_sfm / "sparse")
    assert report["num_ok"] == len(scene.views) and not report["invalid"] and not report["excluded"]
    for view in scene.views.values():
        raw, meta = read_raw(out / "raw" / f"{view.stem}.png")
        assert raw.shape == (view.height, view.width) and meta["kind"] == "sfm"
        assert (out / "preview" / f"{view.stem}.jpg").stat().st_size > 1000
        with h5py.File(out / "aligned" / f"{view.stem}.h5", "r") as f:
            depth = np.array(f["depth"])
        assert depth.dtype == np.float32 and depth.shape == (view.height, view.width)
        assert np.isfinite(depth).all() and (depth >= 0).all()
        # the SfM depth of each observed point is in the pixel that observes it (nearest surface wins)
        z = scene.camera_points(view)[:, 2]
        at = depth[np.floor(view.xy[:, 1]).astype(int), np.floor(view.xy[:, 0]).astype(int)]
        assert np.mean(np.isclose(at, z, rtol=1e-3)) > 0.95


def test_sparse_backend_transfers_held_out_tracks_on_demo(demo_sfm, shipped_conf, sparse_run):
    """The sparse map at an SfM point's own pixel is that point's depth by construction, so track transfer
    is measured on points held out of the map: densify each view without 20 % of its points (the same
    points in every view), lift the held-out observations with that depth, and project them into the
    other views that observe the same 3D point."""
    scene = load_scene(demo_sfm / "sparse")
    depths, n_held = {}, 0
    for name, view in scene.views.items():
        z = scene.camera_points(view)[:, 2]
        hold = holdout_mask(view.point_ids, 20.0)
        dense = densify(view.height, view.width, view.xy[~hold], z[~hold], shipped_conf["sparse"])
        at = depth_at_observations(np.nan_to_num(dense, nan=0.0), view.xy)
        at[~hold] = np.nan  # transfer only the held-out observations
        depths[name] = at
        n_held += int(hold.sum())
    tt = summarize(track_transfer(scene, depths).all())
    print(f"held-out track transfer: {tt} ({n_held} held-out observations)")
    assert tt["n"] > 1000
    assert tt["median_px"] < 1.0
    assert tt["within_2px"] >= 0.85
    # the QA's own held-out AbsRel and coverage (densified pixels against points they were not built from)
    _, _, result = sparse_run
    # ... and its headline: the same transfer over its own held-out points (10 %), not the circular all-points one
    headline = result["track_transfer_holdout"]
    assert headline["n"] > 300 and headline["median_px"] < 1.0 and headline["within_2px"] >= 0.85, headline
    assert result["holdout_abs_rel_median_of_images"] < 0.02
    assert result["holdout_coverage_median_of_images"] > 0.3
    assert (sparse_run[0] / "qa.png").stat().st_size > 10000


def test_seed_recipe_depth_is_much_worse_on_the_same_scene(sparse_run):
    _, _, result = sparse_run
    ours, seed = result["track_transfer"], result["seed_recipe_baseline"]["track_transfer"]
    print(f"track transfer within 2 px: matchforge {ours['within_2px']:.3f} vs seed recipe {seed['within_2px']:.3f}; "
          f"median {ours['median_px']:.2f} px vs {seed['median_px']:.1f} px")
    assert seed["n"] > 1000
    assert seed["within_2px"] < 0.2
    assert seed["median_px"] > 20 * ours["median_px"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from testkit.models import save_tiny_depth_anything

    d = tmp_path_factory.mktemp("tiny_da_demo") / "model"
    save_tiny_depth_anything(d, "relative")
    return d


@pytest.fixture(scope="module")
def tiny_model_raw(demo_sfm, shipped_conf, tiny_model_dir, tmp_path_factory):
    """Raw maps of the demo predicted by the depth_anything backend with an untrained tiny model."""
    conf = {**shipped_conf, "backend": "depth_anything",
            "depth_anything": {**shipped_conf["depth_anything"], "model": str(tiny_model_dir), "device": "cpu"}}
    out = tmp_path_factory.mktemp("depth_da")
    summary = predict.main(conf, demo_sfm, out, scene="sacre_coeur")
    assert summary["kind"] == "disparity" and summary["num_images"] == len(load_scene(demo_sfm / "sparse").views)
    return conf, out


@pytest.mark.parametrize("policy", ["invalid", "exclude"])
def test_depth_anything_path_on_demo_and_poor_fit_policy(demo_sfm, tiny_model_raw, tmp_path, policy):
    conf, out = tiny_model_raw
    conf = {**conf, "align": {**conf["align"], "on_poor_fit": policy}}
    report = align.main(conf, demo_sfm, out / "raw", tmp_path / "h5", tmp_path / "align.json", scene="sacre_coeur")
    assert json.loads((tmp_path / "align.json").read_text())["images"].keys() == report["images"].keys()
    poor = [s for s, e in report["images"].items() if not e["fit"]["ok"]]
    assert poor, "an untrained random network should not fit the SfM depths"
    for stem, entry in report["images"].items():
        h5 = tmp_path / "h5" / f"{stem}.h5"
        if entry["fit"]["ok"]:
            assert entry["status"] == "ok" and h5.is_file()
        elif policy == "exclude":
            assert entry["status"] == "excluded" and not h5.exists() and stem in report["excluded"]
        else:
            assert entry["status"] == "invalid" and stem in report["invalid"]
            assert not (np.array(h5py.File(h5, "r")["depth"]) > 0).any()
    result = qa.main(conf, demo_sfm, out / "raw", tmp_path / "h5", tmp_path / "qa.json", scene="sacre_coeur",
                     align_report=tmp_path / "align.json")
    assert result["num_with_depth"] == len(report["images"]) - len(report["excluded"])
    assert set(result["poor_fits"]) == set(poor) and all(result["poor_fits"].values())


def test_depth_anything_noise_goes_through_the_filter_and_the_qa_says_so(demo_sfm, tiny_model_raw, tmp_path, caplog):
    """The untrained tiny model's depth goes through the same alignment, consistency filter and QA as any
    network's (shipped options). Its poor fits become empty maps and the filter's log names every map that
    supervises nothing. The maps whose fit passed are nearly constant (a plane at the facade's distance):
    frontal views of a facade confirm such planes within the filter's 6 %, so the filter keeps them, and the
    QA's headline, the track transfer at held-out SfM points, is what exposes them (sparse backend: < 1 px)."""
    import logging

    conf, out = tiny_model_raw
    with caplog.at_level(logging.WARNING):
        aligned = align.main(conf, demo_sfm, out / "raw", tmp_path / "aligned", tmp_path / "align.json", scene="sacre_coeur")
        report = consistency.main(conf, demo_sfm, tmp_path / "aligned", tmp_path / "h5", tmp_path / "c.json", scene="sacre_coeur")
    assert aligned["num_ok"] < aligned["num_images"] and "poor depth fit" in caplog.text
    empty = {s for s, e in report["images"].items() if e["valid_after"] == 0}
    assert set(aligned["invalid"]) <= empty and "keep no pixel after the consistency filter" in caplog.text
    result = qa.main(conf, demo_sfm, out / "raw", tmp_path / "h5", tmp_path / "qa.json", scene="sacre_coeur",
                     align_report=tmp_path / "align.json", consistency_report=tmp_path / "c.json")
    headline = result["track_transfer_holdout"]
    print("tiny model, held-out track transfer:", headline)
    assert headline["n"] > 100 and headline["median_px"] > 3 and headline["within_2px"] < 0.5
    assert result["consistency"]["retained"] == report["scene"]["retained"]


def counted_predictions(monkeypatch) -> list[str]:
    """The names the depth network predicts from now on, in order (the real network runs)."""
    from matchforge.depth import anything

    predicted: list[str] = []
    original = anything.DepthAnything.predict

    def counting(self, items):
        for name, dmap in original(self, items):
            predicted.append(name)
            yield name, dmap

    monkeypatch.setattr(anything.DepthAnything, "predict", counting)
    return predicted


def test_an_interrupted_depth_job_predicts_only_the_missing_images(demo_sfm, tiny_model_raw, tmp_path, monkeypatch):
    """Snakemake deletes a failed job's outputs; the maps kept under work/ survive, so a requeued job runs the
    network on the images it had not finished, and on none when all are there (no model is even loaded)."""
    import shutil

    conf, first = tiny_model_raw
    out = tmp_path / "depth"
    shutil.copytree(first / "work", out / "work")
    cache = next((out / "work" / "depth_anything").iterdir())
    maps = sorted(p for p in cache.glob("*.png"))
    for p in maps[:3]:  # the job was killed before these three
        p.unlink()
    predicted = counted_predictions(monkeypatch)
    predict.main(conf, demo_sfm, out, scene="sacre_coeur")
    assert len(predicted) == 3
    from matchforge.depth.rawpng import read_raw

    redone = {p.name.rsplit("-", 1)[0] + ".png" for p in maps[:3]}
    for p in sorted((first / "raw").glob("*.png")):  # the uninterrupted run's maps: the same bytes, or (predicted
        if p.name not in redone:                    # again in a smaller batch) the same values to float rounding
            assert (out / "raw" / p.name).read_bytes() == p.read_bytes(), p.name
        else:
            want = read_raw(p)[0]
            np.testing.assert_allclose(read_raw(out / "raw" / p.name)[0], want, rtol=1e-3,
                                       atol=1e-3 * np.nanmax(np.abs(want)), equal_nan=True)
    shutil.rmtree(out / "raw")
    predict.main(conf, demo_sfm, out, scene="sacre_coeur")
    assert len(predicted) == 3 and len(list((out / "raw").glob("*.png"))) == len(maps)
    other = {**conf, "depth_anything": {**conf["depth_anything"], "kind": "metric"}}  # another output: recomputed
    predict.main(other, demo_sfm, out, scene="sacre_coeur")
    assert len(predicted) == 3 + len(maps) and not cache.exists()


def test_a_damaged_depth_cache_is_set_aside_and_the_rerun_predicts_it(demo_sfm, tiny_model_raw, tmp_path, monkeypatch):
    """The kept maps are written atomically, so a kill leaves none half-written; one changed on disk since (here cut
    short) fails the job naming it and is set aside, and the rerun predicts only that map. A cache record that is not
    the expected shape is set aside and every map is predicted again."""
    import shutil

    from matchforge.errors import MatchforgeError

    conf, first = tiny_model_raw
    out = tmp_path / "depth"
    shutil.copytree(first / "work", out / "work")
    cache = next((out / "work" / "depth_anything").iterdir())
    maps = sorted(cache.glob("*.png"))
    maps[0].write_bytes(maps[0].read_bytes()[:100])
    predicted = counted_predictions(monkeypatch)
    with pytest.raises(MatchforgeError, match="does not read .* it was set aside") as err:
        predict.main(conf, demo_sfm, out, scene="sacre_coeur")
    assert "rerun the job" in str(err.value) and list(cache.glob(maps[0].name + ".damaged-*"))
    predict.main(conf, demo_sfm, out, scene="sacre_coeur")
    assert len(predicted) == 1
    (cache / "info.json").write_text("[]")
    predict.main(conf, demo_sfm, out, scene="sacre_coeur")
    assert len(predicted) == 1 + len(maps) and list(cache.glob("info.json.damaged-*"))
