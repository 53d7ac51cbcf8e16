"""Warping: agreement with OpenCV and exact positions, validity masks, tiling determinism, windowed reads."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from saropt.errors import InputError
from saropt.io.raster import Scene, open_scene
from saropt.io.windows import Window
from saropt.registration import warp as warp_mod
from saropt.registration.transforms import (
    IdentityTransform,
    ProjectiveTransform,
    SimilarityTransform,
    Transform,
    fit_transform,
)
from saropt.registration.warp import (
    lattice_step,
    optical_window_for,
    sample_positions,
    warp_array,
    warp_optical,
)

H, W = 300, 340  # optical test image
SIM = SimilarityTransform.from_params(scale=1.1, angle_deg=10.0, tx=15.3, ty=-7.7)
PROJ = ProjectiveTransform([[1.05, 0.04, 3.0], [0.02, 0.95, -4.0], [2e-4, -1e-4, 1.0]])


def _smooth_image(h: int = H, w: int = W, bands: int = 1) -> np.ndarray:
    """Smooth float32 test image in [0, 1] (gradients below 0.03 per px)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [
        0.5 + 0.25 * np.sin(xx / (23.0 + 5 * b)) + 0.25 * np.cos(yy / 31.0 + xx / (57.0 + 3 * b))
        for b in range(bands)
    ]
    return np.stack(planes).astype(np.float32)


def _wavy(xy: np.ndarray) -> np.ndarray:
    x, y = xy[:, 0], xy[:, 1]
    return np.column_stack(
        [
            1.02 * x + 0.03 * y + 4.0 + 3.0 * np.sin(x / 45.0),
            -0.02 * x + 0.98 * y - 2.0 + 2.5 * np.cos(y / 50.0),
        ]
    )


def _tps() -> Transform:
    rng = np.random.default_rng(0)
    opt = rng.uniform(0, 330, size=(80, 2))
    return fit_transform("tps", opt, _wavy(opt))


def _poly2() -> Transform:
    rng = np.random.default_rng(1)
    opt = rng.uniform(0, 330, size=(30, 2))
    x, y = opt[:, 0], opt[:, 1]
    sar = np.column_stack([2 + 1.01 * x + 2e-4 * x * x - 1e-4 * x * y, -3 + 0.99 * y + 2e-4 * y * y])
    return fit_transform("polynomial2", opt, sar)


def _exact_positions(t: Transform, win: Window) -> np.ndarray:
    gy, gx = np.mgrid[win.row_off : win.row_end, win.col_off : win.col_end]
    return t.inverse(np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float64)).reshape(
        win.height, win.width, 2
    )


def test_affine_matches_opencv_warpaffine() -> None:
    img = _smooth_image()[0]
    win = Window(0, 0, 380, 360)
    out, valid = warp_array(img[None], None, SIM, win)
    ref = cv2.warpAffine(img, SIM.matrix[:2], (win.width, win.height), flags=cv2.INTER_LINEAR)
    assert out.shape == (1, 360, 380) and out.dtype == np.float32 and valid.dtype == bool
    e = _exact_positions(SIM, win)
    # the valid mask is the exact footprint of the source (up to the 1/256 px position rounding)
    inside = (e[..., 0] >= 0) & (e[..., 0] <= W - 1) & (e[..., 1] >= 0) & (e[..., 1] <= H - 1)
    eps = 1 / 256
    ambiguous = (
        (np.abs(e[..., 0]) < eps)
        | (np.abs(e[..., 0] - (W - 1)) < eps)
        | (np.abs(e[..., 1]) < eps)
        | (np.abs(e[..., 1] - (H - 1)) < eps)
    )
    np.testing.assert_array_equal(valid[~ambiguous], inside[~ambiguous])
    assert 0.3 < valid.mean() < 0.95  # the window really crosses the image border
    assert (out[0][~valid] == 0).all()
    assert np.abs(out[0] - ref)[valid & ~ambiguous].max() < 1e-3


