"""Tests of the picture helpers (saropt.viz.overview)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saropt.errors import InputError
from saropt.io.windows import Window
from saropt.viz import (
    checkerboard,
    draw_tiepoints,
    draw_windows,
    overview_image,
    patch_mosaic,
    residual_colour,
    save_png,
    to_rgb,
)
from saropt.viz.overview import KEEP_COLOUR, REJECT_COLOUR


def test_to_rgb_layouts_and_errors() -> None:
    g = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = to_rgb(g)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert (out[..., 0] == g).all() and (out[..., 2] == g).all()
    assert to_rgb(g[..., None]).shape == (3, 4, 3)
    rgb = np.zeros((3, 4, 3), np.uint8)
    assert to_rgb(rgb).shape == (3, 4, 3)
    with pytest.raises(InputError):
        to_rgb(g.astype(np.float32))
    with pytest.raises(InputError):
        to_rgb(np.zeros((3, 4, 2), np.uint8))


def test_checkerboard_is_exact() -> None:
    h, w, tile = 100, 130, 16
    a = np.full((h, w), 10, np.uint8)
    b = np.zeros((h, w, 3), np.uint8)
    b[..., 1] = 200
    out = checkerboard(a, b, tile)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    rows, cols = np.mgrid[0:h, 0:w]
    use_b = ((rows // tile + cols // tile) % 2) == 1
    expected = np.where(use_b[..., None], b, to_rgb(a))
    np.testing.assert_array_equal(out, expected)
    assert tuple(out[0, 0]) == (10, 10, 10) and tuple(out[0, tile]) == (0, 200, 0)
    assert tuple(out[tile, tile]) == (10, 10, 10) and tuple(out[tile - 1, tile - 1]) == (10, 10, 10)
    with pytest.raises(InputError):
        checkerboard(a, b[:50], tile)
    with pytest.raises(InputError):
        checkerboard(a, a, 0)


def test_residual_colour_ramp() -> None:
    c = residual_colour(np.array([0.0, 2.5, 5.0, 50.0]), 5.0)
    assert c.shape == (4, 3) and c.dtype == np.uint8
    g, y, r, r2 = c.astype(int)
    assert g[1] > g[0] and g[1] > g[2]  # green
    assert y[0] > 200 and y[1] > 200 and y[2] < 60  # yellow
    assert r[0] > 200 and r[1] < 60 and (r == r2).all()  # red, saturated beyond the maximum


def test_draw_tiepoints_colours_outliers_and_legend() -> None:
    img = np.zeros((200, 260), np.uint8)
    xy = np.array([[40.0, 40.0], [120.0, 60.0], [200.0, 80.0]])
    out = draw_tiepoints(img, xy, residuals=np.array([0.0, 5.0, 1.0]), inliers=np.array([True, True, False]))
    assert out.shape == (200, 260, 3) and out.dtype == np.uint8
    assert img.max() == 0  # input untouched
    ring0 = out[35:46, 35:46].reshape(-1, 3).astype(int)
    ring1 = out[55:66, 115:126].reshape(-1, 3).astype(int)
    assert (ring0[:, 1] - ring0[:, 0]).max() > 100  # low residual: green
    assert (ring1[:, 0] - ring1[:, 1]).max() > 100  # residual at the maximum: red
    assert out[40, 40].max() == 0 and out[60, 120].max() == 0  # circles are hollow
    cross = out[80, 200].astype(int)
    assert cross[0] > 150 and cross[1] < 80  # outlier: red cross through the point
    assert out[158, 20].max() > 0  # the legend colour bar, bottom-left
    plain = draw_tiepoints(img, xy)
    assert plain[158, 20].max() == 0  # no legend without residuals
    with pytest.raises(InputError):
        draw_tiepoints(img, xy, residuals=np.zeros(2))


def test_draw_windows_keep_reject_and_scale() -> None:
    img = np.zeros((100, 120, 3), np.uint8)
    wins = [Window(10, 10, 30, 20), Window(50, 40, 40, 40)]
    out = draw_windows(img, wins, keep=[True, False])
    assert tuple(out[10, 10]) == KEEP_COLOUR and tuple(out[29, 39]) == KEEP_COLOUR
    assert out[20, 20].max() == 0  # interior untouched
    assert tuple(out[40, 50]) == REJECT_COLOUR and tuple(out[79, 89]) == REJECT_COLOUR
    assert out[30, 40].max() == 0  # one past the window's last pixel
    half = draw_windows(np.zeros((50, 60), np.uint8), wins[:1], scale=0.5)
    assert tuple(half[5, 5]) == KEEP_COLOUR and tuple(half[14, 19]) == KEEP_COLOUR and half[15, 20].max() == 0
    labelled = draw_windows(img, wins, keep=[True, False], labels=["a", "sea"])
    assert (labelled != out).any()
    with pytest.raises(InputError):
        draw_windows(img, wins, keep=[True])


def test_overview_image_scales_everything() -> None:
    rng = np.random.default_rng(0)
    sar = rng.integers(0, 255, (300, 500), dtype=np.uint8)
    opt = rng.integers(0, 255, (300, 500, 3), dtype=np.uint8)
    out = overview_image(sar, opt, tile=50, max_size=250)
    assert out.shape == (150, 250, 3) and out.dtype == np.uint8
    titled = overview_image(
        sar,
        opt,
        tile=50,
        max_size=250,
        title="scene 1: RMSE 0.4 px",
        tiepoints_xy=np.array([[100.0, 100.0], [400.0, 250.0]]),
        residuals=np.array([0.2, 9.0]),
        inliers=np.array([True, False]),
        windows=[Window(0, 0, 256, 256)],
        window_keep=[False],
    )
    assert titled.shape[1] == 250 and titled.shape[0] > 150
    assert (titled[:10] == 32).mean() > 0.5  # the title bar is dark grey
    full = overview_image(sar, opt, tile=50, max_size=1000)
    assert full.shape == (300, 500, 3)
    np.testing.assert_array_equal(full, checkerboard(sar, opt, 50))
    with pytest.raises(InputError):
        overview_image(sar, opt[:100])


def test_patch_mosaic_layout() -> None:
    pairs = [(np.full((64, 64), 40 * k, np.uint8), np.full((48, 48, 3), 200, np.uint8)) for k in range(5)]
    out = patch_mosaic(pairs, [f"#{k} nodata" for k in range(5)], ncols=2, cell=32)
    gap, label_h = 4, 18
    assert out.shape == (gap + 3 * (32 + label_h + gap), gap + 2 * (3 * 32 + 4 + gap), 3)
    # second pair (k=1): SAR thumbnail value 40, optical 200, checkerboard of both
    y0, x0 = gap, gap + (3 * 32 + 4 + gap)
    assert tuple(out[y0 + 5, x0 + 5]) == (40, 40, 40)
    assert tuple(out[y0 + 5, x0 + 34 + 5]) == (200, 200, 200)
    cb = out[y0 : y0 + 32, x0 + 68 : x0 + 100]
    assert tuple(cb[0, 0]) == (40, 40, 40) and tuple(cb[0, 8]) == (200, 200, 200)
    assert patch_mosaic(pairs[:1], ncols=4, cell=16).shape == (4 + 16 + 4, 4 + 3 * 16 + 4 + 4, 3)
    with pytest.raises(InputError):
        patch_mosaic([])
    with pytest.raises(InputError):
        patch_mosaic(pairs, ["only one"])


def test_save_png_round_trip(tmp_path: Path) -> None:
    img = np.zeros((20, 30, 3), np.uint8)
    img[:, :10] = (255, 0, 0)
    img[:, 10:20] = (0, 255, 0)
    img[:, 20:] = (0, 0, 255)
    path = tmp_path / "rgb.png"
    save_png(path, img)
    back = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(back, img)  # red stays red on disk
    grey = np.arange(600, dtype=np.uint16).reshape(20, 30).astype(np.uint8)
    save_png(tmp_path / "grey.png", grey)
    with Image.open(tmp_path / "grey.png") as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), grey)
    save_png(path, img[::-1].copy())  # overwrite in place
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), img[::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grey.png", "rgb.png"]  # no temporary files left
    with pytest.raises(InputError):
        save_png(tmp_path / "x.jpg", img)
    with pytest.raises(InputError):
        save_png(tmp_path / "x.png", img.astype(np.float32))
