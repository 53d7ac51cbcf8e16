"""fit_registration: noise statistics, leave-one-out, RANSAC outlier flags, errors and serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from saropt.errors import InputError, TiePointError
from saropt.io.tiepoints import TiePoints
from saropt.registration.fit import (
    Registration,
    consensus_model,
    fit_registration,
    identity_registration,
    loo_residuals,
    registration_from_dict,
)
from saropt.registration.transforms import (
    AffineTransform,
    ProjectiveTransform,
    SimilarityTransform,
    fit_transform,
)

AFF = AffineTransform([[1.05, 0.12, 30.0], [-0.07, 0.93, -20.0], [0.0, 0.0, 1.0]])
PROJ = ProjectiveTransform([[1.02, 0.05, 12.0], [-0.03, 0.98, -7.0], [2e-5, -3e-5, 1.0]])
SIM = SimilarityTransform.from_params(0.9, -25.0, 100.0, 40.0)


def _wavy(xy: np.ndarray) -> np.ndarray:
    x, y = xy[:, 0], xy[:, 1]
    return np.column_stack(
        [
            0.98 * x + 0.03 * y + 5.0 + 2.0 * np.sin(x / 160.0),
            0.01 * x + 1.02 * y - 3.0 + 1.5 * np.cos(y / 190.0),
        ]
    )


def _quadratic(xy: np.ndarray) -> np.ndarray:
    x, y = xy[:, 0], xy[:, 1]
    return np.column_stack(
        [3.0 + 1.01 * x + 0.02 * y + 2e-5 * x * x - 1e-5 * x * y, -4.0 - 0.01 * x + 0.99 * y + 2e-5 * x * y]
    )


def _noisy_points(n: int, truth, sigma_2d: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` optical points over 1000 px and their SAR positions plus isotropic noise of 2-D RMS ``sigma_2d``."""
    rng = np.random.default_rng(seed)
    opt = rng.uniform(0, 1000, size=(n, 2))
    sar = truth(opt) + rng.normal(0, sigma_2d / np.sqrt(2), size=(n, 2))
    return opt, sar


