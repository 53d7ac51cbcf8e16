"""Fitting a transform model to tie points: robust consensus, outlier flags, residuals and leave-one-out error.

:func:`fit_registration` turns :class:`~saropt.io.tiepoints.TiePoints` into a :class:`Registration`: RANSAC on a
linear model flags gross outliers (they stay in the tie points, flagged), the requested model is refitted on the
inliers, and every point gets its residual. Two accuracy figures come back: the RMSE of the inliers (how well the
model fits the points it was fitted on: optimistic, 0 for an interpolating spline) and the leave-one-out RMSE
(each inlier predicted by the model fitted without it: an honest estimate of the error between tie points).

Convention:
    Pixel coordinates, x = column, y = row, 0-based, pixel centres at integer coordinates. The transform maps
    OPTICAL -> SAR; residuals are ``|forward(opt_xy) - sar_xy|`` in SAR pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from saropt.errors import InputError, TiePointError
from saropt.io.tiepoints import TiePoints
from saropt.registration.ransac import SAMPLE_SIZE, ransac, refine_inliers
from saropt.registration.transforms import (
    IdentityTransform,
    ThinPlateSplineTransform,
    Transform,
    _apply_matrix,
    _design,
    _dlt_rows,
    _hartley,
    fit_transform,
    model_class,
    transform_from_dict,
)

logger = logging.getLogger(__name__)

METHODS = ("tiepoints", "geocoding", "identity", "auto")


@dataclass(frozen=True, eq=False)
class Registration:
    """A transform fitted to tie points, with per-point residuals and outlier flags.

    Attributes:
        model: the transform model name (``"affine"``, ``"tps"``...).
        transform: the fitted :class:`Transform` (optical -> SAR).
        tiepoints: all tie points, outliers included.
        inliers: ``(N,)`` bool; outliers are flagged here, never removed from ``tiepoints``.
        residuals: ``(N,)`` float64 ``|forward(opt_xy) - sar_xy|`` in SAR pixels, for every point.
        rmse_px: RMSE of the inlier residuals (NaN when there are none).
        loo_rmse_px: leave-one-out RMSE over the inliers: point ``i``'s residual under the model refitted
            without it (NaN when not computable, e.g. identity or exactly as many inliers as the model needs).
        method: ``"tiepoints"``, ``"geocoding"``, ``"identity"`` or ``"auto"``.
        meta: details (RANSAC threshold, samples drawn, seed, consensus model...), JSON-serialisable.

    Convention:
        Pixel coordinates x = column, y = row, 0-based, pixel centres at integers; residuals in SAR pixels.
    """

    model: str
    transform: Transform
    tiepoints: TiePoints
    inliers: np.ndarray
    residuals: np.ndarray
    rmse_px: float
    loo_rmse_px: float
    method: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        """Number of tie points (outliers included)."""
        return len(self.tiepoints)

    @property
    def n_inliers(self) -> int:
        """Number of points flagged as inliers."""
        return int(np.count_nonzero(self.inliers))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary; :func:`registration_from_dict` restores it.

        Returns:
            ``{"model", "method", "optical_to_sar" (3x3 list or None), "transform", "rmse_px", "loo_rmse_px",
            "n_points", "n_inliers", "meta", "points": [{"x_sar", "y_sar", "x_opt", "y_opt", "score",
            "inlier", "residual_px"}, ...]}``; NaN figures are written as ``None``.

        Convention:
            Pixel coordinates x = column, y = row, 0-based, pixel centres at integers.
        """
        tp = self.tiepoints
        m = self.transform.matrix
        points = [
            {
                "x_sar": float(tp.sar_xy[i, 0]),
                "y_sar": float(tp.sar_xy[i, 1]),
                "x_opt": float(tp.opt_xy[i, 0]),
                "y_opt": float(tp.opt_xy[i, 1]),
                "score": None if tp.score is None else float(tp.score[i]),
                "inlier": bool(self.inliers[i]),
                "residual_px": _json_float(self.residuals[i]),
            }
            for i in range(len(tp))
        ]
        return {
            "model": self.model,
            "method": self.method,
            "optical_to_sar": None if m is None else m.tolist(),
            "transform": self.transform.to_dict(),
            "rmse_px": _json_float(self.rmse_px),
            "loo_rmse_px": _json_float(self.loo_rmse_px),
            "n_points": self.n_points,
            "n_inliers": self.n_inliers,
            "tiepoint_source": tp.source,
            "meta": self.meta,
            "points": points,
        }

    def summary(self) -> str:
        """One line: model, method, inliers and errors."""
        return (
            f"{self.model} ({self.method}): {self.n_inliers}/{self.n_points} inliers, "
            f"RMSE {self.rmse_px:.3f} px, leave-one-out RMSE {self.loo_rmse_px:.3f} px"
        )


