"""saropt.io.raster: Scene reading, band layouts, georeferencing conventions (generated files only)."""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine
from rasterio.windows import Window as RioWindow
from rasterio.windows import bounds as rio_bounds
from rasterio.windows import transform as rio_window_transform

from saropt.errors import BandLayoutError, CRSMismatchError, InputError, RasterReadError
from saropt.io.raster import Scene, close_datasets, open_scene
from saropt.io.windows import Window

UTM = "EPSG:32615"
GEO = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0)


def write_tif(
    path: Path, data: np.ndarray, *, transform=None, crs=None, nodata=None, gcps=None, **extra
) -> Path:
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0])
    profile["dtype"] = extra.pop("dtype", data.dtype.name)
    if transform is not None:
        profile["transform"] = transform
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    profile.update(extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            if gcps is not None:
                dst.gcps = gcps
    return path


def ramp(h: int, w: int, c: int = 1, dtype=np.uint16) -> np.ndarray:
    """Unique values: band b, row r, col x -> 1 + b*h*w + r*w + x."""
    return (1 + np.arange(c * h * w).reshape(c, h, w)).astype(dtype)


@pytest.fixture(scope="module")
def ramp_scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scene, np.ndarray]:
    d = ramp(37, 53)
    p = write_tif(tmp_path_factory.mktemp("raster") / "ramp.tif", d, transform=GEO, crs=UTM)
    return open_scene(p, "sar"), d.astype(np.float32)


# ------------------------------------------------------------------------------------------------------ windows


@pytest.mark.parametrize(
    "win",
    [
        Window(0, 0, 53, 37),  # whole
        Window(5, 7, 10, 4),  # inside
        Window(-3, -2, 10, 8),  # top-left corner outside
        Window(45, 30, 20, 20),  # bottom-right outside
        Window(-5, -5, 70, 50),  # contains the raster
        Window(100, 100, 5, 5),  # entirely outside
        Window(-10, 3, 10, 4),  # touching the left edge from outside
    ],
)
def test_read_window_equals_slicing(ramp_scene: tuple[Scene, np.ndarray], win: Window) -> None:
    scene, full = ramp_scene
    data, valid = scene.read(win)
    assert data.shape == (1, win.height, win.width) and data.dtype == np.float32
    assert valid.shape == win.shape and valid.dtype == bool
    padded = np.zeros((1, 37 + 200, 53 + 200), np.float32)
    padded[:, 100:137, 100:153] = full
    inside = np.zeros((37 + 200, 53 + 200), bool)
    inside[100:137, 100:153] = True
    sl = (slice(win.row_off + 100, win.row_end + 100), slice(win.col_off + 100, win.col_end + 100))
    np.testing.assert_array_equal(data[0], padded[0][sl])
    np.testing.assert_array_equal(valid, inside[sl])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=st.integers(-60, 60), r=st.integers(-40, 40), w=st.integers(0, 80), h=st.integers(0, 60))
def test_read_window_property(ramp_scene: tuple[Scene, np.ndarray], c: int, r: int, w: int, h: int) -> None:
    scene, full = ramp_scene
    data, valid = scene.read(Window(c, r, w, h))
    rows = np.arange(r, r + h)[:, None]
    cols = np.arange(c, c + w)[None, :]
    inside = (rows >= 0) & (rows < 37) & (cols >= 0) & (cols < 53)
    np.testing.assert_array_equal(valid, inside)
    expect = np.where(inside, 1 + rows.clip(0, 36) * 53 + cols.clip(0, 52), 0)
    np.testing.assert_array_equal(data[0], expect)


def test_read_not_boundless_rejects_outside(ramp_scene: tuple[Scene, np.ndarray]) -> None:
    scene, full = ramp_scene
    data, valid = scene.read(Window(2, 3, 4, 5), boundless=False)
    np.testing.assert_array_equal(data[0], full[0, 3:8, 2:6])
    with pytest.raises(InputError, match="not inside"):
        scene.read(Window(-1, 0, 4, 4), boundless=False)


