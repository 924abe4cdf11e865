"""Raw 16-bit PNG and MegaDepth H5 formats, on real depth maps."""

from __future__ import annotations


import cv2
import h5py
import numpy as np
import pytest
from PIL import Image

from testkit import real_data
from matchforge.io.depth import check_size, read_depth, write_depth
from matchforge.depth.rawpng import read_raw, write_raw
from matchforge.depth.seed_recipe import seed_recipe_depth
from matchforge.errors import MatchforgeError


@pytest.fixture
def tum_depth() -> np.ndarray:
    d = cv2.imread(str(real_data("tum_rgbd", "depth", "1341847980.723020.png")), cv2.IMREAD_UNCHANGED) / 5000.0
    d[d == 0] = np.nan
    return d


@pytest.mark.parametrize("kind", ["sfm", "metric", "disparity"])
def test_raw_png_is_16bit_and_inverts_within_quantisation(tmp_path, tum_depth, kind):
    values = tum_depth if kind != "disparity" else 3.0 / tum_depth - 0.2
    p = tmp_path / "x.png"
    write_raw(p, values, kind, backend="test")
    with Image.open(p) as im:
        assert np.array(im).dtype == np.uint16
    back, meta = read_raw(p)
    assert meta["kind"] == kind and meta["backend"] == "test"
    assert back.shape == values.shape and back.dtype == np.float32
    assert np.array_equal(np.isnan(back), np.isnan(values))
    ok = np.isfinite(values)
    if meta["encoding"] == "log":
        assert np.max(np.abs(back[ok] / values[ok] - 1)) < 1e-4
    else:
        span = np.nanmax(values) - np.nanmin(values)
        assert np.max(np.abs(back[ok] - values[ok])) <= span / 65534 + 1e-5 * np.nanmax(np.abs(values))


def test_raw_png_rejects_8bit_png(tmp_path):
    p = tmp_path / "seed.png"
    cv2.imwrite(str(p), np.zeros((8, 8), np.uint8))
    with pytest.raises(MatchforgeError, match="cannot be inverted"):
        read_raw(p)


@pytest.mark.parametrize("compression", ["fast_deflate", "lzf", "gzip", "none"])
def test_h5_loads_with_the_loftr_convention(tmp_path, tum_depth, compression):
    p = tmp_path / "d.h5"
    write_depth(p, tum_depth, {"compression": compression})
    depth = np.array(h5py.File(p, "r")["depth"])  # what LoFTR's read_megadepth_depth does
    assert depth.dtype == np.float32 and depth.shape == tum_depth.shape
    valid = np.isfinite(tum_depth)
    assert np.array_equal(depth > 0, valid)  # NaN became 0 = invalid
    assert np.allclose(depth[valid], tum_depth[valid], rtol=1e-6)
    assert np.array_equal(read_depth(p), depth)