def registration_from_dict(d: dict[str, Any]) -> Registration:
    """Restore a :class:`Registration` from :meth:`Registration.to_dict` output.

    Raises:
        InputError: ``d`` lacks the expected entries.

    Convention:
        Pixel coordinates x = column, y = row, 0-based, pixel centres at integers.
    """
    try:
        pts = d["points"]
        sar = np.array([[p["x_sar"], p["y_sar"]] for p in pts], dtype=np.float64).reshape(-1, 2)
        opt = np.array([[p["x_opt"], p["y_opt"]] for p in pts], dtype=np.float64).reshape(-1, 2)
        has_score = bool(pts) and all(p.get("score") is not None for p in pts)
        score = np.array([p["score"] for p in pts], dtype=np.float64) if has_score else None
        tp = TiePoints(sar, opt, score=score, source=d.get("tiepoint_source", d["method"]))
        return Registration(
            model=d["model"],
            transform=transform_from_dict(d["transform"]),
            tiepoints=tp,
            inliers=np.array([bool(p["inlier"]) for p in pts], dtype=bool),
            residuals=np.array([_from_json_float(p["residual_px"]) for p in pts], dtype=np.float64),
            rmse_px=_from_json_float(d["rmse_px"]),
            loo_rmse_px=_from_json_float(d["loo_rmse_px"]),
            method=d["method"],
            meta=dict(d.get("meta", {})),
        )
    except (KeyError, TypeError) as exc:
        raise InputError(
            f"not a registration dict (as written by Registration.to_dict): missing {exc}"
        ) from exc


def consensus_model(model: str, n: int) -> str | None:
    """The linear model RANSAC uses to flag outliers before fitting ``model`` to ``n`` points.

    The requested linear model itself (projective for projective), affine for ``polynomial2`` and ``tps``;
    with few points a simpler model (``similarity``) so that minimal samples still leave redundancy: a model
    with minimal sample ``k`` is used only from ``2 k`` points. ``None`` when even that is impossible
    (fewer than 4 points), or for ``identity``.
    """
    if model == "identity":
        return None
    order = ["projective", "affine", "similarity"]
    want = {"similarity": "similarity", "affine": "affine", "projective": "projective"}.get(model, "affine")
    for cand in order[order.index(want) :]:
        if n >= 2 * SAMPLE_SIZE[cand]:
            return cand
    return None