def test_read_decimated_shape_factor_and_values(tmp_path: Path) -> None:
    h, w = 300, 1000
    cols = np.broadcast_to(np.arange(w, dtype=np.uint16), (h, w))
    scene = open_scene(write_tif(tmp_path / "wide.tif", cols), "optical")
    data, valid, factor = scene.read_decimated(100)
    assert data.shape == (1, 30, 100) and valid.shape == (30, 100) and valid.all()
    assert factor == pytest.approx(10.0)
    # nearest sampling keeps real values: decimated column j comes from scene columns [10 j, 10 j + 10)
    j = np.arange(100)
    assert ((data[0, 0] >= 10 * j) & (data[0, 0] < 10 * j + 10)).all()
    full, fvalid, f1 = scene.read_decimated(2000)
    assert f1 == 1.0 and full.shape == (1, h, w)
    np.testing.assert_array_equal(full[0], cols)
    with pytest.raises(InputError):
        scene.read_decimated(0)


# ------------------------------------------------------------------------------------------------- dtypes, bands


def test_uint16_sar_with_nodata(tmp_path: Path) -> None:
    d = ramp(20, 30)
    d[0, :3, :] = 0
    scene = open_scene(write_tif(tmp_path / "u16.tif", d, nodata=0), "sar")
    assert (scene.dtype, scene.count, scene.bands, scene.nodata) == ("uint16", 1, (1,), 0.0)
    data, valid = scene.read(scene.window)
    assert not valid[:3].any() and valid[3:].all()
    np.testing.assert_array_equal(data[0, 3:], d[0, 3:].astype(np.float32))


def test_nodata_override_for_zero_filled_files(tmp_path: Path) -> None:
    d = ramp(10, 10)
    d[0, :, :2] = 0
    p = write_tif(tmp_path / "zerofill.tif", d)
    # Optical keeps 0 as a value unless told otherwise.
    assert open_scene(p, "optical").read(Window(0, 0, 10, 10))[1].all()
    assert open_scene(p, "optical", nodata=0).nodata == 0
    # Integer SAR amplitude of 0 is no measurement: nodata by default, and by explicit override.
    for scene in (open_scene(p, "sar"), open_scene(p, "sar", nodata=0)):
        valid = scene.read(Window(0, 0, 10, 10))[1]
        assert not valid[:, :2].any() and valid[:, 2:].all()


def test_float_db_with_nan(tmp_path: Path) -> None:
    d = np.linspace(-25, 5, 200, dtype=np.float32).reshape(10, 20)
    d[2, 3] = np.nan
    d[5, 7] = np.inf
    scene = open_scene(write_tif(tmp_path / "db.tif", d), "sar")
    data, valid = scene.read(scene.window)
    assert scene.dtype == "float32"
    assert not valid[2, 3] and not valid[5, 7] and valid.sum() == 198
    assert data[0, 2, 3] == 0 and data[0, 5, 7] == 0 and np.isfinite(data).all()


def test_three_identical_bands_sar_uses_band_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    g = ramp(16, 16, dtype=np.uint8)[0]
    with caplog.at_level(logging.INFO, logger="saropt.io.raster"):
        scene = open_scene(write_tif(tmp_path / "grey_rgb.tif", np.stack([g, g, g])), "sar")
    assert scene.bands == (1,) and scene.count == 1
    assert "identical" in caplog.text


def test_grey_png_stored_as_rgb(tmp_path: Path) -> None:
    import cv2

    g = (np.arange(40 * 30) % 251).astype(np.uint8).reshape(30, 40)
    cv2.imwrite(str(tmp_path / "grey.png"), np.dstack([g, g, g]))
    scene = open_scene(tmp_path / "grey.png", "sar")
    assert scene.bands == (1,) and not scene.georeferenced
    np.testing.assert_array_equal(scene.read(scene.window)[0][0], g)