def _with_outliers(sar: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Move a fraction of the points by 15-150 px in a random direction (gross outliers)."""
    rng = np.random.default_rng(seed)
    n = len(sar)
    out = np.zeros(n, dtype=bool)
    out[rng.choice(n, size=round(frac * n), replace=False)] = True
    ang = rng.uniform(0, 2 * np.pi, out.sum())
    dist = rng.uniform(15, 150, out.sum())
    moved = sar.copy()
    moved[out] += np.column_stack([dist * np.cos(ang), dist * np.sin(ang)])
    return moved, out


def test_noise_statistics_affine() -> None:
    """2-D noise RMS 0.5 px on 100 points: RMSE = 0.5 sqrt((N-3)/N), LOO a few % above it (leverage 3/N)."""
    n = 100
    opt, sar = _noisy_points(n, AFF.forward, 0.5, seed=1)
    reg = fit_registration(TiePoints(sar, opt), "affine")
    assert reg.n_inliers == n
    assert reg.rmse_px == pytest.approx(0.5 * np.sqrt((n - 3) / n), rel=0.12)
    assert reg.rmse_px < reg.loo_rmse_px < 1.08 * reg.rmse_px
    # averaged over noise draws the ratio is close to 1 + 3/N
    ratios = []
    for seed in range(20):
        o, s = _noisy_points(n, AFF.forward, 0.5, seed=100 + seed)
        r = fit_registration(TiePoints(s, o), "affine", robust=False)
        ratios.append(r.loo_rmse_px / r.rmse_px)
    assert np.mean(ratios) == pytest.approx(1 + 3 / n, abs=0.01)


@pytest.mark.parametrize("model", ["similarity", "affine", "projective", "polynomial2", "tps"])
def test_loo_closed_form_matches_refitting(model: str) -> None:
    truth = {"similarity": SIM.forward, "affine": AFF.forward, "projective": PROJ.forward}.get(model, _wavy)
    opt, sar = _noisy_points(40, truth, 0.7, seed=3)
    w = np.random.default_rng(4).uniform(0.3, 1.0, len(opt))
    t = fit_transform(model, opt, sar, w)
    closed = loo_residuals(model, t, opt, sar, w)
    brute = np.array(
        [
            sar[i]
            - fit_transform(model, np.delete(opt, i, 0), np.delete(sar, i, 0), np.delete(w, i)).forward(
                opt[i : i + 1]
            )[0]
            for i in range(len(opt))
        ]
    )
    # projective: the closed form keeps the full set's normalisation, a refit renormalises: 1e-4 px apart
    np.testing.assert_allclose(closed, brute, rtol=0, atol=1e-4 if model == "projective" else 1e-8)


def test_tps_loo_is_the_honest_error() -> None:
    opt, sar = _noisy_points(150, _wavy, 0.5, seed=5)
    reg = fit_registration(TiePoints(sar, opt), "tps")
    assert reg.rmse_px < 1e-6  # the spline passes through its points
    assert 0.4 < reg.loo_rmse_px < 1.2  # but predicts a left-out point only to about the noise level


@pytest.mark.parametrize(
    "model,truth",
    [
        ("similarity", SIM.forward),
        ("affine", AFF.forward),
        ("projective", PROJ.forward),
        ("polynomial2", _quadratic),
        ("tps", _wavy),
    ],
)
def test_ransac_flags_gross_outliers(model: str, truth) -> None:
    opt, sar = _noisy_points(200, truth, 0.3, seed=7)
    bad_sar, is_out = _with_outliers(sar, 0.2, seed=8)
    reg = fit_registration(TiePoints(bad_sar, opt), model, ransac_threshold_px=3.0)
    flagged = ~reg.inliers
    tp = int((flagged & is_out).sum())
    precision, recall = tp / max(int(flagged.sum()), 1), tp / int(is_out.sum())
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    # outliers are flagged, never removed
    assert len(reg.tiepoints) == 200 and reg.residuals.shape == (200,)
    np.testing.assert_array_equal(reg.tiepoints.sar_xy, bad_sar)
    # the fit is unaffected: as close to the truth as a fit on the known inliers alone
    g = np.stack(np.meshgrid(np.linspace(100, 900, 9), np.linspace(100, 900, 9)), -1).reshape(-1, 2)
    oracle = fit_transform(model, opt[~is_out], bad_sar[~is_out])
    np.testing.assert_allclose(reg.transform.forward(g), oracle.forward(g), rtol=0, atol=0.05)
    if model != "tps":  # an interpolating spline follows the noise (0.3 px) between points
        err = np.sqrt(((reg.transform.forward(g) - truth(g)) ** 2).sum(axis=1))
        assert err.max() < 0.25, err.max()
        assert reg.rmse_px < 0.35
    assert reg.residuals[is_out].min() > 3.0


def test_scores_guide_sampling_with_many_outliers() -> None:
    """45 % outliers with low scores: score-weighted sampling still finds the model quickly."""
    opt, sar = _noisy_points(200, AFF.forward, 0.3, seed=9)
    bad, is_out = _with_outliers(sar, 0.45, seed=10)
    score = np.where(is_out, 0.05, 1.0)
    reg = fit_registration(TiePoints(bad, opt, score=score), "affine", ransac_iterations=50)
    np.testing.assert_array_equal(~reg.inliers, is_out)
    assert reg.meta["ransac_samples"] <= 50


def test_deterministic_for_a_seed() -> None:
    opt, sar = _noisy_points(120, AFF.forward, 0.5, seed=11)
    bad, _ = _with_outliers(sar, 0.3, seed=12)
    tp = TiePoints(bad, opt)
    a = fit_registration(tp, "projective", seed=3)
    b = fit_registration(tp, "projective", seed=3)
    np.testing.assert_array_equal(a.inliers, b.inliers)
    np.testing.assert_array_equal(a.transform.matrix, b.transform.matrix)
    assert a.meta == b.meta


def test_not_robust_keeps_every_point() -> None:
    opt, sar = _noisy_points(50, AFF.forward, 0.5, seed=13)
    bad, _ = _with_outliers(sar, 0.2, seed=14)
    reg = fit_registration(TiePoints(bad, opt), "affine", robust=False)
    assert reg.inliers.all()
    assert reg.rmse_px > 5  # the outliers pull the fit


def test_too_few_points_and_inliers() -> None:
    opt, sar = _noisy_points(5, AFF.forward, 0.0, seed=15)
    with pytest.raises(TiePointError, match="^polynomial2 needs at least 6 tie points, got 5$"):
        fit_registration(TiePoints(sar, opt), "polynomial2")
    # 12 points with no common model: RANSAC keeps only an affine minimal set, fewer than polynomial2 needs
    rng = np.random.default_rng(16)
    opt, sar = rng.uniform(0, 1000, (12, 2)), rng.uniform(0, 1000, (12, 2))
    with pytest.raises(
        TiePointError, match=r"RANSAC kept \d of 12 tie points within 0.5 px, but polynomial2 needs"
    ):
        fit_registration(TiePoints(sar, opt), "polynomial2", ransac_threshold_px=0.5)


def test_few_points_skip_or_simplify_ransac() -> None:
    opt, sar = _noisy_points(3, AFF.forward, 0.0, seed=17)
    reg = fit_registration(TiePoints(sar, opt), "affine")
    assert reg.inliers.all() and "skipped" in reg.meta["ransac"]
    assert np.isnan(reg.loo_rmse_px)  # exactly the minimum: nothing can be left out
    assert consensus_model("affine", 5) == "similarity"
    assert consensus_model("affine", 6) == "affine"
    assert consensus_model("projective", 7) == "affine"
    assert consensus_model("tps", 100) == "affine"
    assert consensus_model("identity", 100) is None


def test_collinear_points_error() -> None:
    t = np.linspace(0, 900, 20)
    line = np.column_stack([t, 2 * t + 1])
    with pytest.raises(TiePointError, match="collinear"):
        fit_registration(TiePoints(line, line), "affine", robust=False)


def test_unknown_model_and_method() -> None:
    tp = TiePoints(np.zeros((4, 2)) + np.arange(4)[:, None] * [1, 3], np.zeros((4, 2)))
    with pytest.raises(InputError, match="unknown transform model 'rubber'.*affine"):
        fit_registration(tp, "rubber")
    with pytest.raises(InputError, match="unknown registration method"):
        fit_registration(tp, "identity", method="magic")
    with pytest.raises(InputError, match="ransac_threshold_px"):
        fit_registration(
            TiePoints(*_noisy_points(20, AFF.forward, 0.1, 1)[::-1]), "affine", ransac_threshold_px=0
        )


def test_to_dict_round_trip() -> None:
    opt, sar = _noisy_points(30, AFF.forward, 0.5, seed=18)
    bad, _ = _with_outliers(sar, 0.2, seed=19)
    reg = fit_registration(TiePoints(bad, opt, score=np.linspace(0.5, 1, 30), source="csv"), "affine")
    d = json.loads(json.dumps(reg.to_dict(), allow_nan=False))
    assert d["model"] == "affine" and d["method"] == "tiepoints"
    assert d["n_points"] == 30 and d["n_inliers"] == reg.n_inliers
    np.testing.assert_allclose(d["optical_to_sar"], reg.transform.matrix)
    assert set(d["points"][0]) == {"x_sar", "y_sar", "x_opt", "y_opt", "score", "inlier", "residual_px"}
    assert [p["inlier"] for p in d["points"]] == reg.inliers.tolist()
    back = registration_from_dict(d)
    assert isinstance(back, Registration)
    np.testing.assert_array_equal(back.inliers, reg.inliers)
    np.testing.assert_array_equal(back.residuals, reg.residuals)
    np.testing.assert_array_equal(back.transform.matrix, reg.transform.matrix)
    np.testing.assert_array_equal(back.tiepoints.score, reg.tiepoints.score)
    assert back.rmse_px == reg.rmse_px and back.loo_rmse_px == reg.loo_rmse_px
    assert back.tiepoints.source == "csv"


def test_tps_registration_dict_has_no_matrix() -> None:
    opt, sar = _noisy_points(30, _wavy, 0.2, seed=20)
    d = fit_registration(TiePoints(sar, opt), "tps").to_dict()
    assert d["optical_to_sar"] is None and d["transform"]["model"] == "tps"
    json.dumps(d, allow_nan=False)


def test_identity_registration() -> None:
    reg = identity_registration(640, 480)
    assert reg.method == "identity" and reg.model == "identity"
    assert reg.rmse_px == 0.0 and np.isnan(reg.loo_rmse_px)
    np.testing.assert_array_equal(reg.tiepoints.sar_xy, reg.tiepoints.opt_xy)
    assert reg.tiepoints.sar_xy.max(axis=0).tolist() == [639.0, 479.0]
    np.testing.assert_array_equal(reg.transform.inverse(np.array([[3.5, 7.25]])), [[3.5, 7.25]])
    d = json.loads(json.dumps(reg.to_dict(), allow_nan=False))
    assert d["loo_rmse_px"] is None and d["optical_to_sar"] == np.eye(3).tolist()
    with pytest.raises(InputError):
        identity_registration(0, 10)