def fit_registration(
    tp: TiePoints,
    model: str = "affine",
    *,
    robust: bool = True,
    ransac_threshold_px: float = 3.0,
    ransac_iterations: int = 2000,
    seed: int = 0,
    method: str = "tiepoints",
) -> Registration:
    """Fit a transform model to tie points, flagging outliers.

    With ``robust=True``, RANSAC on a linear consensus model (see :func:`consensus_model`; minimal samples drawn
    with probability proportional to ``tp.score`` when present) finds the inliers; they are polished by
    refitting the requested model (``polynomial2`` for ``tps``) and re-flagging every point against
    ``ransac_threshold_px`` until the flags settle. The requested model is finally fitted to the inliers
    (weighted by ``tp.score`` when present). Outliers are flagged in ``inliers``, never dropped.

    Args:
        tp: the tie points.
        model: one of ``identity``, ``similarity``, ``affine``, ``projective``, ``polynomial2``, ``tps``.
        robust: flag outliers with RANSAC; ``False`` fits all points (and flags none).
        ransac_threshold_px: inlier distance in SAR pixels.
        ransac_iterations: most RANSAC samples (sampling stops earlier at 99.9 % confidence).
        seed: RANSAC seed; the result is deterministic for a seed.
        method: provenance recorded in the result: ``tiepoints``, ``geocoding``, ``identity`` or ``auto``.

    Returns:
        The :class:`Registration`.

    Raises:
        InputError: unknown model or method, or invalid RANSAC settings.
        TiePointError: too few points for the model, a degenerate configuration, or fewer RANSAC inliers
            than the model needs (the message says how many were found).

    Convention:
        Pixel coordinates x = column, y = row, 0-based, pixel centres at integers; the transform maps
        optical -> SAR and residuals are in SAR pixels.
    """
    cls = model_class(model)
    if method not in METHODS:
        raise InputError(f"unknown registration method {method!r}; choose one of: {', '.join(METHODS)}")
    n = len(tp)
    if n < cls.min_points:
        raise TiePointError(f"{model} needs at least {cls.min_points} tie points, got {n}")
    opt, sar = tp.opt_xy, tp.sar_xy
    weights = None if tp.score is None else np.clip(tp.score, 0.0, None)
    if weights is not None and not (weights > 0).any():
        weights = None
    meta: dict[str, Any] = {
        "robust": bool(robust),
        "ransac_threshold_px": float(ransac_threshold_px),
        "seed": seed,
    }

    inliers = np.ones(n, dtype=bool)
    if model == "identity":
        if robust:
            inliers = np.sqrt(((opt - sar) ** 2).sum(axis=1)) <= ransac_threshold_px
    elif robust:
        cmodel = consensus_model(model, n)
        if cmodel is None:
            meta["ransac"] = f"skipped: {n} tie points are too few to flag outliers"
            logger.info("%s: %d tie points are too few for RANSAC; fitting all of them", model, n)
        else:
            res = ransac(
                opt,
                sar,
                cmodel,
                threshold_px=ransac_threshold_px,
                max_iterations=ransac_iterations,
                seed=seed,
                probabilities=weights,
            )
            inliers = res.inliers
            meta.update(consensus_model=cmodel, ransac_samples=res.iterations)
            polish = "polynomial2" if model == "tps" else model
            if polish != cmodel and inliers.sum() >= 2 * model_class(polish).min_points:
                inliers = refine_inliers(polish, opt, sar, inliers, ransac_threshold_px, weights)
        n_in = int(inliers.sum())
        if n_in < cls.min_points:
            raise TiePointError(
                f"RANSAC kept {n_in} of {n} tie points within {ransac_threshold_px:g} px, but {model} needs at "
                f"least {cls.min_points}: check the tie points or raise ransac_threshold_px"
            )

    w_in = None if weights is None else weights[inliers]
    transform = fit_transform(model, opt[inliers], sar[inliers], w_in)
    if robust and model in ("similarity", "affine", "projective", "polynomial2"):
        # the final least-squares fit moves a little: re-flag once against it, refit if anything changed
        r = np.sqrt(((transform.forward(opt) - sar) ** 2).sum(axis=1))
        again = r <= ransac_threshold_px
        if not np.array_equal(again, inliers) and again.sum() >= cls.min_points:
            inliers = again
            w_in = None if weights is None else weights[inliers]
            transform = fit_transform(model, opt[inliers], sar[inliers], w_in)

    residuals = np.sqrt(((transform.forward(opt) - sar) ** 2).sum(axis=1))
    rmse = float(np.sqrt(np.mean(residuals[inliers] ** 2))) if inliers.any() else float("nan")
    loo = _loo_rmse(model, transform, opt[inliers], sar[inliers], w_in)
    reg = Registration(
        model=model,
        transform=transform,
        tiepoints=tp,
        inliers=inliers,
        residuals=residuals,
        rmse_px=rmse,
        loo_rmse_px=loo,
        method=method,
        meta=meta,
    )
    logger.info("registration: %s", reg.summary())
    return reg


def identity_registration(width: int, height: int) -> Registration:
    """The identity registration of an already aligned pair (method ``"identity"``).

    Its tie points are a 3 x 3 grid over the image (corners, edge midpoints, centre), identical in both
    grids, so the result looks like any other registration downstream.

    Args:
        width: SAR (= optical) image width in pixels.
        height: SAR (= optical) image height in pixels.

    Returns:
        A :class:`Registration` with an :class:`IdentityTransform`, zero residuals and NaN leave-one-out RMSE.

    Raises:
        InputError: non-positive size.

    Convention:
        Pixel coordinates x = column, y = row, 0-based, pixel centres at integers; optical == SAR.
    """
    if width < 1 or height < 1:
        raise InputError(f"image size must be positive, got {width}x{height}")
    xs = np.unique(np.array([0.0, (width - 1) / 2.0, width - 1.0]))
    ys = np.unique(np.array([0.0, (height - 1) / 2.0, height - 1.0]))
    gx, gy = np.meshgrid(xs, ys)
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    tp = TiePoints(xy, xy.copy(), score=np.ones(len(xy)), source="identity")
    return Registration(
        model="identity",
        transform=IdentityTransform(),
        tiepoints=tp,
        inliers=np.ones(len(xy), dtype=bool),
        residuals=np.zeros(len(xy)),
        rmse_px=0.0,
        loo_rmse_px=float("nan"),
        method="identity",
        meta={"width": int(width), "height": int(height)},
    )


