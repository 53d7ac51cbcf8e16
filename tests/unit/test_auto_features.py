"""Structural features for SAR-optical matching: orientation channels, speckle-robust gradients, orientation fields."""

from __future__ import annotations

import numpy as np
import pytest

from saropt.errors import InputError
from saropt.registration.auto.features import (
    image_gradients,
    orientation_field,
    oriented_channels,
    structural_features,
)


def _edge(vertical: bool, size: int = 64, lo: float = 20.0, hi: float = 200.0) -> np.ndarray:
    img = np.full((size, size), lo, np.float32)
    if vertical:
        img[:, size // 2 :] = hi
    else:
        img[size // 2 :, :] = hi
    return img


def test_channel_of_the_edge_normal_wins() -> None:
    # A vertical edge has its gradient along x: channel 0 (0 degrees); a horizontal edge along y: channel C/2.
    c = 8
    fv, _ = structural_features(_edge(True), None, "gaussian", 1.0, c, 1.0)
    fh, _ = structural_features(_edge(False), None, "gaussian", 1.0, c, 1.0)
    assert int(np.argmax(fv[:, 32, 31:33].mean(axis=1))) == 0
    assert int(np.argmax(fh[:, 31:33, 32].mean(axis=1))) == c // 2


def test_features_ignore_contrast_sign() -> None:
    # SAR and optical often show the same edge with opposite contrast: the features must not care.
    img = _edge(True) + np.linspace(0, 30, 64, dtype=np.float32)[None, :]
    f1, _ = structural_features(img, None, "gaussian", 1.0, 9, 1.0)
    f2, _ = structural_features(255.0 - img, None, "gaussian", 1.0, 9, 1.0)
    np.testing.assert_allclose(f1, f2, atol=1e-5)


def test_ratio_operator_is_invariant_to_the_speckle_level() -> None:
    # Multiplying SAR intensities by a constant (calibration, look count) leaves ratio gradients unchanged.
    rng = np.random.default_rng(0)
    img = (_edge(True) * rng.gamma(4.0, 0.25, (64, 64))).astype(np.float32)
    f1, _ = structural_features(img, None, "ratio", 1.5, 9, 1.0)
    f2, _ = structural_features(7.3 * img, None, "ratio", 1.5, 9, 1.0)
    np.testing.assert_allclose(f1, f2, atol=1e-4)


def test_ratio_gradient_sign_and_scale() -> None:
    # gx = log(right mean / left mean): a step from 10 to 40 gives log(4) in the middle of the edge.
    img = np.where(np.arange(64)[None, :] >= 32, 40.0, 10.0).astype(np.float32).repeat(64, axis=0)
    gx, gy = image_gradients(img, "ratio", 1.0)
    eps = 0.05 * float(np.median(img))
    assert gx[32, 32] == pytest.approx(np.log((40 + eps) / (10 + eps)), rel=1e-4)
    assert abs(float(gy[32, 32])) < 1e-5


def test_orientation_field_phase_is_twice_the_gradient_direction() -> None:
    zv, _ = orientation_field(_edge(True), None, "gaussian", 1.0)
    zh, _ = orientation_field(_edge(False), None, "gaussian", 1.0)
    zi, _ = orientation_field(255.0 - _edge(True), None, "gaussian", 1.0)
    assert np.angle(zv[32, 32]) == pytest.approx(0.0, abs=1e-3)
    assert abs(np.angle(zh[32, 32])) == pytest.approx(np.pi, abs=1e-3)
    assert np.angle(zi[32, 32]) == pytest.approx(0.0, abs=1e-3)
    assert 0.9 < abs(zv[32, 32]) <= 1.0 + 1e-6  # coherent edge: modulus near 1
    flat, _ = orientation_field(np.full((32, 32), 5.0, np.float32), None, "gaussian", 1.0)
    assert np.abs(flat).max() < 1e-3


def test_invalid_pixels_are_zeroed_and_do_not_make_edges() -> None:
    img = np.full((64, 64), 100.0, np.float32)
    valid = np.ones((64, 64), bool)
    img[:, :20] = 0.0  # nodata fill: a strong artificial edge
    valid[:, :20] = False
    f, fv = structural_features(img, valid, "ratio", 1.5, 9, 1.0)
    assert not fv[:, :20].any()
    assert np.abs(f[:, ~fv]).max() == 0.0
    assert np.abs(f[:, fv]).max() < 1e-3  # a flat valid area stays flat: the fill made no edge


def test_unknown_operator_and_too_few_channels() -> None:
    with pytest.raises(InputError, match="gradient operator"):
        image_gradients(np.zeros((8, 8), np.float32), "sobel", 1.0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="n_orientations"):
        oriented_channels(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32), 1)