@pytest.mark.parametrize("threads", [1, 3])
def test_h5_default_is_a_standard_shuffle_gzip_dataset_no_larger_than_gzip9(tmp_path, tum_depth, threads):
    # like an aligned network prediction: smooth, unique float values (the sensor's 1/5000 steps removed)
    d = cv2.resize(np.nan_to_num(tum_depth).astype(np.float32), (640, 480), fx=0, fy=0, interpolation=cv2.INTER_CUBIC)
    d = cv2.GaussianBlur(d, (0, 0), 1.5) * np.float32(1.0001)
    d[:200, :300] = 0  # an all-zero region (e.g. sky): its chunks are not stored
    write_depth(tmp_path / "a.h5", d, {"threads": threads, "chunk": 128})
    with h5py.File(tmp_path / "gzip9.h5", "w") as f:  # the public recipe's setting
        f.create_dataset("depth", data=d, compression="gzip", compression_opts=9)
    with h5py.File(tmp_path / "a.h5") as f:
        ds = f["depth"]
        assert ds.compression == "gzip" and ds.shuffle and ds.chunks == (128, 128)
        assert ds.id.get_num_chunks() < (480 // 128 + 1) * (640 // 128)  # empty chunks skipped
        assert np.array_equal(ds[()], d)
        assert np.array_equal(ds[100:300, 250:420], d[100:300, 250:420])  # partial reads across chunks
    assert (tmp_path / "a.h5").stat().st_size <= (tmp_path / "gzip9.h5").stat().st_size


def test_oversize_depth_is_handled_as_configured(tmp_path, caplog):
    shape = (1500, 2400)  # e.g. sfm.undistort_max_image_size: -1 on 24 MP photos, scaled
    with pytest.raises(MatchforgeError, match="undistort_max_image_size"):
        check_size(shape, {"max_long_side": 2000, "oversize": "error"}, scene="s", path="x.h5")
    assert check_size(shape, {"max_long_side": 2000, "oversize": "allow"})
    assert "MGDPT_DEPTH_PAD" in caplog.text
    assert not check_size(shape, {"max_long_side": 2000, "oversize": "skip"})
    assert check_size((2000, 1500), {"max_long_side": 2000, "oversize": "error"})
    assert check_size(shape, {"max_long_side": 0, "oversize": "error"})


def test_seed_recipe_is_inverted_normalised_and_zeroes_the_farthest_pixel(tum_depth):
    seed = seed_recipe_depth(tum_depth, "sfm")
    valid = np.isfinite(tum_depth)
    assert seed.max() == pytest.approx(2.55)
    far = np.nanargmax(tum_depth)
    assert seed.flat[far] == 0  # the farthest pixel becomes invalid for LoFTR
    near = np.nanargmin(tum_depth)
    assert seed.flat[near] == seed.max()  # larger = nearer
    assert len(np.unique(seed[valid])) <= 256


def test_h5_sparse_map_roundtrips_through_unshuffled_chunks(tmp_path, tum_depth):
    """Mostly-empty chunks (sparse backend) skip the shuffle per chunk; plain h5py still reads them exactly."""
    from matchforge.depth.sparse import densify

    rng = np.random.default_rng(0)
    r, c = np.nonzero(np.isfinite(tum_depth))
    pick = rng.choice(len(r), 600, replace=False)
    z = tum_depth[r[pick], c[pick]] * (1 + 1e-4 * rng.standard_normal(600))  # SfM depths are not on a 0.2 mm grid
    sparse = np.nan_to_num(densify(480, 640, np.c_[c[pick] + 0.5, r[pick] + 0.5], z, {"radius": 4}))
    assert 0.01 < (sparse > 0).mean() < 0.5
    write_depth(tmp_path / "s.h5", sparse)
    with h5py.File(tmp_path / "gzip9.h5", "w") as f:
        f.create_dataset("depth", data=sparse.astype(np.float32), compression="gzip", compression_opts=9)
    with h5py.File(tmp_path / "s.h5") as f:
        masks = {f["depth"].id.get_chunk_info(i).filter_mask for i in range(f["depth"].id.get_num_chunks())}
        assert 1 in masks  # at least one chunk stored without the shuffle
        assert np.array_equal(f["depth"][()], sparse.astype(np.float32))
    # within 10 % of gzip-9 on this small synthetic map (the real demo maps come out ~30 % smaller:
    # bench/depth_h5.py); the dense case must be no larger, see the test above
    assert (tmp_path / "s.h5").stat().st_size <= 1.1 * (tmp_path / "gzip9.h5").stat().st_size


def test_preview_carries_a_colour_scale_that_matches_the_map(tmp_path, tum_depth):
    """The preview is the map plus a colour scale: its top colour is the nearest depths' colour, its bottom the
    farthest's, and the scale is as tall as the map."""
    from matchforge.depth.preview import colorize, write_preview
    from matchforge.io.images import read_image

    path = tmp_path / "p.png"  # lossless, to compare colours exactly
    write_preview(path, tum_depth, "metric")
    pic = read_image(path)
    h, w = tum_depth.shape
    assert pic.shape[0] == h and pic.shape[1] > w + 50
    mapped, bar = colorize(tum_depth, "metric"), pic[:, w:]
    near, far = np.nanpercentile(tum_depth, 1), np.nanpercentile(tum_depth, 99)
    gradient = bar[:, 4:22].reshape(-1, 3).astype(int)
    column = bar[:, 12].astype(int)
    rows = np.where(np.ptp(column, axis=1) > 0)[0]  # coloured, not the white background or grey label text
    top, bottom = column[rows[0]], column[rows[-1]]
    near_colour = mapped[np.nan_to_num(tum_depth, nan=np.inf) <= near].astype(int)
    far_colour = mapped[np.nan_to_num(tum_depth, nan=-np.inf) >= far].astype(int)
    assert np.abs(near_colour - top).sum(1).min() <= 3 and np.abs(far_colour - bottom).sum(1).min() <= 3
    assert np.abs(top - bottom).sum() > 100 and len(np.unique(gradient, axis=0)) > 50


def test_match_picture_title_sits_on_its_own_band():
    """The title of a match picture is drawn above the photos, not over them (white text on sky was unreadable)."""
    from matchforge.evaluation.visualize import draw_matches
    from matchforge.io.images import read_image

    img = read_image(real_data("reichstag", "images", sorted(p.name for p in real_data("reichstag", "images").iterdir())[0]))
    plain = draw_matches(img, img, np.zeros((0, 2)), np.zeros((0, 2)))
    titled = draw_matches(img, img, np.zeros((0, 2)), np.zeros((0, 2)), "a title")
    band = titled.shape[0] - plain.shape[0]
    assert band > 20 and np.array_equal(titled[band:], plain)  # the photos are untouched
    assert titled[:band].max() > 200 and np.median(titled[:band]) == 0  # white text on black