def test_positions_are_the_inverse_to_1_256_px() -> None:
    for t in (SIM, PROJ, IdentityTransform()):
        win = Window(-20, 7, 200, 150)
        x, y = sample_positions(t, win)
        e = _exact_positions(t, win)
        # rounding to 1/256 px, plus float32 arithmetic of the affine path (1e-4 px at these magnitudes)
        assert np.abs(x - e[..., 0]).max() <= 1 / 512 + 1e-4
        assert np.abs(y - e[..., 1]).max() <= 1 / 512 + 1e-4


@pytest.mark.parametrize("name", ["projective", "tps", "polynomial2"])
def test_warp_positions_vs_dense_exact(name: str) -> None:
    """A ramp image I(x, y) = x (y) warps to the sampled x (y) position: compare with the exact inverse."""
    t = {"projective": PROJ, "tps": _tps(), "polynomial2": _poly2()}[name]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    win = Window(0, 0, 330, 290)
    out, valid = warp_array(np.stack([xx, yy]), None, t, win)
    e = _exact_positions(t, win)
    err = np.sqrt((out[0] - e[..., 0]) ** 2 + (out[1] - e[..., 1]) ** 2)[valid]
    assert valid.mean() > 0.8
    assert err.max() < 0.1, err.max()
    if name == "projective":  # exact per pixel: only position rounding remains (1/32 px in OpenCV 4's remap)
        assert err.max() < 0.03


def test_lattice_step_follows_curvature() -> None:
    assert lattice_step(SIM) == 1 and lattice_step(PROJ) == 1
    rng = np.random.default_rng(2)
    opt = rng.uniform(0, 1000, size=(50, 2))
    flat = fit_transform("tps", opt, opt * 1.01 + 3.0)  # affine data: no curvature at all
    assert lattice_step(flat) == 32
    assert lattice_step(_tps()) < 32  # 3 px waves over 45 px need a finer lattice
    assert lattice_step(_tps()) == lattice_step(_tps())  # a function of the transform only


@pytest.mark.parametrize("name", ["similarity", "projective", "tps", "polynomial2"])
@pytest.mark.parametrize("bands", [1, 3])
def test_subwindows_byte_identical_to_whole(name: str, bands: int) -> None:
    t = {"similarity": SIM, "projective": PROJ, "tps": _tps(), "polynomial2": _poly2()}[name]
    img = _smooth_image(bands=bands)
    valid_src = np.ones((H, W), dtype=bool)
    valid_src[100:130, 50:200] = False  # a nodata hole
    win = Window(-7, 3, 333, 301)
    full, fv = warp_array(img, valid_src, t, win)
    assert fv.any() and not fv.all()
    parts = [
        Window(-7, 3, 167, 150),
        Window(160, 3, 166, 150),
        Window(-7, 153, 167, 151),
        Window(160, 153, 166, 151),
    ]
    for p in parts:
        need = optical_window_for(t, p).clip(W, H)
        assert need is not None
        sub = img[:, need.row_off : need.row_end, need.col_off : need.col_end]
        sv = valid_src[need.row_off : need.row_end, need.col_off : need.col_end]
        out, valid = warp_array(sub, sv, t, p, src_origin=(need.col_off, need.row_off))
        r0, c0 = p.row_off - win.row_off, p.col_off - win.col_off
        np.testing.assert_array_equal(out, full[:, r0 : r0 + p.height, c0 : c0 + p.width])
        np.testing.assert_array_equal(valid, fv[r0 : r0 + p.height, c0 : c0 + p.width])


def test_strips_and_source_cropping_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    img = _smooth_image(bands=3)
    win = Window(0, 0, 250, 230)
    ref = warp_array(img, None, SIM, win)
    monkeypatch.setattr(warp_mod, "_TILE_PIXELS", 1000)  # many strips
    monkeypatch.setattr(warp_mod, "_MAX_TILE_WIDTH", 96)  # and several columns of tiles
    monkeypatch.setattr(warp_mod, "_MAX_SRC_SIDE", 120)  # "large" source: cropped per strip
    out = warp_array(img, None, SIM, win)
    np.testing.assert_array_equal(out[0], ref[0])
    np.testing.assert_array_equal(out[1], ref[1])


