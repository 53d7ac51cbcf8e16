"""Geometric transform models between optical and SAR pixel grids (contract; implementations below).

Convention:
    A transform maps OPTICAL pixel coordinates to SAR pixel coordinates (``forward``), and ``inverse`` maps SAR
    pixel coordinates to optical ones (used to warp the optical image onto the SAR grid). Pixel coordinates:
    x = column, y = row, 0-based, pixel centres at integer coordinates. Linear models expose ``matrix``, the 3x3
    homogeneous matrix of ``forward`` in those coordinates.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from saropt.errors import InputError, TiePointError

logger = logging.getLogger(__name__)


class Transform(ABC):
    """A fitted optical -> SAR pixel mapping.

    Convention:
        ``forward``: optical (x=col, y=row) -> SAR (x=col, y=row); ``inverse``: SAR -> optical. 0-based, pixel
        centres at integer coordinates.
    """

    #: registry name: "identity", "similarity", "affine", "projective", "polynomial2", "tps"
    name: ClassVar[str]
    #: the fewest tie points the model can be fitted from
    min_points: ClassVar[int]

    @abstractmethod
    def forward(self, xy: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` optical pixel coordinates to SAR pixel coordinates."""

    @abstractmethod
    def inverse(self, xy: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` SAR pixel coordinates to optical pixel coordinates."""

    @property
    def matrix(self) -> np.ndarray | None:
        """3x3 matrix of ``forward`` for linear models, else ``None``."""
        return None

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters; ``transform_from_dict`` restores it."""


# ------------------------------------------------------------------------------------------------------ helpers

#: condition number (of a design in normalised coordinates) above which a configuration counts as degenerate
_COND_DEGENERATE = 1e8
#: the same, above which a warning is logged (the fit is legal but poorly constrained)
_COND_WARN = 1e4
_EVAL_CHUNK = 2048
#: Newton steps that polish the polynomial2 inverse (quadratic convergence from a ~0.1 px start)
_NEWTON_STEPS = 3
#: above this many points a thin-plate spline gets slow (a warning is logged)
_TPS_MANY = 2000


def _points(xy: np.ndarray, what: str = "points") -> np.ndarray:
    """``xy`` as a C-contiguous ``(N, 2)`` float64 array (raises :class:`InputError` on another shape)."""
    p = np.asarray(xy, dtype=np.float64)
    if p.ndim == 1 and p.shape[0] == 2:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != 2:
        raise InputError(f"{what} must be an (N, 2) array of (x, y), got shape {p.shape}")
    return np.ascontiguousarray(p)


def _check_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    """Validated ``(N,)`` float64 weights (all ones when ``None``)."""
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape[0] != n:
        raise InputError(f"weights must have one value per tie point: got {w.shape[0]} for {n} points")
    if not np.isfinite(w).all() or (w < 0).any():
        raise InputError("weights must be finite and non-negative")
    if n and not (w > 0).any():
        raise InputError("weights are all zero: at least some tie points need a positive weight")
    return w


def _hartley(xy: np.ndarray) -> np.ndarray:
    """3x3 similarity that moves the centroid to 0 and makes the mean distance from it sqrt(2) (Hartley)."""
    c = xy.mean(axis=0)
    d = float(np.sqrt(((xy - c) ** 2).sum(axis=1)).mean()) if len(xy) else 0.0
    s = np.sqrt(2.0) / d if d > 0 else 1.0
    return np.array([[s, 0.0, -s * c[0]], [0.0, s, -s * c[1]], [0.0, 0.0, 1.0]])


def _apply_matrix(m: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homogeneous matrix to ``(N, 2)`` points (affine fast path; NaN where w == 0)."""
    x, y = xy[:, 0], xy[:, 1]
    u = m[0, 0] * x + m[0, 1] * y + m[0, 2]
    v = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    if m[2, 0] == 0.0 and m[2, 1] == 0.0 and m[2, 2] == 1.0:
        return np.stack([u, v], axis=1)
    w = m[2, 0] * x + m[2, 1] * y + m[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(np.abs(w) > 1e-300, w, np.nan)
        return np.stack([u / w, v / w], axis=1)


def _n_distinct(opt_xy: np.ndarray, sar_xy: np.ndarray) -> int:
    """Number of distinct points, counting a pair as a duplicate when its optical or its SAR point repeats."""
    if len(opt_xy) == 0:
        return 0
    return min(_n_unique_rows(opt_xy), _n_unique_rows(sar_xy))


def _n_unique_rows(xy: np.ndarray) -> int:
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    s = xy[order]
    return 1 + int(np.count_nonzero((np.diff(s, axis=0) != 0).any(axis=1)))


def _check_count(name: str, min_points: int, opt_xy: np.ndarray, sar_xy: np.ndarray, w: np.ndarray) -> None:
    """Raise :class:`TiePointError` when there are too few (distinct, positively weighted) points."""
    n = len(opt_xy)
    if n < min_points:
        raise TiePointError(f"{name} needs at least {min_points} tie points, got {n}")
    pos = w > 0
    n_pos = int(pos.sum())
    if n_pos < min_points:
        raise TiePointError(
            f"{name} needs at least {min_points} tie points with a positive weight, got {n_pos} of {n}"
        )
    n_distinct = _n_distinct(opt_xy[pos], sar_xy[pos])
    if n_distinct < min_points:
        raise TiePointError(
            f"{name} needs at least {min_points} distinct tie points, got {n_distinct} distinct of {n} "
            "(duplicate points); remove the duplicates or add points"
        )


def _condition(a: np.ndarray) -> float:
    """2-norm condition number of a matrix (inf when rank-deficient)."""
    s = np.linalg.svd(a, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else float("inf")


def _check_spread(name: str, design: np.ndarray, n: int, what: str) -> None:
    """Raise :class:`TiePointError` when a normalised design matrix is (nearly) rank-deficient."""
    cond = _condition(design)
    if not cond < _COND_DEGENERATE:
        raise TiePointError(
            f"{name} cannot be fitted from these {n} tie points: they are {what}; "
            "add tie points spread across the image"
        )
    if cond > _COND_WARN:
        logger.warning(
            "%s fit is poorly constrained (condition number %.3g): tie points are %s", name, cond, what
        )


def _poly2_terms(xn: np.ndarray) -> np.ndarray:
    """``(N, 6)`` second-order monomials ``1, x, y, x^2, x*y, y^2`` of normalised points."""
    x, y = xn[:, 0], xn[:, 1]
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


# ------------------------------------------------------------------------------------------------ linear models


class LinearTransform(Transform):
    """A transform given by one invertible 3x3 homogeneous matrix (identity, similarity, affine, projective).

    Args:
        matrix: 3x3 matrix of ``forward`` (optical -> SAR). Scaled so that ``matrix[2, 2] == 1`` when possible.

    Raises:
        InputError: if the matrix is not 3x3, not finite, singular, or not of this model's form.

    Convention:
        ``forward``: optical (x=col, y=row) -> SAR (x=col, y=row), ``[x', y', w]^T = matrix @ [x, y, 1]^T``;
        ``inverse`` uses the inverse matrix. 0-based, pixel centres at integer coordinates.
    """

    name: ClassVar[str] = "linear"
    min_points: ClassVar[int] = 0

    def __init__(self, matrix: np.ndarray | Sequence[Sequence[float]]) -> None:
        m = np.array(matrix, dtype=np.float64)
        if m.shape == (2, 3):
            m = np.vstack([m, [0.0, 0.0, 1.0]])
        if m.shape != (3, 3) or not np.isfinite(m).all():
            raise InputError(f"{self.name} matrix must be a finite 3x3 (or 2x3) matrix, got shape {m.shape}")
        if abs(m[2, 2]) > 1e-12:
            m = m / m[2, 2]
        # Hadamard ratio |det| / prod(row norms): scale-free, unlike the condition number with large offsets
        if not abs(np.linalg.det(m)) > 1e-14 * float(np.prod(np.linalg.norm(m, axis=1))):
            raise InputError(f"{self.name} matrix is singular: {m.tolist()}")
        self._check_form(m)
        self._m = m
        minv = np.linalg.inv(m)
        if abs(minv[2, 2]) > 1e-12:
            minv = minv / minv[2, 2]
        if m[2, 0] == 0.0 and m[2, 1] == 0.0:
            minv[2] = (0.0, 0.0, 1.0)  # keep the affine fast path exact
        self._minv = minv

    def _check_form(self, m: np.ndarray) -> None:
        """Raise :class:`InputError` if ``m`` is not of this model's form (any invertible matrix here)."""

    @property
    def matrix(self) -> np.ndarray:
        """3x3 matrix of ``forward`` (optical -> SAR pixels), a copy."""
        return self._m.copy()

    @property
    def inverse_matrix(self) -> np.ndarray:
        """3x3 matrix of ``inverse`` (SAR -> optical pixels), a copy."""
        return self._minv.copy()

    def forward(self, xy: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` optical pixel coordinates to SAR pixel coordinates.

        Convention:
            x = column, y = row, 0-based, pixel centres at integers; optical -> SAR.
        """
        return _apply_matrix(self._m, _points(xy))

    def inverse(self, xy: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` SAR pixel coordinates to optical pixel coordinates.

        Convention:
            x = column, y = row, 0-based, pixel centres at integers; SAR -> optical.
        """
        return _apply_matrix(self._minv, _points(xy))

    def to_dict(self) -> dict[str, Any]:
        """``{"model": name, "matrix": 3x3 nested list}`` (JSON-serialisable, exact round trip)."""
        return {"model": self.name, "matrix": self._m.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearTransform:
        """Restore from :meth:`to_dict` output."""
        try:
            return cls(d["matrix"])
        except KeyError as exc:
            raise InputError(f"{cls.name} transform dict needs a 'matrix' entry") from exc

    @classmethod
    def fit(
        cls, opt_xy: np.ndarray, sar_xy: np.ndarray, weights: np.ndarray | None = None
    ) -> LinearTransform:
        """Weighted least-squares fit to tie points (see :func:`fit_transform`).

        Convention:
            ``opt_xy`` / ``sar_xy``: ``(N, 2)`` pixel coordinates (x = column, y = row, pixel centres at
            integers) of the same points; the result maps optical -> SAR.
        """
        opt, sar = _points(opt_xy, "opt_xy"), _points(sar_xy, "sar_xy")
        if opt.shape != sar.shape:
            raise TiePointError(f"{len(opt)} optical points but {len(sar)} SAR points")
        w = _check_weights(weights, len(opt))
        _check_count(cls.name, cls.min_points, opt, sar, w)
        return cls(cls._fit_matrix(opt, sar, w))

    @classmethod
    def _fit_matrix(cls, opt: np.ndarray, sar: np.ndarray, w: np.ndarray) -> np.ndarray:
        raise InputError(f"{cls.name} cannot be fitted")  # pragma: no cover - overridden

    def __repr__(self) -> str:
        return f"{type(self).__name__}({np.array2string(self._m, precision=6, separator=', ')})"


class IdentityTransform(LinearTransform):
    """The identity: optical and SAR pixel grids already coincide.

    Convention:
        ``forward(xy) == inverse(xy) == xy``; x = column, y = row, 0-based, pixel centres at integers.
    """

    name: ClassVar[str] = "identity"
    min_points: ClassVar[int] = 0

    def __init__(self, matrix: np.ndarray | Sequence[Sequence[float]] | None = None) -> None:
        super().__init__(np.eye(3) if matrix is None else matrix)

    def _check_form(self, m: np.ndarray) -> None:
        if not np.allclose(m, np.eye(3), rtol=0, atol=1e-12):
            raise InputError(f"identity matrix expected, got {m.tolist()}")

    def forward(self, xy: np.ndarray) -> np.ndarray:
        return _points(xy).copy()

    def inverse(self, xy: np.ndarray) -> np.ndarray:
        return _points(xy).copy()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IdentityTransform:
        return cls(d.get("matrix"))

    @classmethod
    def fit(
        cls, opt_xy: np.ndarray, sar_xy: np.ndarray, weights: np.ndarray | None = None
    ) -> IdentityTransform:
        """The identity (nothing is fitted; the points are only checked for shape)."""
        opt, sar = _points(opt_xy, "opt_xy"), _points(sar_xy, "sar_xy")
        if opt.shape != sar.shape:
            raise TiePointError(f"{len(opt)} optical points but {len(sar)} SAR points")
        return cls()


class SimilarityTransform(LinearTransform):
    """Rotation, isotropic scale and translation: ``[[a, -b, tx], [b, a, ty], [0, 0, 1]]``.

    Convention:
        Optical -> SAR pixels; x = column, y = row, 0-based, pixel centres at integers. Because y points down,
        a positive angle rotates clockwise on screen.
    """

    name: ClassVar[str] = "similarity"
    min_points: ClassVar[int] = 2

    def _check_form(self, m: np.ndarray) -> None:
        tol = 1e-9 * max(1.0, float(np.abs(m[:2, :2]).max()))
        if (
            abs(m[2, 0]) > 1e-12
            or abs(m[2, 1]) > 1e-12
            or abs(m[0, 0] - m[1, 1]) > tol
            or abs(m[0, 1] + m[1, 0]) > tol
        ):
            raise InputError(
                f"similarity matrix must be [[a, -b, tx], [b, a, ty], [0, 0, 1]], got {m.tolist()}"
            )

    @property
    def scale(self) -> float:
        """Scale factor (SAR pixels per optical pixel)."""
        return float(np.hypot(self._m[0, 0], self._m[1, 0]))

    @property
    def angle_deg(self) -> float:
        """Rotation angle in degrees (``atan2(b, a)``)."""
        return float(np.degrees(np.arctan2(self._m[1, 0], self._m[0, 0])))

    @classmethod
    def from_params(cls, scale: float, angle_deg: float, tx: float, ty: float) -> SimilarityTransform:
        """``forward(x) = scale * R(angle) @ x + (tx, ty)``.

        Convention:
            Optical -> SAR pixels; x = column, y = row, pixel centres at integers.
        """
        a = scale * np.cos(np.radians(angle_deg))
        b = scale * np.sin(np.radians(angle_deg))
        return cls([[a, -b, tx], [b, a, ty], [0.0, 0.0, 1.0]])

    @classmethod
    def _fit_matrix(cls, opt: np.ndarray, sar: np.ndarray, w: np.ndarray) -> np.ndarray:
        t_opt = _hartley(opt)
        on = _apply_matrix(t_opt, opt)
        design = _design("similarity", on).reshape(-1, 4)
        sw = np.sqrt(np.repeat(w, 2))[:, None]
        _check_spread(cls.name, design * sw, len(opt), "all at one location")
        a, b, tx, ty = np.linalg.lstsq(design * sw, sar.reshape(-1) * sw[:, 0], rcond=None)[0]
        return np.array([[a, -b, tx], [b, a, ty], [0.0, 0.0, 1.0]]) @ t_opt


class AffineTransform(LinearTransform):
    """A general affine map: ``[[a, b, c], [d, e, f], [0, 0, 1]]``.

    Convention:
        Optical -> SAR pixels; x = column, y = row, 0-based, pixel centres at integers.
    """

    name: ClassVar[str] = "affine"
    min_points: ClassVar[int] = 3

    def _check_form(self, m: np.ndarray) -> None:
        if abs(m[2, 0]) > 1e-12 or abs(m[2, 1]) > 1e-12:
            raise InputError(f"affine matrix must have last row [0, 0, 1], got {m.tolist()}")

    @classmethod
    def _fit_matrix(cls, opt: np.ndarray, sar: np.ndarray, w: np.ndarray) -> np.ndarray:
        t_opt = _hartley(opt)
        on = _apply_matrix(t_opt, opt)
        design = np.column_stack([on, np.ones(len(on))])
        sw = np.sqrt(w)[:, None]
        _check_spread(cls.name, design * sw, len(opt), "(nearly) collinear")
        coef = np.linalg.lstsq(design * sw, sar * sw, rcond=None)[0]  # (3, 2)
        return np.vstack([coef.T, [0.0, 0.0, 1.0]]) @ t_opt


class ProjectiveTransform(LinearTransform):
    """A homography (8 degrees of freedom), fitted by the normalised weighted DLT.

    Convention:
        Optical -> SAR pixels, ``[x', y', w] = H @ [x, y, 1]``, then ``(x'/w, y'/w)``; x = column, y = row,
        0-based, pixel centres at integers. Points where ``w`` is 0 map to NaN.
    """

    name: ClassVar[str] = "projective"
    min_points: ClassVar[int] = 4

    @classmethod
    def _fit_matrix(cls, opt: np.ndarray, sar: np.ndarray, w: np.ndarray) -> np.ndarray:
        n = len(opt)
        if n == 4 and (_has_collinear_triple(opt) or _has_collinear_triple(sar)):
            raise TiePointError(
                "projective cannot be fitted from these 4 tie points: 3 of them are collinear; "
                "add tie points spread across the image"
            )
        t_opt, t_sar = _hartley(opt), _hartley(sar)
        on, sn = _apply_matrix(t_opt, opt), _apply_matrix(t_sar, sar)
        a = _dlt_rows(on, sn) * np.sqrt(np.repeat(w, 2))[:, None]
        if a.shape[0] < 9:  # 4 points: 8 rows; pad so the SVD returns the full 9x9 right basis
            a = np.vstack([a, np.zeros((9 - a.shape[0], 9))])
        _, s, vt = np.linalg.svd(a, full_matrices=False)
        if not s[7] > s[0] / _COND_DEGENERATE:
            raise TiePointError(
                f"projective cannot be fitted from these {n} tie points: the configuration is degenerate "
                "(too many collinear points); add tie points spread across the image"
            )
        hn = vt[-1].reshape(3, 3)
        if not _condition(hn) < _COND_DEGENERATE:
            raise TiePointError(
                f"projective cannot be fitted from these {n} tie points: the configuration is degenerate "
                "(too many collinear points); add tie points spread across the image"
            )
        return np.linalg.inv(t_sar) @ hn @ t_opt


def _dlt_rows(on: np.ndarray, sn: np.ndarray) -> np.ndarray:
    """``(2N, 9)`` DLT rows for ``sn ~ H @ on`` (both already normalised)."""
    n = len(on)
    x, y = on[:, 0], on[:, 1]
    u, v = sn[:, 0], sn[:, 1]
    one, zero = np.ones(n), np.zeros(n)
    rx = np.stack([-x, -y, -one, zero, zero, zero, u * x, u * y, u], axis=1)
    ry = np.stack([zero, zero, zero, -x, -y, -one, v * x, v * y, v], axis=1)
    return np.stack([rx, ry], axis=1).reshape(2 * n, 9)


def _has_collinear_triple(xy: np.ndarray) -> bool:
    """Whether any 3 of the (few) points are collinear, relative to the points' spread."""
    t = _hartley(xy)
    p = _apply_matrix(t, xy)
    n = len(p)
    for i in range(n):
        for j in range(i + 1, n):
            for k in range(j + 1, n):
                d1, d2 = p[j] - p[i], p[k] - p[i]
                if abs(d1[0] * d2[1] - d1[1] * d2[0]) < 1e-6:
                    return True
    return False


def _design(model: str, xn: np.ndarray) -> np.ndarray:
    """``(N, 2, p)`` design of a model linear in its parameters, per point the x row then the y row.

    ``similarity``: ``x' = a x - b y + tx, y' = b x + a y + ty`` (p = 4); ``affine``: p = 6;
    ``polynomial2``: p = 12 (six monomials for x', six for y').
    """
    n = len(xn)
    x, y = xn[:, 0], xn[:, 1]
    if model == "similarity":
        one, zero = np.ones(n), np.zeros(n)
        return np.stack([np.stack([x, -y, one, zero], axis=1), np.stack([y, x, zero, one], axis=1)], axis=1)
    if model == "affine":
        base = np.column_stack([x, y, np.ones(n)])
    elif model == "polynomial2":
        base = _poly2_terms(xn)
    else:  # pragma: no cover - internal
        raise InputError(f"no linear design for {model}")
    z = np.zeros_like(base)
    return np.stack([np.hstack([base, z]), np.hstack([z, base])], axis=1)


# ------------------------------------------------------------------------------------------- non-linear models


class _Poly2Map:
    """One direction of a second-order polynomial map: ``out = terms((xy - center) / scale) @ coef``."""

    def __init__(self, center: np.ndarray, scale: np.ndarray, coef: np.ndarray) -> None:
        self.center = np.asarray(center, dtype=np.float64).reshape(2)
        self.scale = np.asarray(scale, dtype=np.float64).reshape(2)
        self.coef = np.asarray(coef, dtype=np.float64).reshape(6, 2)

    @classmethod
    def fit(cls, src: np.ndarray, dst: np.ndarray, w: np.ndarray, name: str) -> _Poly2Map:
        center = src.mean(axis=0)
        scale = src.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        terms = _poly2_terms((src - center) / scale)
        sw = np.sqrt(w)[:, None]
        _check_spread(
            name, terms * sw, len(src), "degenerate for a 2nd-order polynomial (collinear or on one conic)"
        )
        coef = np.linalg.lstsq(terms * sw, dst * sw, rcond=None)[0]
        return cls(center, scale, coef)

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        # explicit sums (not a BLAS product): a point's value never depends on the batch it is evaluated in
        u = (xy[:, 0] - self.center[0]) / self.scale[0]
        v = (xy[:, 1] - self.center[1]) / self.scale[1]
        uu, uv, vv = u * u, u * v, v * v
        c = self.coef
        out = np.empty((len(xy), 2))
        for k in (0, 1):
            out[:, k] = c[0, k] + c[1, k] * u + c[2, k] * v + c[3, k] * uu + c[4, k] * uv + c[5, k] * vv
        return out

    def jacobian(self, xy: np.ndarray) -> np.ndarray:
        """``(N, 2, 2)`` derivatives ``d out_k / d xy_l``."""
        u = (xy[:, 0] - self.center[0]) / self.scale[0]
        v = (xy[:, 1] - self.center[1]) / self.scale[1]
        c = self.coef
        j = np.empty((len(xy), 2, 2))
        for k in (0, 1):
            j[:, k, 0] = (c[1, k] + 2.0 * c[3, k] * u + c[4, k] * v) / self.scale[0]
            j[:, k, 1] = (c[2, k] + c[4, k] * u + 2.0 * c[5, k] * v) / self.scale[1]
        return j

    def to_dict(self) -> dict[str, Any]:
        return {"center": self.center.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Poly2Map:
        return cls(d["center"], d["scale"], d["coef"])


class _TPSMap:
    """One direction of a thin-plate spline ``f(p) = sum_i w_i U(|p - c_i|) + A [1, p]``, ``U(r) = r^2 log r``.

    Points are normalised (``(xy - center) * scale``) before the kernel is applied.
    """

    def __init__(
        self, center: np.ndarray, scale: float, centres: np.ndarray, weights: np.ndarray, affine: np.ndarray
    ) -> None:
        self.center = np.asarray(center, dtype=np.float64).reshape(2)
        self.scale = float(scale)
        self.centres = np.ascontiguousarray(np.asarray(centres, dtype=np.float64).reshape(-1, 2))
        self.weights = np.ascontiguousarray(np.asarray(weights, dtype=np.float64).reshape(-1, 2))
        self.affine = np.asarray(affine, dtype=np.float64).reshape(3, 2)
        # kernel weights per output coordinate, contiguous for the row reductions in __call__
        self._wx = np.ascontiguousarray(self.weights[:, 0])
        self._wy = np.ascontiguousarray(self.weights[:, 1])
        #: diagonal of the inverse system matrix, kept from fitting for leave-one-out residuals
        self.loo_diag: np.ndarray | None = None
        self.loo_weights: np.ndarray | None = None

    @staticmethod
    def system(cn: np.ndarray, smoothing: float, w: np.ndarray) -> np.ndarray:
        """The ``(N + 3, N + 3)`` TPS system matrix for normalised centres ``cn``."""
        n = len(cn)
        k = _tps_kernel(cn, cn)
        if smoothing > 0:
            k[np.diag_indices(n)] += smoothing / np.maximum(w, 1e-12)
        p = np.column_stack([np.ones(n), cn])
        a = np.zeros((n + 3, n + 3))
        a[:n, :n] = k
        a[:n, n:] = p
        a[n:, :n] = p.T
        return a

    @classmethod
    def fit(
        cls,
        src: np.ndarray,
        dst: np.ndarray,
        w: np.ndarray,
        smoothing: float,
        name: str,
        with_loo: bool = False,
    ) -> _TPSMap:
        t = _hartley(src)
        center = src.mean(axis=0)
        scale = float(t[0, 0])
        cn = (src - center) * scale
        p = np.column_stack([np.ones(len(cn)), cn])
        _check_spread(name, p * np.sqrt(w)[:, None], len(src), "(nearly) collinear")
        a = cls.system(cn, smoothing, w)
        rhs = np.zeros((len(cn) + 3, 2))
        rhs[: len(cn)] = dst
        try:
            if with_loo:  # the inverse gives the solution and Rippa's leave-one-out diagonal in one go
                ainv = np.linalg.inv(a)
                sol = ainv @ rhs
            else:
                sol = np.linalg.solve(a, rhs)
        except np.linalg.LinAlgError as exc:
            raise TiePointError(
                f"{name} cannot be fitted from these {len(src)} tie points: the spline system is singular "
                "(duplicate or degenerate points); remove duplicates or set smoothing > 0"
            ) from exc
        if not np.isfinite(sol).all():
            raise TiePointError(
                f"{name} cannot be fitted from these {len(src)} tie points: degenerate system"
            )
        out = cls(center, scale, cn, sol[: len(cn)], sol[len(cn) :])
        if with_loo:
            out.loo_diag = np.diag(ainv)[: len(cn)].copy()
            out.loo_weights = w.copy()
        return out

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        out = np.empty((len(xy), 2))
        for s in range(0, len(xy), _EVAL_CHUNK):
            pn = (xy[s : s + _EVAL_CHUNK] - self.center) * self.scale
            u = _tps_kernel(pn, self.centres)
            # Row reductions (not BLAS): each point's value depends only on that point, never on the batch,
            # so warping a window in pieces gives byte-identical results.
            out[s : s + _EVAL_CHUNK, 0] = (u * self._wx).sum(axis=1)
            out[s : s + _EVAL_CHUNK, 1] = (u * self._wy).sum(axis=1)
            out[s : s + _EVAL_CHUNK] += (
                self.affine[0] + pn[:, :1] * self.affine[1] + pn[:, 1:] * self.affine[2]
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "center": self.center.tolist(),
            "scale": self.scale,
            "centres": self.centres.tolist(),
            "weights": self.weights.tolist(),
            "affine": self.affine.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _TPSMap:
        return cls(d["center"], d["scale"], d["centres"], d["weights"], d["affine"])


def _tps_kernel(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``(M, N)`` kernel ``U(r) = r^2 log r = 0.5 r^2 log r^2`` between points ``p`` and centres ``c``."""
    dx = p[:, :1] - c[:, 0]
    d2 = dx * dx
    dy = p[:, 1:] - c[:, 1]
    d2 += dy * dy
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.log(d2)
        u *= d2
    u *= 0.5
    u[d2 == 0.0] = 0.0
    return u


class _NonLinearTransform(Transform):
    """Shared parts of the transforms fitted separately in both directions (polynomial2, tps)."""

    def __init__(self, fwd: Any, inv: Any, domain: np.ndarray) -> None:
        self._fwd = fwd
        self._inv = inv
        self.domain = np.asarray(domain, dtype=np.float64).reshape(4)

    def forward(self, xy: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` optical pixel coordinates to SAR pixel coordinates.

        Convention:
            x = column, y = row, 0-based, pixel centres at integers; optical -> SAR.
        """
        return self._fwd(_points(xy))

    def inverse(self, xy: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` SAR pixel coordinates to optical pixel coordinates.

        Convention:
            x = column, y = row, 0-based, pixel centres at integers; SAR -> optical.
        """
        return self._inv(_points(xy))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(domain={self.domain.tolist()})"


def _prepare(
    name: str, min_points: int, opt_xy: np.ndarray, sar_xy: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    opt, sar = _points(opt_xy, "opt_xy"), _points(sar_xy, "sar_xy")
    if opt.shape != sar.shape:
        raise TiePointError(f"{len(opt)} optical points but {len(sar)} SAR points")
    w = _check_weights(weights, len(opt))
    _check_count(name, min_points, opt, sar, w)
    domain = np.concatenate([sar.min(axis=0), sar.max(axis=0)])
    return opt, sar, w, domain


class PolynomialTransform(_NonLinearTransform):
    """Second-order polynomial in both directions, each fitted by weighted least squares (GDAL-style).

    ``forward`` and the stored inverse polynomial are fitted independently from the same points (as GDAL does).
    ``inverse`` starts from that inverse polynomial and refines it with Newton steps on ``forward``, so that
    ``inverse(forward(x)) == x`` to about 1e-9 px wherever ``forward`` is invertible (the inverse of a quadratic
    is not a quadratic: the fitted inverse alone is off by about 0.1 px for 20 px of quadratic distortion over
    1000 px); where Newton does not improve on it (a fold far outside the points), the fitted inverse is kept.

    Attributes:
        domain: ``(xmin, ymin, xmax, ymax)`` of the SAR tie points the model was fitted on.

    Convention:
        ``forward``: optical -> SAR pixels; ``inverse``: SAR -> optical. x = column, y = row, 0-based, pixel
        centres at integers. Coordinates are centred and scaled per axis before the monomials are formed.
    """

    name: ClassVar[str] = "polynomial2"
    min_points: ClassVar[int] = 6

    def inverse(self, xy: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` SAR pixel coordinates to optical pixel coordinates (see the class docstring).

        Convention:
            x = column, y = row, 0-based, pixel centres at integers; SAR -> optical.
        """
        target = _points(xy)
        start = self._inv(target)
        x = start.copy()
        for _ in range(_NEWTON_STEPS):
            r = target - self._fwd(x)
            j = self._fwd.jacobian(x)
            det = j[:, 0, 0] * j[:, 1, 1] - j[:, 0, 1] * j[:, 1, 0]
            with np.errstate(divide="ignore", invalid="ignore"):
                dx = (j[:, 1, 1] * r[:, 0] - j[:, 0, 1] * r[:, 1]) / det
                dy = (j[:, 0, 0] * r[:, 1] - j[:, 1, 0] * r[:, 0]) / det
            x[:, 0] += dx
            x[:, 1] += dy
        err0 = ((self._fwd(start) - target) ** 2).sum(axis=1)
        err1 = ((self._fwd(x) - target) ** 2).sum(axis=1)
        keep = ~(err1 <= err0)  # also where Newton produced NaN
        x[keep] = start[keep]
        return x

    @classmethod
    def fit(
        cls, opt_xy: np.ndarray, sar_xy: np.ndarray, weights: np.ndarray | None = None
    ) -> PolynomialTransform:
        """Fit both directions by weighted least squares (see :func:`fit_transform`).

        Convention:
            ``opt_xy`` / ``sar_xy``: ``(N, 2)`` pixel coordinates (x = column, y = row, pixel centres at
            integers) of the same points; ``forward`` maps optical -> SAR.
        """
        opt, sar, w, domain = _prepare(cls.name, cls.min_points, opt_xy, sar_xy, weights)
        return cls(_Poly2Map.fit(opt, sar, w, cls.name), _Poly2Map.fit(sar, opt, w, cls.name), domain)

    def to_dict(self) -> dict[str, Any]:
        """``{"model", "forward", "inverse", "domain"}`` (JSON-serialisable, exact round trip)."""
        return {
            "model": self.name,
            "forward": self._fwd.to_dict(),
            "inverse": self._inv.to_dict(),
            "domain": self.domain.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolynomialTransform:
        """Restore from :meth:`to_dict` output."""
        try:
            return cls(_Poly2Map.from_dict(d["forward"]), _Poly2Map.from_dict(d["inverse"]), d["domain"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"invalid polynomial2 transform dict: {exc}") from exc


class ThinPlateSplineTransform(_NonLinearTransform):
    """Thin-plate spline in both directions, each through the tie points (exact interpolation when
    ``smoothing == 0``; with ``smoothing > 0`` a regularised fit that no longer passes through them).

    Attributes:
        smoothing: regulariser added to the kernel diagonal (divided by each point's weight), in normalised
            units (points scaled to a mean distance of sqrt(2) from their centroid).
        domain: ``(xmin, ymin, xmax, ymax)`` of the SAR tie points the model was fitted on.

    Convention:
        ``forward``: optical -> SAR pixels; ``inverse``: SAR -> optical. x = column, y = row, 0-based, pixel
        centres at integers. Outside the points' hull a TPS tends to its affine part.
    """

    name: ClassVar[str] = "tps"
    min_points: ClassVar[int] = 3

    def __init__(self, fwd: _TPSMap, inv: _TPSMap, domain: np.ndarray, smoothing: float = 0.0) -> None:
        super().__init__(fwd, inv, domain)
        self.smoothing = float(smoothing)

    @classmethod
    def fit(
        cls,
        opt_xy: np.ndarray,
        sar_xy: np.ndarray,
        weights: np.ndarray | None = None,
        smoothing: float = 0.0,
    ) -> ThinPlateSplineTransform:
        """Fit both directions (see :func:`fit_transform`).

        Raises:
            InputError: ``smoothing`` is negative or not finite.
            TiePointError: too few, collinear, or (with ``smoothing == 0``) duplicate points.

        Convention:
            ``opt_xy`` / ``sar_xy``: ``(N, 2)`` pixel coordinates (x = column, y = row, pixel centres at
            integers) of the same points; ``forward`` maps optical -> SAR.
        """
        if not (np.isfinite(smoothing) and smoothing >= 0):
            raise InputError(f"tps smoothing must be finite and >= 0, got {smoothing}")
        opt, sar, w, domain = _prepare(cls.name, cls.min_points, opt_xy, sar_xy, weights)
        if len(opt) > _TPS_MANY:
            logger.warning(
                "tps with %d tie points: fitting costs O(N^3) and warping O(N) per lattice node; "
                "consider polynomial2 or fewer points",
                len(opt),
            )
        if smoothing == 0 and _n_distinct(opt, sar) < len(opt):
            raise TiePointError(
                f"tps needs distinct tie points: {len(opt) - _n_distinct(opt, sar)} of {len(opt)} are duplicates; "
                "remove them or set smoothing > 0"
            )
        fwd = _TPSMap.fit(opt, sar, w, smoothing, cls.name, with_loo=True)
        inv = _TPSMap.fit(sar, opt, w, smoothing, cls.name)
        return cls(fwd, inv, domain, smoothing)

    def loo_residuals(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Leave-one-out residuals of ``forward`` at its own points, in closed form (Rippa 1999).

        Args:
            weights: the per-point weights the transform was fitted with (only matter when smoothing > 0).

        Returns:
            ``(N, 2)`` SAR-pixel vectors ``sar_i - f_{-i}(opt_i)`` where ``f_{-i}`` is the spline refitted
            without point ``i`` (same smoothing).

        Convention:
            SAR pixels, x = column, y = row.
        """
        n = len(self._fwd.centres)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        fwd = self._fwd
        if fwd.loo_diag is not None and (self.smoothing == 0 or np.array_equal(fwd.loo_weights, w)):
            diag = fwd.loo_diag
        else:
            diag = np.diag(np.linalg.inv(_TPSMap.system(fwd.centres, self.smoothing, w)))[:n]
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._fwd.weights / diag[:, None]

    def to_dict(self) -> dict[str, Any]:
        """``{"model", "smoothing", "forward", "inverse", "domain"}`` (JSON-serialisable, exact round trip)."""
        return {
            "model": self.name,
            "smoothing": self.smoothing,
            "forward": self._fwd.to_dict(),
            "inverse": self._inv.to_dict(),
            "domain": self.domain.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ThinPlateSplineTransform:
        """Restore from :meth:`to_dict` output."""
        try:
            return cls(
                _TPSMap.from_dict(d["forward"]),
                _TPSMap.from_dict(d["inverse"]),
                d["domain"],
                float(d.get("smoothing", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"invalid tps transform dict: {exc}") from exc


# ------------------------------------------------------------------------------------------------- registry, API

MODELS: dict[str, type[Transform]] = {
    "identity": IdentityTransform,
    "similarity": SimilarityTransform,
    "affine": AffineTransform,
    "projective": ProjectiveTransform,
    "polynomial2": PolynomialTransform,
    "tps": ThinPlateSplineTransform,
}

#: models whose ``forward`` is one 3x3 matrix
LINEAR_MODELS = ("identity", "similarity", "affine", "projective")


def model_class(model: str) -> type[Transform]:
    """The transform class registered as ``model``.

    Raises:
        InputError: ``model`` is not registered (the message lists the valid names).
    """
    try:
        return MODELS[model]
    except (KeyError, TypeError):
        raise InputError(f"unknown transform model {model!r}; choose one of: {', '.join(MODELS)}") from None


def fit_transform(
    model: str,
    opt_xy: np.ndarray,
    sar_xy: np.ndarray,
    weights: np.ndarray | None = None,
    **options: Any,
) -> Transform:
    """Fit a transform model to tie points (least squares; no outlier rejection: see ``fit_registration``).

    Args:
        model: one of :data:`MODELS`: ``"identity"``, ``"similarity"``, ``"affine"``, ``"projective"``,
            ``"polynomial2"``, ``"tps"``.
        opt_xy: ``(N, 2)`` optical pixel coordinates.
        sar_xy: ``(N, 2)`` SAR pixel coordinates of the same ground points.
        weights: optional ``(N,)`` non-negative weights (e.g. tie-point scores).
        **options: model options, e.g. ``smoothing=`` for ``"tps"``.

    Returns:
        The fitted :class:`Transform` (optical -> SAR).

    Raises:
        InputError: unknown model, bad array shapes or weights, or options the model does not take.
        TiePointError: too few points for the model (``"affine needs at least 3 tie points, got 2"``), or a
            degenerate configuration (collinear points, 3 collinear of 4 for projective, duplicates).

    Convention:
        Pixel coordinates, x = column, y = row, 0-based, pixel centres at integers; the result maps OPTICAL ->
        SAR (``forward``), its ``inverse`` maps SAR -> optical.

    Example:
        >>> t = fit_transform("affine", [[0, 0], [10, 0], [0, 10]], [[5, 5], [15, 5], [5, 15]])
        >>> t.forward([[1, 1]]).tolist()
        [[6.0, 6.0]]
    """
    cls = model_class(model)
    try:
        return cls.fit(opt_xy, sar_xy, weights, **options)  # type: ignore[attr-defined, no-any-return]
    except TypeError as exc:
        if options:
            raise InputError(f"{model} does not take the options {sorted(options)}: {exc}") from exc
        raise


def transform_from_dict(d: dict[str, Any]) -> Transform:
    """Restore a transform from :meth:`Transform.to_dict` output (the inverse of ``to_dict``).

    Raises:
        InputError: ``d`` is not a transform dict or names an unknown model.

    Convention:
        The restored transform maps optical -> SAR pixels like the original (bit-identical parameters).
    """
    if not isinstance(d, dict) or "model" not in d:
        raise InputError("a transform dict needs a 'model' entry (as written by Transform.to_dict)")
    return model_class(d["model"]).from_dict(d)  # type: ignore[attr-defined, no-any-return]
