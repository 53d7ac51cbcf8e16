"""Transform models: exact recovery of known warps, inverses, serialisation and degenerate input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saropt.errors import InputError, TiePointError
from saropt.registration.transforms import (
    MODELS,
    AffineTransform,
    IdentityTransform,
    LinearTransform,
    PolynomialTransform,
    ProjectiveTransform,
    SimilarityTransform,
    ThinPlateSplineTransform,
    fit_transform,
    transform_from_dict,
)

RNG = np.random.default_rng(12345)
OPT = RNG.uniform(0, 1000, size=(60, 2))  # optical tie points spread over a 1000 px image
INNER = RNG.uniform(100, 900, size=(500, 2))  # held-out points well inside the hull

SIM = SimilarityTransform.from_params(scale=1.1, angle_deg=10.0, tx=35.5, ty=-12.25)
AFF = AffineTransform([[1.05, 0.12, 30.0], [-0.07, 0.93, -20.0], [0.0, 0.0, 1.0]])
PROJ = ProjectiveTransform([[1.02, 0.05, 12.0], [-0.03, 0.98, -7.0], [2e-5, -3e-5, 1.0]])


def _poly_truth(xy: np.ndarray) -> np.ndarray:
    """A quadratic optical -> SAR map (inside the polynomial2 model)."""
    x, y = xy[:, 0], xy[:, 1]
    return np.column_stack(
        [
            3.0 + 1.01 * x + 0.02 * y + 2e-5 * x * x - 1e-5 * x * y + 3e-5 * y * y,
            -4.0 - 0.01 * x + 0.99 * y - 1e-5 * x * x + 2e-5 * x * y + 1e-5 * y * y,
        ]
    )


def _wavy_truth(xy: np.ndarray) -> np.ndarray:
    """A smooth non-polynomial optical -> SAR map (a few px of waviness over 1000 px)."""
    x, y = xy[:, 0], xy[:, 1]
    return np.column_stack(
        [
            0.98 * x + 0.03 * y + 5.0 + 2.0 * np.sin(x / 160.0),
            0.01 * x + 1.02 * y - 3.0 + 1.5 * np.cos(y / 190.0),
        ]
    )


def test_registry_and_min_points() -> None:
    assert list(MODELS) == ["identity", "similarity", "affine", "projective", "polynomial2", "tps"]
    assert {k: v.min_points for k, v in MODELS.items()} == {
        "identity": 0,
        "similarity": 2,
        "affine": 3,
        "projective": 4,
        "polynomial2": 6,
        "tps": 3,
    }
    assert all(cls.name == name for name, cls in MODELS.items())


@pytest.mark.parametrize("truth", [SIM, AFF, PROJ], ids=["similarity", "affine", "projective"])
def test_linear_models_recover_known_transform(truth: LinearTransform) -> None:
    fitted = fit_transform(truth.name, OPT, truth.forward(OPT))
    assert type(fitted) is type(truth)
    np.testing.assert_allclose(fitted.forward(INNER), truth.forward(INNER), rtol=0, atol=1e-6)
    np.testing.assert_allclose(fitted.matrix, truth.matrix, rtol=1e-9, atol=1e-9)


def test_identity() -> None:
    t = fit_transform("identity", OPT, OPT + 5.0)  # nothing is fitted
    assert isinstance(t, IdentityTransform)
    np.testing.assert_array_equal(t.forward(OPT), OPT)
    np.testing.assert_array_equal(t.inverse(OPT), OPT)
    np.testing.assert_array_equal(t.matrix, np.eye(3))


def test_polynomial2_recovers_quadratic_forward() -> None:
    t = fit_transform("polynomial2", OPT, _poly_truth(OPT))
    assert isinstance(t, PolynomialTransform)
    np.testing.assert_allclose(t.forward(INNER), _poly_truth(INNER), rtol=0, atol=1e-6)
    assert t.matrix is None


def test_tps_interpolates_points_exactly_and_reproduces_affine() -> None:
    sar = _wavy_truth(OPT)
    t = fit_transform("tps", OPT, sar)
    assert isinstance(t, ThinPlateSplineTransform)
    np.testing.assert_allclose(t.forward(OPT), sar, rtol=0, atol=1e-6)
    np.testing.assert_allclose(t.inverse(sar), OPT, rtol=0, atol=1e-6)
    # an affine map lies in the spline's null space: recovered everywhere, not only at the points
    a = fit_transform("tps", OPT, AFF.forward(OPT))
    np.testing.assert_allclose(a.forward(INNER), AFF.forward(INNER), rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.inverse(AFF.forward(INNER)), INNER, rtol=0, atol=1e-6)


def test_tps_smoothing_trades_exactness_for_smoothness() -> None:
    noisy = _wavy_truth(OPT) + RNG.normal(0, 0.5, size=OPT.shape)
    exact = ThinPlateSplineTransform.fit(OPT, noisy)
    smooth = ThinPlateSplineTransform.fit(OPT, noisy, smoothing=0.01)
    assert np.abs(exact.forward(OPT) - noisy).max() < 1e-6
    assert np.abs(smooth.forward(OPT) - noisy).max() > 0.05
    err_exact = np.abs(exact.forward(INNER) - _wavy_truth(INNER)).mean()
    err_smooth = np.abs(smooth.forward(INNER) - _wavy_truth(INNER)).mean()
    assert err_smooth < err_exact
    with pytest.raises(InputError, match="smoothing"):
        ThinPlateSplineTransform.fit(OPT, noisy, smoothing=-1.0)


@pytest.mark.parametrize("model", ["identity", "similarity", "affine", "projective"])
def test_linear_inverse_is_exact(model: str) -> None:
    truth = {"identity": IdentityTransform(), "similarity": SIM, "affine": AFF, "projective": PROJ}[model]
    t = fit_transform(model, OPT, truth.forward(OPT))
    np.testing.assert_allclose(t.inverse(t.forward(INNER)), INNER, rtol=0, atol=1e-9)
    np.testing.assert_allclose(t.forward(t.inverse(INNER)), INNER, rtol=0, atol=1e-9)


@pytest.mark.parametrize("model", ["polynomial2", "tps"])
def test_nonlinear_inverse_consistent_inside_hull(model: str) -> None:
    t = fit_transform(model, OPT, _wavy_truth(OPT) if model == "tps" else _poly_truth(OPT))
    back = t.inverse(t.forward(INNER))
    bound = 1e-6 if model == "polynomial2" else 0.05  # polynomial2 polishes its inverse with Newton steps
    assert np.sqrt(((back - INNER) ** 2).sum(axis=1)).max() < bound


@pytest.mark.parametrize("model", list(MODELS))
def test_to_dict_round_trip_is_exact(model: str) -> None:
    sar = {"identity": OPT, "polynomial2": _poly_truth(OPT), "tps": _wavy_truth(OPT)}.get(
        model, PROJ.forward(OPT)
    )
    t = fit_transform(model, OPT, sar)
    d = json.loads(json.dumps(t.to_dict(), allow_nan=False))
    back = transform_from_dict(d)
    assert type(back) is type(t)
    np.testing.assert_array_equal(back.forward(INNER), t.forward(INNER))
    np.testing.assert_array_equal(back.inverse(INNER), t.inverse(INNER))


def test_from_dict_errors() -> None:
    with pytest.raises(InputError, match="model"):
        transform_from_dict({"matrix": np.eye(3).tolist()})
    with pytest.raises(InputError, match="unknown transform model 'warp9'"):
        transform_from_dict({"model": "warp9"})
    with pytest.raises(InputError, match="last row"):
        transform_from_dict({"model": "affine", "matrix": PROJ.matrix.tolist()})


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(InputError) as exc:
        fit_transform("homography", OPT, OPT)
    msg = str(exc.value)
    assert "homography" in msg
    assert all(name in msg for name in MODELS)


@pytest.mark.parametrize("model", ["similarity", "affine", "projective", "polynomial2", "tps"])
def test_too_few_points(model: str) -> None:
    k = MODELS[model].min_points
    with pytest.raises(TiePointError, match=f"^{model} needs at least {k} tie points, got {k - 1}$"):
        fit_transform(model, OPT[: k - 1], OPT[: k - 1] + 1.0)


@pytest.mark.parametrize("model", ["affine", "polynomial2", "tps"])
def test_collinear_points_rejected(model: str) -> None:
    t = np.linspace(0, 500, 12)
    line = np.column_stack([t, 0.5 * t + 3.0])
    with pytest.raises(TiePointError, match=f"{model} cannot be fitted from these 12 tie points.*collinear"):
        fit_transform(model, line, line + 2.0)


def test_projective_three_collinear_of_four() -> None:
    opt = np.array([[0.0, 0.0], [50.0, 50.0], [100.0, 100.0], [0.0, 100.0]])
    with pytest.raises(TiePointError, match="3 of them are collinear"):
        fit_transform("projective", opt, opt * 1.1)


def test_polynomial2_points_on_a_conic_are_degenerate() -> None:
    a = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    circle = np.column_stack([500 + 300 * np.cos(a), 500 + 300 * np.sin(a)])
    with pytest.raises(TiePointError, match="polynomial2 cannot be fitted.*conic"):
        fit_transform("polynomial2", circle, circle + 1.0)


@pytest.mark.parametrize("model", ["similarity", "affine", "projective", "tps"])
def test_duplicates_counted(model: str) -> None:
    k = MODELS[model].min_points
    pts = np.repeat(OPT[: k - 1], 3, axis=0)  # 3 copies each: enough rows, too few distinct points
    with pytest.raises(
        TiePointError, match=f"{model} needs at least {k} distinct tie points, got {k - 1} distinct"
    ):
        fit_transform(model, pts, pts + 1.0)


def test_tps_duplicates_need_smoothing() -> None:
    opt = np.vstack([OPT[:10], OPT[:1]])
    with pytest.raises(TiePointError, match="tps needs distinct tie points: 1 of 11 are duplicates"):
        fit_transform("tps", opt, opt + 1.0)
    t = fit_transform("tps", opt, opt + 1.0, smoothing=1e-3)
    np.testing.assert_allclose(t.forward(INNER), INNER + 1.0, atol=1e-6)


def test_weights_zero_ignores_a_point() -> None:
    sar = AFF.forward(OPT)
    sar[0] += 50.0
    w = np.ones(len(OPT))
    w[0] = 0.0
    t = fit_transform("affine", OPT, sar, weights=w)
    np.testing.assert_allclose(t.forward(INNER), AFF.forward(INNER), atol=1e-6)
    with pytest.raises(InputError, match="weights"):
        fit_transform("affine", OPT, sar, weights=-w)
    with pytest.raises(InputError, match="one value per tie point"):
        fit_transform("affine", OPT, sar, weights=w[:5])


def test_bad_shapes_and_options() -> None:
    with pytest.raises(InputError, match=r"\(N, 2\)"):
        fit_transform("affine", np.zeros((5, 3)), np.zeros((5, 3)))
    with pytest.raises(TiePointError, match="5 optical points but 4 SAR points"):
        fit_transform("affine", OPT[:5], OPT[:4])
    with pytest.raises(InputError, match="does not take the options"):
        fit_transform("affine", OPT, OPT, smoothing=1.0)


def test_linear_constructors_validate() -> None:
    with pytest.raises(InputError, match="singular"):
        AffineTransform([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(InputError, match="similarity matrix"):
        SimilarityTransform(AFF.matrix)
    with pytest.raises(InputError, match="identity"):
        IdentityTransform(SIM.matrix)
    assert SIM.scale == pytest.approx(1.1)
    assert SIM.angle_deg == pytest.approx(10.0)
    # a 2x3 matrix (OpenCV style) is accepted
    np.testing.assert_array_equal(AffineTransform(AFF.matrix[:2]).matrix, AFF.matrix)


def test_similarity_orientation_convention() -> None:
    # a positive angle rotates +x towards +y (down on screen: clockwise as displayed)
    t = SimilarityTransform.from_params(1.0, 90.0, 0.0, 0.0)
    np.testing.assert_allclose(t.forward(np.array([[1.0, 0.0]])), [[0.0, 1.0]], atol=1e-12)


def test_projective_horizon_maps_to_nan() -> None:
    h = ProjectiveTransform([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.01, 0.0, 1.0]])
    out = h.forward(np.array([[-100.0, 5.0], [10.0, 5.0]]))
    assert np.isnan(out[0]).all()
    np.testing.assert_allclose(out[1], [10.0 / 1.1, 5.0 / 1.1])


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(0.3, 3.0),
    angle=st.floats(-180.0, 180.0),
    shear=st.floats(-0.3, 0.3),
    tx=st.floats(-5000.0, 5000.0),
    ty=st.floats(-5000.0, 5000.0),
    offset=st.floats(0.0, 30000.0),
)
def test_affine_recovery_property(
    scale: float, angle: float, shear: float, tx: float, ty: float, offset: float
) -> None:
    """Far-off image coordinates (large offsets) must not hurt conditioning: points are normalised."""
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    m = np.array([[scale * c, -scale * s + shear, tx], [scale * s, scale * c, ty], [0.0, 0.0, 1.0]])
    truth = AffineTransform(m)
    opt = OPT[:10] + offset
    t = fit_transform("affine", opt, truth.forward(opt))
    np.testing.assert_allclose(t.forward(INNER + offset), truth.forward(INNER + offset), rtol=0, atol=1e-6)
