"""RANSAC consensus for tie points: which points agree with one linear model (similarity, affine, projective).

Hypotheses come from minimal samples (2, 3 or 4 points) drawn with probability proportional to each point's
reliability score, solved in batches with vectorised closed forms in Hartley-normalised coordinates, and scored
with the truncated quadratic loss of MSAC (``sum(min(r^2, t^2))``), which prefers the tighter of two
hypotheses with equally many inliers. The best hypothesis is polished by iterated least-squares refits on its
inliers (the "local optimisation" of LO-RANSAC). Sampling stops early once the usual confidence bound is met.
Everything is deterministic for a given seed.

Convention:
    Pixel coordinates, x = column, y = row, 0-based, pixel centres at integer coordinates. Models map OPTICAL
    -> SAR; residuals and the threshold are distances in SAR pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from saropt.errors import InputError, TiePointError
from saropt.registration.transforms import _apply_matrix, _hartley, fit_transform

logger = logging.getLogger(__name__)

#: minimal sample size per consensus model
SAMPLE_SIZE = {"similarity": 2, "affine": 3, "projective": 4}
_BATCH = 256
_LO_ROUNDS = 10


@dataclass(frozen=True, eq=False)
class RansacResult:
    """Outcome of :func:`ransac`.

    Attributes:
        inliers: ``(N,)`` bool, points within the threshold of the best (polished) hypothesis.
        model: consensus model used for the hypotheses.
        iterations: number of minimal samples drawn.
        cost: MSAC cost of the result, in squared SAR pixels.
    """

    inliers: np.ndarray
    model: str
    iterations: int
    cost: float


def ransac(
    opt_xy: np.ndarray,
    sar_xy: np.ndarray,
    model: str = "affine",
    *,
    threshold_px: float = 3.0,
    max_iterations: int = 2000,
    seed: int = 0,
    probabilities: np.ndarray | None = None,
    confidence: float = 0.999,
) -> RansacResult:
    """Find the largest (MSAC-best) set of tie points consistent with one linear model.

    Args:
        opt_xy: ``(N, 2)`` optical pixel coordinates.
        sar_xy: ``(N, 2)`` SAR pixel coordinates.
        model: ``"similarity"``, ``"affine"`` or ``"projective"``.
        threshold_px: inlier distance in SAR pixels.
        max_iterations: most minimal samples drawn.
        seed: random seed (same seed, same result).
        probabilities: optional ``(N,)`` sampling weights (e.g. scores); normalised here; uniform if ``None``.
        confidence: stop once an all-inlier sample has been drawn with this probability.

    Returns:
        The :class:`RansacResult`.

    Raises:
        InputError: unknown model or invalid threshold / iterations.
        TiePointError: fewer points than the minimal sample.

    Convention:
        x = column, y = row, 0-based, pixel centres at integers; the model maps optical -> SAR.
    """
    if model not in SAMPLE_SIZE:
        raise InputError(f"RANSAC consensus model must be one of {sorted(SAMPLE_SIZE)}, got {model!r}")
    if not (np.isfinite(threshold_px) and threshold_px > 0):
        raise InputError(f"ransac_threshold_px must be > 0, got {threshold_px}")
    if max_iterations < 1:
        raise InputError(f"ransac_iterations must be >= 1, got {max_iterations}")
    opt = np.asarray(opt_xy, dtype=np.float64).reshape(-1, 2)
    sar = np.asarray(sar_xy, dtype=np.float64).reshape(-1, 2)
    n, k = len(opt), SAMPLE_SIZE[model]
    if n < k:
        raise TiePointError(f"RANSAC with {model} needs at least {k} tie points, got {n}")
    p = _sampling_probabilities(probabilities, n)

    t_opt, t_sar = _hartley(opt), _hartley(sar)
    on, sn = _apply_matrix(t_opt, opt), _apply_matrix(t_sar, sar)
    t2 = float((threshold_px * t_sar[0, 0]) ** 2)  # threshold in normalised SAR units (isotropic scale)

    rng = np.random.default_rng(seed)
    best_cost, best_h, drawn = np.inf, None, 0
    needed = max_iterations
    while drawn < min(needed, max_iterations):
        b = min(_BATCH, max_iterations - drawn)
        idx = rng.choice(n, size=(b, k), replace=True, p=p)
        drawn += b
        s = np.sort(idx, axis=1)
        idx = idx[(np.diff(s, axis=1) > 0).all(axis=1)]  # drop samples that repeat a point
        if len(idx) == 0:
            continue
        h = _MINIMAL[model](on[idx], sn[idx])
        if len(h) == 0:
            continue
        r2 = _residuals2(h, on, sn)
        cost = np.minimum(r2, t2).sum(axis=1)
        j = int(np.argmin(cost))
        if cost[j] < best_cost:
            best_cost, best_h = float(cost[j]), h[j]
            frac = float(p[r2[j] <= t2].sum())
            needed = _needed_iterations(frac, k, confidence)
    if best_h is None:
        raise TiePointError(
            f"RANSAC found no non-degenerate {model} sample among {n} tie points (all collinear or repeated?)"
        )
    inliers = _residuals2(best_h[None], on, sn)[0] <= t2
    inliers, cost = _polish(model, opt, sar, inliers, threshold_px, best_cost / t_sar[0, 0] ** 2)
    logger.debug(
        "RANSAC %s: %d samples, %d/%d inliers within %.3g px",
        model,
        drawn,
        int(inliers.sum()),
        n,
        threshold_px,
    )
    return RansacResult(inliers=inliers, model=model, iterations=drawn, cost=cost)


def refine_inliers(
    model: str,
    opt: np.ndarray,
    sar: np.ndarray,
    inliers: np.ndarray,
    threshold_px: float,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Iterate "fit ``model`` on the inliers, re-flag every point by its residual" until the flags settle.

    A fit that fails (too few or degenerate inliers) ends the iteration with the last good flags.

    Args:
        model: any registered model name.
        opt: ``(N, 2)`` optical pixel coordinates.
        sar: ``(N, 2)`` SAR pixel coordinates.
        inliers: ``(N,)`` bool starting flags.
        threshold_px: inlier distance in SAR pixels.
        weights: optional ``(N,)`` weights for the fits.

    Returns:
        ``(N,)`` bool refined flags.

    Convention:
        x = column, y = row, pixel centres at integers; residuals in SAR pixels of ``forward`` (optical -> SAR).
    """
    return _polish(model, opt, sar, inliers, threshold_px, np.inf, weights)[0]