def test_validity_follows_source_holes_exactly() -> None:
    """Valid iff invalid or outside source pixels carry less than 0.001 of the bilinear weight (brute force)."""
    img = _smooth_image()
    valid_src = np.random.default_rng(3).random((H, W)) > 0.02  # scattered invalid pixels
    win = Window(0, 0, 200, 200)
    _, valid = warp_array(img, valid_src, SIM, win)
    x, y = sample_positions(SIM, win)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    good_weight = np.zeros(x.shape)
    any_bad = np.zeros(x.shape, dtype=bool)
    for dy in (0, 1):
        for dx in (0, 1):
            weight = (x - x0 if dx else 1 - (x - x0)) * (y - y0 if dy else 1 - (y - y0))
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
            good = inside & valid_src[np.clip(yi, 0, H - 1), np.clip(xi, 0, W - 1)]
            good_weight += np.where(good, weight, 0.0)
            any_bad |= ~good & (weight > 0)
    expected = good_weight >= 0.999
    ambiguous = np.abs(good_weight - 0.999) < 1e-5  # float32 weights in OpenCV
    np.testing.assert_array_equal(valid[~ambiguous], expected[~ambiguous])
    assert (valid & any_bad).sum() < 0.002 * valid.size  # tolerated only for tiny weights
    assert (~valid & ~any_bad).sum() == 0  # never invalid without a reason


def test_invalid_source_values_do_not_leak() -> None:
    img = _smooth_image()
    img[0, 40:60, 40:60] = np.nan
    valid_src = np.isfinite(img[0])
    out, valid = warp_array(img, valid_src, IdentityTransform(), Window(0, 0, W, H))
    assert np.isfinite(out).all()
    assert not valid[40:60, 40:60].any() and valid[:30].all()
    np.testing.assert_array_equal(out[0][valid], img[0][valid])  # identity reproduces the valid pixels


def test_src_origin_shifts_the_source() -> None:
    img = _smooth_image()
    win = Window(10, 20, 120, 100)
    full, fv = warp_array(img, None, SIM, win)
    crop, cv = warp_array(img[:, 30:, 40:], None, SIM, win, src_origin=(40, 30))
    both = fv & cv
    assert both.sum() > 0.5 * both.size
    np.testing.assert_array_equal(crop[0][both], full[0][both])


def test_optical_window_covers_every_sample() -> None:
    for t in (SIM, PROJ, _tps(), _poly2()):
        win = Window(30, 40, 150, 120)
        ow = optical_window_for(t, win, margin=0)
        x, y = sample_positions(t, win)
        assert ow.col_off <= np.floor(x).min() and np.floor(x).max() + 1 <= ow.col_end - 1
        assert ow.row_off <= np.floor(y).min() and np.floor(y).max() + 1 <= ow.row_end - 1
        # and is tight (a few px of slack at most)
        assert ow.width - (x.max() - x.min()) < 6 and ow.height - (y.max() - y.min()) < 6
        assert optical_window_for(t, win, margin=3) == ow.pad(3)


def test_projective_window_beyond_the_horizon() -> None:
    h = ProjectiveTransform(np.linalg.inv(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.01, 0.0, 1.0]])))
    win = Window(-150, 0, 100, 10)  # w = 1 + 0.01 x <= 0 for x <= -100: half the window has no position
    out, valid = warp_array(_smooth_image(), None, h, win)
    assert not valid[:, :51].any() and (out[:, :, :51] == 0).all()
    ow = optical_window_for(h, win)
    assert ow.width > 0


def test_bad_inputs_and_empty_windows() -> None:
    img = _smooth_image()
    with pytest.raises(InputError, match=r"\(C, H, W\)"):
        warp_array(img[0], None, SIM, Window(0, 0, 10, 10))
    with pytest.raises(InputError, match="src_valid"):
        warp_array(img, np.ones((5, 5), bool), SIM, Window(0, 0, 10, 10))
    with pytest.raises(InputError, match="margin"):
        optical_window_for(SIM, Window(0, 0, 10, 10), margin=-1)
    out, valid = warp_array(img, None, SIM, Window(0, 0, 0, 12))
    assert out.shape == (1, 12, 0) and valid.shape == (12, 0)
    out, valid = warp_array(img.astype(np.uint8), None, SIM, Window(5000, 5000, 8, 8))  # far outside
    assert out.dtype == np.float32 and not valid.any() and (out == 0).all()


