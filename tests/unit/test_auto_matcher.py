"""FFT template matching of feature channels: exact NCC, sub-pixel peaks, reliability."""

from __future__ import annotations

import numpy as np
import pytest

from saropt.registration.auto.matcher import MatchParams, correlation_surfaces, match_points


def _smooth_features(rng: np.random.Generator, c: int, h: int, w: int) -> np.ndarray:
    """Band-limited random channels (so that Fourier shifts are exact sub-pixel translations)."""
    f = rng.standard_normal((c, h, w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    lp = np.exp(-((fx**2 + fy**2) / (2 * 0.06**2)))
    return np.real(np.fft.ifft2(np.fft.fft2(f) * lp)).astype(np.float32)


def _fourier_shift(f: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Content moved by (dx, dy): out(x, y) = f(x - dx, y - dy)."""
    h, w = f.shape[-2:]
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    ph = np.exp(-2j * np.pi * (fx * dx + fy * dy))
    return np.real(np.fft.ifft2(np.fft.fft2(f) * ph)).astype(np.float32)


def test_surfaces_equal_brute_force_zero_mean_ncc() -> None:
    rng = np.random.default_rng(1)
    t, r, c = 8, 3, 3
    temps = rng.random((2, c, t, t)).astype(np.float32)
    wins = rng.random((2, c, t + 2 * r, t + 2 * r)).astype(np.float32)
    surf = correlation_surfaces(temps, wins)
    assert surf.shape == (2, 2 * r + 1, 2 * r + 1)
    for n in range(2):
        a = temps[n] - temps[n].mean(axis=(1, 2), keepdims=True)
        for dy in range(2 * r + 1):
            for dx in range(2 * r + 1):
                b = wins[n][:, dy : dy + t, dx : dx + t]
                b = b - b.mean(axis=(1, 2), keepdims=True)
                ref = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
                assert surf[n, dy, dx] == pytest.approx(ref, abs=1e-4)


def test_subpixel_shift_is_recovered() -> None:
    rng = np.random.default_rng(2)
    ref = _smooth_features(rng, 4, 128, 128)
    dx, dy = -3.3, 2.6
    tgt = _fourier_shift(ref, dx, dy)
    valid = np.ones((128, 128), bool)
    pts = np.array([[40, 40], [64, 70], [88, 50], [60, 90]])
    res = match_points(ref, valid, tgt, valid, pts, MatchParams(template_size=32, search_radius=6))
    assert res.usable.all()
    err = np.hypot(res.offset[:, 0] - dx, res.offset[:, 1] - dy)
    assert err.max() < 0.15
    assert (res.reliability > 0.9).all()
    assert (res.peak > 0.95).all()


def test_unrelated_features_are_unreliable() -> None:
    rng = np.random.default_rng(3)
    a = _smooth_features(rng, 4, 128, 128)
    b = _smooth_features(rng, 4, 128, 128)
    valid = np.ones((128, 128), bool)
    pts = np.stack(np.meshgrid(np.arange(32, 100, 12), np.arange(32, 100, 12)), axis=-1).reshape(-1, 2)
    res = match_points(a, valid, b, valid, pts, MatchParams(template_size=32, search_radius=6))
    assert np.mean(res.reliability >= 0.5) < 0.1


def test_shift_beyond_the_radius_is_not_usable_and_invalid_windows_are_skipped() -> None:
    rng = np.random.default_rng(4)
    ref = _smooth_features(rng, 4, 128, 128)
    tgt = _fourier_shift(ref, 12.0, 0.0)
    valid = np.ones((128, 128), bool)
    res = match_points(
        ref, valid, tgt, valid, np.array([[64, 64]]), MatchParams(template_size=32, search_radius=5)
    )
    assert not res.usable[0] and res.reliability[0] == 0.0
    half_valid = valid.copy()
    half_valid[:, :70] = False
    res2 = match_points(ref, half_valid, ref, valid, np.array([[50, 64], [-5, 3]]), MatchParams(32, 5))
    assert not res2.usable.any()
    assert np.isnan(res2.offset).all()
