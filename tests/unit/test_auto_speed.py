"""The shortcuts that make automatic registration fast give the same answers as the long way round.

Masked field correlation over all shifts vs brute force; the local (near a pose) and half-turn forms vs the
full one; the optical orientation field warped once vs recomputed on each warped image; candidates scored in
pairs and threads vs one by one; a wrong coarse start given up after one cheap pass; the reduced refit pass.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from saropt.errors import ConfigError
from saropt.registration.auto import AutoConfig, register
from saropt.registration.auto.coarse import CoarseParams, _centred, _Level, _OpticalField, similarity_matrix
from saropt.registration.auto.evaluate import transform_rmse
from saropt.registration.auto.features import orientation_field
from saropt.registration.auto.fieldcorr import SarSpectra, correlate_all, correlate_near, fast_size
from saropt.registration.auto.matcher import _window_fraction, extract_windows
from saropt.registration.auto.pipeline import _pyramid, independent_count
from saropt.registration.auto.sources import make_source
from tests.unit.autoutil import grid_rmse, make_pair, similarity

C = (127.5, 127.5)


def _field(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    z = cv2.GaussianBlur(rng.standard_normal((h, w, 2)).astype(np.float32), (0, 0), 1.5)
    valid = np.ones((h, w), bool)
    valid[: h // 5, : w // 4] = False  # an irregular mask
    zc = (z[..., 0] + 1j * z[..., 1]).astype(np.complex64)
    return _centred(zc, valid), valid


def _brute(
    s: np.ndarray, sv: np.ndarray, o: np.ndarray, ov: np.ndarray, dx: int, dy: int
) -> tuple[float, float]:
    """z-score and overlap of the optical canvas moved by (dx, dy) onto the SAR, computed directly."""
    hs, ws = s.shape
    h, w = o.shape
    num = ovl = es = eo = 0.0
    for y in range(h):
        for x in range(w):
            ys, xs = y + dy, x + dx
            if 0 <= ys < hs and 0 <= xs < ws:
                num += float((s[ys, xs] * np.conj(o[y, x])).real)
                ovl += float(sv[ys, xs] * ov[y, x])
                es += float(abs(s[ys, xs]) ** 2 * ov[y, x])
                eo += float(sv[ys, xs] * abs(o[y, x]) ** 2)
    return num / np.sqrt(max(es * eo, 1e-12)) * np.sqrt(max(ovl, 0.0)), ovl


def test_correlate_all_is_the_masked_ncc_zscore_at_its_best_shift() -> None:
    rng = np.random.default_rng(0)
    s, sv = _field(rng, 20, 24)
    o, ov = s[3:15, 5:21].copy(), sv[3:15, 5:21].copy()  # the SAR's own content: the peak is at (5, 3)
    o += 0.3 * _field(rng, 12, 16)[0]
    pk = correlate_all(SarSpectra(s, sv), o, ov, min_overlap=0.5)[0]
    assert (pk.dx, pk.dy) == (5, 3)
    score, ovl = _brute(s, sv, o, ov, 5, 3)
    assert pk.score == pytest.approx(score, rel=1e-4)
    assert pk.overlap == pytest.approx(ovl / min(sv.sum(), ov.sum()), rel=1e-6)
    # no other shift with enough overlap scores higher
    for dy in range(-11, 20):
        for dx in range(-15, 24):
            sc, ovl = _brute(s, sv, o, ov, dx, dy)
            if ovl >= 0.5 * min(sv.sum(), ov.sum()):
                assert sc <= pk.score + 1e-4


def test_correlate_near_and_half_turn_agree_with_the_full_search() -> None:
    rng = np.random.default_rng(1)
    s, sv = _field(rng, 40, 44)
    spec = SarSpectra(s, sv)
    r = 5
    # a canvas on the SAR grid grown by r, whose content belongs 3 px right and 2 px up of where it lies
    canvas = np.zeros((40 + 2 * r, 44 + 2 * r), np.complex64)
    cvalid = np.zeros(canvas.shape, bool)
    canvas[r + 2 : r + 2 + 40, r - 3 : r - 3 + 44] = s
    cvalid[r + 2 : r + 2 + 40, r - 3 : r - 3 + 44] = sv
    near = correlate_near(spec, canvas, cvalid, r, float(sv.sum()), 0.5)
    assert (near.dx, near.dy) == (3, -2)
    full = correlate_all(spec, canvas, cvalid, 0.5)[0]
    # the full search places the canvas itself: its content is shifted by r less in each direction
    assert (full.dx + r, full.dy + r) == (3, -2)
    assert near.score == pytest.approx(full.score, rel=1e-4)
    # the half-turned canvas scored from the canvas's own transforms equals scoring it directly
    both = correlate_all(spec, canvas, cvalid, 0.5, half_turn=True)
    turned = correlate_all(spec, canvas[::-1, ::-1].copy(), cvalid[::-1, ::-1].copy(), 0.5)[0]
    assert both[0] == full
    assert (both[1].dx, both[1].dy) == (turned.dx, turned.dy)
    assert both[1].score == pytest.approx(turned.score, rel=1e-4)


@pytest.mark.parametrize(("angle", "scale"), [(0.0, 1.0), (37.0, 1.1), (-120.0, 0.9), (90.0, 1.0)])
def test_warped_optical_field_equals_the_field_of_the_warped_image(angle: float, scale: float) -> None:
    pair = make_pair(similarity(0.0, 1.0, C, C), seed=1)
    opt = pair.opt.astype(np.float32)
    valid = np.ones(opt.shape, bool)
    params = CoarseParams()
    h, w = opt.shape
    c = ((w - 1) / 2.0, (h - 1) / 2.0)
    side = int(np.hypot(h, w) * scale) + 3
    m = similarity_matrix(angle, scale, c)
    m[:2, 2] += [(side - 1) / 2.0 - c[0], (side - 1) / 2.0 - c[1]]
    warped = cv2.warpAffine(opt, m[:2], (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    wvalid = cv2.warpAffine(valid.astype(np.uint8), m[:2], (side, side), flags=cv2.INTER_NEAREST) > 0
    z0, v0 = orientation_field(warped, wvalid, "gaussian", params.opt_sigma, params.smooth_sigma)
    z1, v1 = _OpticalField(opt, valid, 1.0, params).warp(m, angle, (side, side))
    both = v0 & v1
    assert both.sum() > 0.9 * v0.sum()
    a, b = z0[both], z1[both]
    inner = np.vdot(a, b)
    # same field up to interpolation: the double-angle phase turns with the image (sign) and the values agree
    assert abs(np.angle(inner)) < 0.1
    assert abs(inner) / np.sqrt(np.vdot(a, a).real * np.vdot(b, b).real) > 0.95


def test_paired_and_threaded_grid_scoring_equals_one_by_one() -> None:
    pair = make_pair(similarity(70.0, 1.0, C, (130.0, 125.0)), seed=2)
    sar = cv2.resize(pair.sar, (64, 64), interpolation=cv2.INTER_AREA)
    opt = cv2.resize(pair.opt.astype(np.float32), (64, 64), interpolation=cv2.INTER_AREA)
    ones = np.ones((64, 64), bool)
    from concurrent.futures import ThreadPoolExecutor

    poses = [(float(a), s) for s in (0.9, 1.0) for a in range(-180, 180, 30)]
    with ThreadPoolExecutor(2) as pool:
        level = _Level(sar, ones, opt, ones, 1.2, CoarseParams(), pool)
        many = level.evaluate_many(poses)
    assert level.n_evaluated == len(poses)
    for (a, s), c in zip(poses, many):
        one = level.evaluate(a, s)
        assert c.angle_deg == a and c.scale == s
        assert c.score == pytest.approx(one.score, rel=1e-3, abs=1e-3)
        np.testing.assert_allclose(c.matrix, one.matrix, atol=1e-6)


def test_results_do_not_depend_on_the_thread_count() -> None:
    pair = make_pair(similarity(15.0, 1.0, C, (131.0, 124.0)), seed=4)
    one = register(pair.sar, pair.opt, config=AutoConfig(threads=1))
    two = register(pair.sar, pair.opt, config=AutoConfig(threads=2))
    np.testing.assert_allclose(one.transform.matrix, two.transform.matrix, atol=1e-9)
    assert one.n_inliers == two.n_inliers
    assert grid_rmse(two.transform.forward, pair) < 0.5
    with pytest.raises(ConfigError, match="threads"):
        AutoConfig(threads=0)


def test_refit_pass_uses_few_points_and_a_wrong_start_is_given_up_after_it() -> None:
    truth = similarity(15.0, 1.0, C, (128.0, 126.0))
    pair = make_pair(truth, seed=4)
    cfg = AutoConfig()
    sar = make_source(pair.sar, "sar", cfg.array_nodata)
    opt = make_source(pair.opt, "optical", cfg.array_nodata)
    start = truth @ np.array([[1.0, 0.0, 3.0], [0.0, 1.0, -2.0], [0.0, 0.0, 1.0]])  # 3-4 px off
    final, m, n_in, passes = _pyramid(sar, opt, sar.window, start, 1.0, cfg, give_up_early=True)
    assert final is not None and len(passes) == 2
    assert passes[0]["n_candidates"] <= cfg.refit_points < passes[1]["n_candidates"]
    assert n_in >= 100 and transform_rmse(m, truth, pair.sar.shape) < 0.5  # the refit from ~100 points
    wrong = similarity(15.0 + 180.0, 1.0, C, (128.0, 126.0))  # upside down: nothing matches
    final, _, n_in, passes = _pyramid(sar, opt, sar.window, wrong, 1.0, cfg, give_up_early=True)
    assert final is None and len(passes) == 1 and n_in < cfg.min_inliers
    final, _, _, passes = _pyramid(sar, opt, sar.window, wrong, 1.0, cfg, give_up_early=False)
    assert final is not None and len(passes) == 2  # without another start to try, the final pass runs


def test_independent_count_and_window_helpers_match_their_definitions() -> None:
    rng = np.random.default_rng(5)
    xy = rng.random((150, 2)) * 200
    score = rng.random(150)
    kept: list[np.ndarray] = []
    for i in np.argsort(-score, kind="stable"):
        if all(((xy[i] - q) ** 2).sum() >= 24.0**2 for q in kept):
            kept.append(xy[i])
    assert independent_count(xy, score, 24.0) == len(kept)
    assert independent_count(np.zeros((0, 2)), np.zeros(0), 24.0) == 0
    mask = rng.random((40, 50)) > 0.3
    x0, y0 = rng.integers(-15, 55, 60), rng.integers(-15, 45, 60)
    direct = extract_windows(mask[None].astype(np.float32), x0, y0, 12).reshape(60, -1).mean(axis=1)
    np.testing.assert_allclose(_window_fraction(mask, x0, y0, 12), direct, atol=1e-12)


def test_fast_dft_sizes_cover_the_request_with_small_odd_factors() -> None:
    for n in [1, 7, 63, 64, 65, 100, 257, 282, 294, 300, 513, 750, 1025]:
        m = fast_size(n)
        assert n <= m <= 1.2 * n + 8
        odd = m
        while odd % 2 == 0:
            odd //= 2
        assert n <= 64 or odd in (1, 3, 5, 7, 9, 11, 13, 15)