# ----------------------------------------------------------------------------------------------------- internals


def _sampling_probabilities(probabilities: np.ndarray | None, n: int) -> np.ndarray:
    if probabilities is None:
        return np.full(n, 1.0 / n)
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if p.shape[0] != n:
        raise InputError(f"sampling probabilities: got {p.shape[0]} for {n} tie points")
    p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
    if p.sum() <= 0:
        return np.full(n, 1.0 / n)
    # keep every point drawable so that a wrong score cannot exclude a true inlier from every sample
    p = np.maximum(p / p.sum(), 1e-3 / n)
    return p / p.sum()


def _needed_iterations(inlier_mass: float, k: int, confidence: float) -> int:
    """Samples needed to draw one all-inlier sample with probability ``confidence``."""
    good = inlier_mass**k
    if good >= 1.0:
        return 0
    if good <= 0.0:
        return np.iinfo(np.int64).max
    return int(np.ceil(np.log(1.0 - confidence) / np.log1p(-good)))


def _polish(
    model: str,
    opt: np.ndarray,
    sar: np.ndarray,
    inliers: np.ndarray,
    threshold_px: float,
    cost: float,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """LO step: least-squares refits on the inliers while the MSAC cost does not increase."""
    t2 = threshold_px**2
    best = inliers.copy()
    for _ in range(_LO_ROUNDS):
        try:
            tr = fit_transform(model, opt[best], sar[best], None if weights is None else weights[best])
        except TiePointError:
            break
        r2 = ((tr.forward(opt) - sar) ** 2).sum(axis=1)
        r2 = np.where(np.isfinite(r2), r2, np.inf)
        new_cost = float(np.minimum(r2, t2).sum())
        new = r2 <= t2
        if new_cost > cost * (1 + 1e-12) and np.isfinite(cost):
            break
        cost = new_cost
        if np.array_equal(new, best):
            break
        best = new
    return best, cost


def _residuals2(h: np.ndarray, on: np.ndarray, sn: np.ndarray) -> np.ndarray:
    """``(B, N)`` squared distances between ``h @ on`` and ``sn`` for ``B`` hypotheses."""
    x, y = on[:, 0], on[:, 1]
    u = h[:, 0, :1] * x + h[:, 0, 1:2] * y + h[:, 0, 2:3]
    v = h[:, 1, :1] * x + h[:, 1, 1:2] * y + h[:, 1, 2:3]
    if np.any(h[:, 2, :2] != 0):
        w = h[:, 2, :1] * x + h[:, 2, 1:2] * y + h[:, 2, 2:3]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = u / w
            v = v / w
    r2 = (u - sn[:, 0]) ** 2 + (v - sn[:, 1]) ** 2
    return np.where(np.isfinite(r2), r2, np.inf)


def _solve_similarity(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``(B, 3, 3)`` similarities from 2-point samples ``p, q`` of shape ``(B, 2, 2)`` (degenerate dropped)."""
    zp = (p[:, 1, 0] - p[:, 0, 0]) + 1j * (p[:, 1, 1] - p[:, 0, 1])
    zq = (q[:, 1, 0] - q[:, 0, 0]) + 1j * (q[:, 1, 1] - q[:, 0, 1])
    ok = (np.abs(zp) > 1e-9) & (np.abs(zq) > 1e-9)
    z = zq[ok] / zp[ok]
    p0 = p[ok, 0, 0] + 1j * p[ok, 0, 1]
    q0 = q[ok, 0, 0] + 1j * q[ok, 0, 1]
    t = q0 - z * p0
    h = np.zeros((len(z), 3, 3))
    h[:, 0, 0], h[:, 0, 1], h[:, 0, 2] = z.real, -z.imag, t.real
    h[:, 1, 0], h[:, 1, 1], h[:, 1, 2] = z.imag, z.real, t.imag
    h[:, 2, 2] = 1.0
    return h


def _tri_area2(p: np.ndarray, i: int, j: int, k: int) -> np.ndarray:
    """Twice the signed area of triangles ``(p[:, i], p[:, j], p[:, k])`` for ``(B, m, 2)`` samples."""
    d1 = p[:, j] - p[:, i]
    d2 = p[:, k] - p[:, i]
    return d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]


def _solve_affine(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``(B, 3, 3)`` affines from 3-point samples ``(B, 3, 2)`` (collinear samples dropped)."""
    ok = (np.abs(_tri_area2(p, 0, 1, 2)) > 1e-6) & (np.abs(_tri_area2(q, 0, 1, 2)) > 1e-6)
    p, q = p[ok], q[ok]
    a = np.concatenate([p, np.ones((len(p), 3, 1))], axis=2)  # rows [x, y, 1]
    coef = np.linalg.solve(a, q)  # (B, 3, 2)
    h = np.zeros((len(p), 3, 3))
    h[:, :2, :] = np.transpose(coef, (0, 2, 1))
    h[:, 2, 2] = 1.0
    return h


def _solve_projective(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``(B, 3, 3)`` homographies from 4-point samples ``(B, 4, 2)`` (samples with 3 collinear dropped)."""
    ok = np.ones(len(p), dtype=bool)
    for tri in ((0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)):
        ok &= (np.abs(_tri_area2(p, *tri)) > 1e-6) & (np.abs(_tri_area2(q, *tri)) > 1e-6)
    p, q = p[ok], q[ok]
    b = len(p)
    x, y, u, v = p[..., 0], p[..., 1], q[..., 0], q[..., 1]  # (B, 4)
    one, zero = np.ones_like(x), np.zeros_like(x)
    rx = np.stack([x, y, one, zero, zero, zero, -u * x, -u * y], axis=2)
    ry = np.stack([zero, zero, zero, x, y, one, -v * x, -v * y], axis=2)
    a = np.concatenate([rx, ry], axis=1)  # (B, 8, 8)
    rhs = np.concatenate([u, v], axis=1)  # (B, 8)
    det = np.linalg.det(a)
    good = np.abs(det) > 1e-12
    h8 = np.linalg.solve(a[good], rhs[good][..., None])[..., 0]
    h = np.concatenate([h8, np.ones((len(h8), 1))], axis=1).reshape(-1, 3, 3)
    logger.debug("projective minimal solver: %d of %d samples usable", len(h), b)
    return h


_MINIMAL = {
    "similarity": lambda p, q: _solve_similarity(p, q),
    "affine": lambda p, q: _solve_affine(p, q),
    "projective": lambda p, q: _solve_projective(p, q),
}