# ------------------------------------------------------------------------------------------- warp_optical


def _geotiff(path: Path, data: np.ndarray) -> Path:
    c, h, w = data.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=c,
        dtype=data.dtype.name,
        crs="EPSG:32615",
        transform=Affine(1.0, 0.0, 500000.0, 0.0, -1.0, 4500000.0),
    ) as ds:
        ds.write(data)
    return path


def test_warp_optical_reads_only_the_needed_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    data = (rng.random((3, 400, 500)) * 255).astype(np.uint8)
    opt = open_scene(_geotiff(tmp_path / "opt.tif", data), "optical")
    win = Window(120, 90, 64, 64)
    reads: list[Window] = []
    original = Scene.read

    def spy(self: Scene, window: Window, *, boundless: bool = True):  # type: ignore[no-untyped-def]
        reads.append(window)
        return original(self, window, boundless=boundless)

    monkeypatch.setattr(Scene, "read", spy)
    out, valid = warp_optical(opt, SIM, win, exact=True)
    assert reads == [optical_window_for(SIM, win)]
    assert reads[0].area < 0.05 * 400 * 500
    ref, ref_valid = warp_array(data.astype(np.float32), None, SIM, win)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(valid, ref_valid)
    fast, fast_valid = warp_optical(opt, SIM, win)  # the default: fast path, same read window
    assert reads[-1] == reads[0]
    r = reads[0]  # the fast path depends on the source origin (fixed-point positions): same read window
    sub = data[:, r.row_off : r.row_end, r.col_off : r.col_end].astype(np.float32)
    np.testing.assert_array_equal(
        fast, warp_array(sub, None, SIM, win, (r.col_off, r.row_off), exact=False)[0]
    )
    np.testing.assert_array_equal(fast_valid, ref_valid)
    # positions differ by at most 1/32 px: on noise (gradients up to 255 per px) at most 8 grey levels
    assert np.abs(fast - ref).max() <= 255 / 32 + 0.5 and np.abs(fast - ref).mean() < 1.0
    assert valid.all() and out.shape == (3, 64, 64)

    reads.clear()
    out, valid = warp_optical(opt, SIM, Window(5000, 5000, 32, 32))  # maps outside the optical image
    assert reads == [] and not valid.any() and (out == 0).all() and out.shape == (3, 32, 32)

    reads.clear()
    edge = Window(-40, -30, 64, 64)  # partly outside: only the inside part is read
    out, valid = warp_optical(opt, SIM, edge, exact=True)
    assert len(reads) == 1 and reads[0].col_off >= 0 and reads[0].row_off >= 0
    ref, ref_valid = warp_array(data.astype(np.float32), None, SIM, edge)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(valid, ref_valid)
    assert 0 < valid.mean() < 1


@pytest.mark.parametrize("name", ["similarity", "projective", "identity"])
def test_fast_path_positions_and_validity(name: str) -> None:
    """exact=False (warpAffine / warpPerspective): positions within 1/32 px of the exact inverse, validity
    within one pixel ring of the exact rule, deterministic for a window."""
    t = {"similarity": SIM, "projective": PROJ, "identity": IdentityTransform()}[name]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    win = Window(-20, 7, 330, 290)  # partly outside the source
    out, valid = warp_array(np.stack([xx, yy]), None, t, win, exact=False)
    e = _exact_positions(t, win)
    _, ref_valid = warp_array(np.stack([xx, yy]), None, t, win)
    both = valid & ref_valid
    err = np.sqrt((out[0] - e[..., 0]) ** 2 + (out[1] - e[..., 1]) ** 2)[both]
    assert both.mean() > 0.5
    assert err.max() < 1 / 32 + 0.01, err.max()
    # 8-bit mask warp: a pixel may differ from the exact rule only where the bilinear weight outside is tiny,
    # i.e. on the footprint's edge
    differ = valid != ref_valid
    assert differ.sum() <= 0.01 * differ.size
    assert (out[:, ~valid] == 0).all()
    again, again_valid = warp_array(np.stack([xx, yy]), None, t, win, exact=False)
    assert np.array_equal(out, again) and np.array_equal(valid, again_valid)


