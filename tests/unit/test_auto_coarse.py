"""Coarse rotation/scale/translation search on low-resolution SAR-like vs optical-like images."""

from __future__ import annotations

import numpy as np
import pytest

from saropt.errors import InputError
from saropt.registration.auto.coarse import CoarseParams, coarse_search, rescale_matrix, similarity_matrix
from saropt.registration.auto.evaluate import transform_rmse
from saropt.registration.auto.sources import decimate
from tests.unit.autoutil import make_pair, similarity


@pytest.mark.parametrize(
    ("angle", "scale"),
    [(90.0, 1.0), (-150.0, 1.0), (30.0, 0.8)],
)
def test_coarse_search_finds_rotation_scale_and_shift(angle: float, scale: float) -> None:
    n_opt = round(256 / scale)
    truth = similarity(angle, scale, ((n_opt - 1) / 2, (n_opt - 1) / 2), (131.0, 122.0))
    pair = make_pair(truth, opt_size=(n_opt, n_opt), seed=2)
    f = 2.0
    s, sv = decimate(pair.sar, np.ones(pair.sar.shape, bool), f)
    o, ov = decimate(pair.opt.astype(np.float32), np.ones(pair.opt.shape, bool), f)
    params = CoarseParams(
        angles_deg=tuple(float(a) for a in range(-180, 180, 10)),
        scales=(scale / 1.1, scale, scale * 1.1) if scale != 1.0 else (0.9, 1.0, 1.1),
    )
    res = coarse_search(s, sv, o, ov, params)
    d_angle = (res.best.angle_deg - angle + 180) % 360 - 180
    assert abs(d_angle) <= 2.5
    assert res.best.scale == pytest.approx(scale, rel=0.06)
    full = rescale_matrix(res.best.matrix, pair.opt.shape[1] / o.shape[1], pair.sar.shape[1] / s.shape[1])
    assert transform_rmse(full, truth, pair.sar.shape) < 6.0  # a few full-resolution pixels: a good start
    assert res.distinctiveness > 1.2


def test_rescale_matrix_keeps_pixel_centres() -> None:
    # A 2x decimation of both images: the low-resolution identity is the full-resolution identity.
    np.testing.assert_allclose(rescale_matrix(np.eye(3), 2.0, 2.0), np.eye(3), atol=1e-12)
    # Low-res pixel 0 covers full-res pixels 0..3 (f = 4): its centre is 1.5.
    m = rescale_matrix(np.eye(3), 1.0, 4.0)
    np.testing.assert_allclose(m @ [0.0, 0.0, 1.0], [1.5, 1.5, 1.0])
    r = similarity_matrix(90.0, 1.0, (10.0, 10.0))
    np.testing.assert_allclose(r @ [11.0, 10.0, 1.0], [10.0, 9.0, 1.0], atol=1e-12)  # +x turns to -y (CCW)


def test_empty_grid_is_an_input_error() -> None:
    z = np.zeros((64, 64), np.float32)
    v = np.ones((64, 64), bool)
    with pytest.raises(InputError):
        coarse_search(z, v, z, v, CoarseParams(angles_deg=(), scales=(1.0,)))