# ------------------------------------------------------------------------------------------------- leave-one-out


def loo_residuals(
    model: str, transform: Transform, opt: np.ndarray, sar: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray | None:
    """Leave-one-out residual vectors of a transform fitted (by :func:`fit_transform`) to exactly these points.

    Closed forms, no refitting: the hat-matrix identity ``e_loo = (I - H_ii)^-1 e_i`` for the models that are
    linear in their parameters (similarity, affine, polynomial2, weighted too); for projective an exact
    weighted-DLT refit per point through a rank-2 downdate of the 9 x 9 normal matrix (in the full set's
    normalisation); for tps Rippa's formula ``c_i / (A^-1)_ii``.

    Args:
        model: the model name ``transform`` was fitted with.
        transform: the fitted transform.
        opt: ``(N, 2)`` optical points it was fitted on.
        sar: ``(N, 2)`` SAR points it was fitted on.
        weights: the fit's weights, or ``None``.

    Returns:
        ``(N, 2)`` vectors ``sar_i - f_{-i}(opt_i)`` in SAR pixels (NaN rows where point ``i`` cannot be left
        out), or ``None`` for ``identity``.

    Convention:
        Pixel coordinates x = column, y = row, pixel centres at integers; SAR pixels.
    """
    n = len(opt)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if model == "identity" or n == 0:
        return None
    if model == "tps":
        if not isinstance(transform, ThinPlateSplineTransform):
            raise InputError(f"model 'tps' but the transform is a {type(transform).__name__}")
        return transform.loo_residuals(w)
    on = _apply_matrix(_hartley(opt), opt)
    if model == "projective":
        return _loo_projective(opt, sar, w)
    e = sar - transform.forward(opt)
    d = _design(model, on)  # (N, 2, p)
    g = np.einsum("n,nap,naq->pq", w, d, d)
    try:
        ginv = np.linalg.inv(g)
    except np.linalg.LinAlgError:
        return np.full((n, 2), np.nan)
    h = np.einsum("nap,pq,nbq->nab", d, ginv, d) * w[:, None, None]
    m = np.eye(2)[None] - h
    out = np.full((n, 2), np.nan)
    det = np.linalg.det(m)
    ok = np.abs(det) > 1e-9
    if ok.any():
        out[ok] = np.linalg.solve(m[ok], e[ok][..., None])[..., 0]
    return out


def _loo_projective(opt: np.ndarray, sar: np.ndarray, w: np.ndarray) -> np.ndarray:
    n = len(opt)
    t_opt, t_sar = _hartley(opt), _hartley(sar)
    on, sn = _apply_matrix(t_opt, opt), _apply_matrix(t_sar, sar)
    a = (_dlt_rows(on, sn) * np.sqrt(np.repeat(w, 2))[:, None]).reshape(n, 2, 9)
    full = np.einsum("nai,naj->ij", a, a)
    ai = np.einsum("nai,naj->nij", a, a)
    evals, evecs = np.linalg.eigh(full[None] - ai)  # ascending eigenvalues
    hn = evecs[:, :, 0].reshape(n, 3, 3)
    ok = evals[:, 1] > 1e-12 * np.maximum(evals[:, -1], 1e-300)
    inv_t_sar = np.linalg.inv(t_sar)
    hs = inv_t_sar[None] @ hn @ t_opt[None]
    p = np.concatenate([opt, np.ones((n, 1))], axis=1)
    q = np.einsum("nij,nj->ni", hs, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        pred = q[:, :2] / q[:, 2:]
    out = sar - pred
    out[~ok] = np.nan
    return out


def _loo_rmse(
    model: str, transform: Transform, opt: np.ndarray, sar: np.ndarray, weights: np.ndarray | None
) -> float:
    """Leave-one-out RMSE (SAR pixels) over the given points; NaN unless every point can be left out."""
    if len(opt) <= model_class(model).min_points:
        return float("nan")
    e = loo_residuals(model, transform, opt, sar, weights)
    if e is None:
        return float("nan")
    r2 = (e**2).sum(axis=1)
    if not np.isfinite(r2).all():
        return float("nan")
    return float(np.sqrt(r2.mean()))


def _json_float(v: float) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def _from_json_float(v: float | None) -> float:
    return float("nan") if v is None else float(v)