def test_fast_path_source_holes() -> None:
    img = _smooth_image()
    valid_src = np.random.default_rng(3).random((H, W)) > 0.02
    win = Window(0, 0, 200, 200)
    out, valid = warp_array(img, valid_src, SIM, win, exact=False)
    ref, ref_valid = warp_array(img, valid_src, SIM, win)
    # invalid where a hole carries >= ~0.002 of the weight (exact: 0.001): nearly the same pixels
    assert (valid != ref_valid).mean() < 0.01
    assert (valid & ~ref_valid).mean() < 0.005
    both = valid & ref_valid
    assert np.abs(out[0][both] - ref[0][both]).max() < 0.5  # smooth image, 1/32 px position steps
    assert (out[:, ~valid] == 0).all()


def test_fast_path_falls_back_beyond_the_horizon() -> None:
    h = ProjectiveTransform(np.linalg.inv(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.01, 0.0, 1.0]])))
    win = Window(-150, 0, 100, 10)
    fast = warp_array(_smooth_image(), None, h, win, exact=False)
    exact = warp_array(_smooth_image(), None, h, win)
    assert np.array_equal(fast[0], exact[0]) and np.array_equal(fast[1], exact[1])


def test_warp_optical_u8_matches_the_float_fast_path(tmp_path: Path) -> None:
    from saropt.registration.warp import warp_optical_u8

    rng = np.random.default_rng(5)
    data = cv2.GaussianBlur((rng.random((400, 500, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    data = np.ascontiguousarray(np.moveaxis(data, -1, 0))
    data[:, :50, :60] = 0  # a nodata corner
    path = _geotiff(tmp_path / "opt.tif", data)
    with rasterio.open(path, "r+") as ds:
        ds.nodata = 0
    opt = open_scene(path, "optical")
    for win in (Window(120, 90, 64, 64), Window(-40, -30, 96, 80), Window(0, 0, 200, 160)):
        res = warp_optical_u8(opt, SIM, win)
        assert res is not None
        img, valid = res
        ref, ref_valid = warp_optical(opt, SIM, win)
        np.testing.assert_array_equal(valid, ref_valid)
        ref8 = np.clip(np.moveaxis(ref, 0, -1) + 0.5, 0, 255).astype(np.uint8)
        assert img.dtype == np.uint8 and img.shape == (win.height, win.width, 3)
        assert np.abs(img.astype(int) - ref8.astype(int)).max() <= 1  # 8-bit interpolation rounds
        assert (img[~valid] == 0).all()
    assert 0 < valid.mean() < 1
    assert (
        warp_optical_u8(opt, _tps(), Window(120, 90, 64, 64)) is None
    )  # non-linear: the caller warps floats
    f32 = open_scene(_geotiff(tmp_path / "f.tif", data.astype(np.float32)), "optical")
    assert warp_optical_u8(f32, SIM, Window(120, 90, 64, 64)) is None


def test_native_read_keeps_the_file_type(tmp_path: Path) -> None:
    data = (np.arange(3 * 40 * 50) % 251).astype(np.uint8).reshape(3, 40, 50)
    scene = open_scene(_geotiff(tmp_path / "n.tif", data), "optical")
    win = Window(-5, -5, 30, 20)  # partly outside
    d8, v8 = scene.read(win, native=True)
    d32, v32 = scene.read(win)
    assert d8.dtype == np.uint8 and d32.dtype == np.float32
    np.testing.assert_array_equal(v8, v32)
    np.testing.assert_array_equal(d8.astype(np.float32), d32)