def test_three_different_bands_sar_needs_a_choice(tmp_path: Path) -> None:
    p = write_tif(tmp_path / "rgb.tif", ramp(8, 8, 3, np.uint8))
    with pytest.raises(BandLayoutError, match=r"bands=\(k,\)"):
        open_scene(p, "sar")
    assert open_scene(p, "sar", bands=[2]).bands == (2,)


def test_two_band_iq_is_not_guessed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    iq = rng.integers(-300, 300, (2, 12, 14)).astype(np.int16)
    p = write_tif(tmp_path / "iq.tif", iq)
    with pytest.raises(BandLayoutError, match="iq=True"):
        open_scene(p, "sar")
    scene = open_scene(p, "sar", bands=(1, 2), iq=True)
    assert scene.count == 1 and scene.iq
    data, valid = scene.read(Window(0, 0, 14, 12))
    np.testing.assert_allclose(data[0], np.hypot(iq[0], iq[1].astype(np.float64)), rtol=1e-6)
    assert open_scene(p, "sar", bands=(2,)).bands == (2,)


def test_complex_sar_reads_amplitude(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    re, im = rng.integers(-500, 500, (2, 9, 11))
    c = (re + 1j * im).astype(np.complex64)
    scene = open_scene(write_tif(tmp_path / "slc.tif", c[None], dtype="complex_int16"), "sar")
    assert scene.is_complex and scene.count == 1
    data, _ = scene.read(Window(-1, -1, 13, 11))
    np.testing.assert_allclose(data[0, 1:-1, 1:-1], np.abs(c), rtol=1e-6)
    with pytest.raises(BandLayoutError, match="complex"):
        open_scene(scene.path, "optical")


def test_optical_band_rules(tmp_path: Path) -> None:
    four = ramp(6, 7, 4)
    p4 = write_tif(tmp_path / "rgbn.tif", four)
    s = open_scene(p4, "optical")
    assert s.bands == (1, 2, 3) and s.count == 3
    s = open_scene(p4, "optical", bands=(4, 3, 2))
    data, _ = s.read(Window(0, 0, 7, 6))
    np.testing.assert_array_equal(data, four[[3, 2, 1]].astype(np.float32))
    with pytest.raises(BandLayoutError, match="2 bands"):
        open_scene(write_tif(tmp_path / "two.tif", ramp(6, 7, 2)), "optical")
    with pytest.raises(BandLayoutError, match=r"1\.\.4"):
        open_scene(p4, "optical", bands=(5,))
    with pytest.raises(BandLayoutError, match="1 or 3"):
        open_scene(p4, "optical", bands=(1, 2))


def test_rgba_png_alpha_is_the_valid_mask(tmp_path: Path) -> None:
    import cv2

    bgra = np.full((10, 12, 4), 200, np.uint8)
    bgra[:, :4, 3] = 0
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    s = open_scene(tmp_path / "rgba.png", "optical")
    assert s.bands == (1, 2, 3)
    data, valid = s.read(s.window)
    assert not valid[:, :4].any() and valid[:, 4:].all() and (data[:, :, :4] == 0).all()


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tif"
    with pytest.raises(RasterReadError, match="nope.tif"):
        open_scene(missing, "sar")
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    with pytest.raises(RasterReadError, match="junk.tif"):
        open_scene(junk, "sar")
    with pytest.raises(InputError, match="role"):
        open_scene(junk, "lidar")


# ---------------------------------------------------------------------------------------------- georeferencing


def test_half_pixel_convention_and_round_trip(ramp_scene: tuple[Scene, np.ndarray]) -> None:
    scene, _ = ramp_scene
    assert scene.georeferenced and CRS.from_wkt(scene.crs) == CRS.from_epsg(32615)
    centre00 = scene.pixel_to_map(np.array([[0.0, 0.0]]))[0]
    np.testing.assert_allclose(centre00, GEO @ (0.5, 0.5))
    np.testing.assert_allclose(centre00, (500005.0, 4599995.0))
    corner = scene.pixel_to_map(np.array([[-0.5, -0.5]]))[0]
    np.testing.assert_allclose(corner, (GEO.c, GEO.f))
    rng = np.random.default_rng(0)
    xy = rng.uniform(-10, 60, (100, 2))
    np.testing.assert_allclose(scene.map_to_pixel(scene.pixel_to_map(xy)), xy, atol=1e-9)
    # rasterio's own centre convention agrees
    x, y = rasterio.transform.xy(GEO, 7, 3)
    np.testing.assert_allclose(scene.pixel_to_map(np.array([[3, 7]]))[0], (x, y))


def test_rotated_transform_round_trip(tmp_path: Path) -> None:
    t = Affine.translation(1000, 2000) @ Affine.rotation(17) @ Affine.scale(2.0, -3.0)
    s = open_scene(write_tif(tmp_path / "rot.tif", ramp(5, 6), transform=t, crs=UTM), "optical")
    xy = np.array([[0.0, 0.0], [5.0, 4.0], [2.5, -0.5]])
    np.testing.assert_allclose(s.map_to_pixel(s.pixel_to_map(xy)), xy, atol=1e-9)
    np.testing.assert_allclose(s.pixel_to_map(xy[:1])[0], t @ (0.5, 0.5))


def test_window_bounds_and_transform_match_rasterio(ramp_scene: tuple[Scene, np.ndarray]) -> None:
    scene, _ = ramp_scene
    win = Window(4, 9, 16, 8)
    rio = RioWindow(4, 9, 16, 8)
    left, bottom, right, top = rio_bounds(rio, GEO)
    expect = (min(left, right), min(bottom, top), max(left, right), max(bottom, top))
    assert scene.window_bounds(win) == pytest.approx(expect)
    assert scene.window_transform(win) == pytest.approx(tuple(rio_window_transform(rio, GEO))[:6])


def test_not_georeferenced(tmp_path: Path) -> None:
    s = open_scene(write_tif(tmp_path / "plain.tif", ramp(5, 5)), "sar")
    assert not s.georeferenced and s.crs is None and s.transform is None
    assert s.window_bounds(s.window) is None and s.window_transform(s.window) is None
    with pytest.raises(CRSMismatchError, match="not georeferenced"):
        s.pixel_to_map(np.zeros((1, 2)))
    with pytest.raises(CRSMismatchError):
        s.map_to_pixel(np.zeros((1, 2)))
    pix, mxy, crs = s.gcps()
    assert pix.shape == (0, 2) and mxy.shape == (0, 2) and crs is None


def test_gcps_are_converted_to_pixel_centres(tmp_path: Path) -> None:
    gcps = [
        GroundControlPoint(row=0.0, col=0.0, x=-95.0, y=41.0),
        GroundControlPoint(row=10.0, col=0.0, x=-95.0, y=40.9),
        GroundControlPoint(row=10.0, col=20.0, x=-94.8, y=40.9),
        GroundControlPoint(row=0.5, col=7.25, x=-94.9275, y=40.995),
    ]
    p = write_tif(tmp_path / "gcps.tif", ramp(10, 20), gcps=(gcps, CRS.from_epsg(4326)))
    s = open_scene(p, "sar")
    assert not s.georeferenced
    pix, mxy, crs = s.gcps()
    np.testing.assert_allclose(pix, [[-0.5, -0.5], [-0.5, 9.5], [19.5, 9.5], [6.75, 0.0]])
    np.testing.assert_allclose(mxy[:, 0], [-95.0, -95.0, -94.8, -94.9275])
    assert CRS.from_wkt(crs) == CRS.from_epsg(4326)


# -------------------------------------------------------------------------------------------------- picklability


def _read_sum(scene: Scene) -> float:
    data, valid = scene.read(Window(0, 0, 10, 10))
    return float(data.sum())


def test_scene_pickles_and_reads_in_other_processes(ramp_scene: tuple[Scene, np.ndarray]) -> None:
    scene, full = ramp_scene
    clone = pickle.loads(pickle.dumps(scene))
    assert clone == scene and hash(clone) == hash(scene)
    scene.read(Window(0, 0, 2, 2))  # the parent has the file open before forking
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        sums = pool.map(_read_sum, [scene, clone])
    assert sums == [float(full[0, :10, :10].sum())] * 2
    close_datasets()
    assert _read_sum(scene) == sums[0]  # reopens after closing


def test_truncated_file_read_error_names_the_path(tmp_path: Path) -> None:
    d = np.random.default_rng(0).integers(0, 60000, (1, 512, 512)).astype(np.uint16)
    p = write_tif(tmp_path / "cut.tif", d, compress="deflate", tiled=True)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    scene = open_scene(p, "sar")
    with pytest.raises(RasterReadError, match="cut.tif"):
        scene.read(Window(0, 400, 100, 100))


def test_read_with_out_shape(ramp_scene: tuple[Scene, np.ndarray]) -> None:
    scene, full = ramp_scene
    # inside, integer factor 4 x 2: nearest picks the pixel under each output pixel's centre
    data, valid = scene.read(Window(8, 4, 40, 20), out_shape=(10, 10))
    assert data.shape == (1, 10, 10) and valid.all()
    rows = 4 + 2 * np.arange(10) + 1
    cols = 8 + 4 * np.arange(10) + 2
    np.testing.assert_array_equal(data[0], full[0][np.ix_(rows, cols)])
    # partly outside: the valid part lands where it belongs in the output grid
    data, valid = scene.read(Window(-20, 0, 80, 37), out_shape=(37, 20))
    assert data.shape == (1, 37, 20)
    np.testing.assert_array_equal(valid[0], [False] * 5 + [True] * 13 + [False] * 2)
    assert (data[0][valid] > 0).all() and (data[0][~valid] == 0).all()
    assert scene.read(Window(0, 0, 53, 37), out_shape=(37, 53))[0].shape == (1, 37, 53)
    with pytest.raises(InputError, match="out_shape"):
        scene.read(Window(0, 0, 5, 5), out_shape=(0, 5))


def test_read_sample_grid_reads_real_pixels_from_every_cell(tmp_path: Path) -> None:
    h, w = 700, 900
    data = ramp(h, w, 3, dtype=np.uint32)
    path = write_tif(tmp_path / "s.tif", data, tiled=True, blockxsize=128, blockysize=128)
    scene = open_scene(path, "optical")
    d, v = scene.read_sample(max_pixels=10_000)  # 630k pixels > 16 x 10k: the 16 x 16 grid of 64 px windows
    assert d.shape == (3, 16 * 64, 16 * 64) and v.all()
    # every value is a real pixel (the ramp is unique), and each grid cell samples its own part of the scene
    idx = d[0].astype(np.int64) - 1
    rows, cols = idx // w, idx % w
    np.testing.assert_array_equal(d[1].astype(np.int64) - 1 - h * w, idx)
    for gy in range(16):
        for gx in range(16):
            r = rows[gy * 64 : (gy + 1) * 64, gx * 64 : (gx + 1) * 64]
            c = cols[gy * 64 : (gy + 1) * 64, gx * 64 : (gx + 1) * 64]
            assert gy * h / 16 - 64 <= r.mean() <= (gy + 1) * h / 16 + 64
            assert gx * w / 16 - 64 <= c.mean() <= (gx + 1) * w / 16 + 64
    small, _ = scene.read_sample(max_pixels=1_000_000)  # small scene: the decimated read
    np.testing.assert_array_equal(small, scene.read_decimated(1000)[0])
