"""FFT template matching of feature channels, with sub-pixel peaks and a reliability score per point.

For each point a ``T x T`` template of the reference features (the optical image, already warped onto the SAR
grid by the current transform estimate) is compared with every position of a ``(T + 2r) x (T + 2r)`` window of the
SAR features, i.e. every shift in ``[-r, r]^2``. The similarity is the zero-mean normalised cross-correlation
summed over channels, computed for all shifts at once with FFTs (one batch of points at a time) and local sums
for the normaliser. The peak is refined to sub-pixel precision with a parabola through its neighbours in x and y.

Reliability combines three signals that separate right from wrong matches on SAR-optical pairs:

* the peak correlation ``rho1``;
* distinctiveness: the margin to the second-highest *local maximum* outside a small exclusion disk, ``rho2``;
* whether the peak lies inside the search range (a peak on its border is a truncated slope, not a match).

``reliability = clip((rho1 - rho_floor) / (rho_full - rho_floor), 0, 1) * clip((rho1 - rho2) / margin_full, 0, 1)``
(0 for border peaks or unusable windows). The constants are in :class:`MatchParams`; the defaults were set on the
SRIF optical-SAR pairs so that 0.5 separates most right from wrong matches.

Convention:
    Points and offsets are in the shared (SAR) pixel grid: x = column, y = row, 0-based, pixel centres at
    integer coordinates. ``offset = (dx, dy)`` means the template content centred at ``p`` is found at ``p +
    offset`` in the target (SAR) features.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from saropt.errors import InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MatchParams:
    """How points are matched and scored.

    Attributes:
        template_size: side ``T`` of the square template in pixels.
        search_radius: largest shift ``r`` searched in x and y, in pixels.
        min_valid_fraction: a template (and the search window) needs at least this fraction of valid pixels.
        exclusion_radius: the second peak is searched outside this distance from the first, in pixels.
        rho_floor: peak correlation that gives reliability 0.
        rho_full: peak correlation from which the correlation factor is 1.
        margin_full: margin ``rho1 - rho2`` from which the distinctiveness factor is 1.
        batch: points per FFT batch (memory: ``batch * C * (T + 2r)^2 * 8`` bytes).
    """

    template_size: int = 48
    search_radius: int = 8
    min_valid_fraction: float = 0.6
    exclusion_radius: float = 3.0
    rho_floor: float = 0.1
    rho_full: float = 0.4
    margin_full: float = 0.15
    batch: int = 64


@dataclass(frozen=True, eq=False)
class MatchResult:
    """Per-point outcome of :func:`match_points` (arrays of length N, in input order).

    Attributes:
        offset: ``(N, 2)`` sub-pixel shift ``(dx, dy)`` of the best match (NaN where unusable).
        peak: ``(N,)`` correlation at the peak, ``rho1``.
        second: ``(N,)`` highest other local maximum outside the exclusion disk, ``rho2``.
        psr: ``(N,)`` peak-to-sidelobe ratio (peak minus mean, over standard deviation of the surface).
        reliability: ``(N,)`` score in ``[0, 1]`` (see module docstring).
        usable: ``(N,)`` bool: the windows had enough valid pixels and the peak is inside the search range.

    Convention:
        Offsets in pixels of the shared grid, x = column, y = row; target position = point + offset.
    """

    offset: np.ndarray
    peak: np.ndarray
    second: np.ndarray
    psr: np.ndarray
    reliability: np.ndarray
    usable: np.ndarray

    def __len__(self) -> int:
        return int(self.peak.shape[0])


def _box_sums(a: np.ndarray, t: int) -> np.ndarray:
    """Sums of ``a`` over every ``t x t`` box along the last two axes (valid positions only)."""
    c = np.cumsum(np.cumsum(a, axis=-1, dtype=np.float32), axis=-2)
    c = np.pad(c, [(0, 0)] * (a.ndim - 2) + [(1, 0), (1, 0)])
    return c[..., t:, t:] - c[..., :-t, t:] - c[..., t:, :-t] + c[..., :-t, :-t]


def correlation_surfaces(templates: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Zero-mean NCC of each template over each search window, summed over channels.

    Args:
        templates: ``(N, C, T, T)`` float32.
        windows: ``(N, C, S, S)`` float32 with ``S = T + 2r``.

    Returns:
        ``(N, 2r + 1, 2r + 1)`` float32 correlation in ``[-1, 1]``; index ``[i, r + dy, r + dx]`` is shift
        ``(dx, dy)``.

    Convention:
        Shift ``(dx, dy)`` compares template pixel ``(u, v)`` with window pixel ``(u + r + dx, v + r + dy)``.
    """
    n, c, t, _ = templates.shape
    s = windows.shape[-1]
    k = s - t + 1
    t0 = templates - templates.mean(axis=(2, 3), keepdims=True)
    tnorm = np.sqrt(np.einsum("ncij,ncij->n", t0, t0, dtype=np.float64))
    size = sfft.next_fast_len(s, real=True)
    ft = sfft.rfft2(t0, s=(size, size), axes=(2, 3), workers=-1)
    fw = sfft.rfft2(windows, s=(size, size), axes=(2, 3), workers=-1)
    prod = np.einsum("ncij,ncij->nij", np.conj(ft), fw)
    num = sfft.irfft2(prod, s=(size, size), axes=(1, 2), workers=-1)[:, :k, :k]
    sums = _box_sums(windows, t)  # (N, C, k, k)
    sq = _box_sums(np.einsum("ncij,ncij->nij", windows, windows)[:, None], t)[:, 0]
    var = sq - np.einsum("ncij,ncij->nij", sums, sums) / float(t * t)
    den = tnorm[:, None, None] * np.sqrt(np.maximum(var, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 1e-9, num / np.maximum(den, 1e-30), 0.0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _subpixel(surface: np.ndarray, iy: np.ndarray, ix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parabolic sub-pixel offsets of peaks at integer indices (clamped to half a pixel)."""
    n = surface.shape[0]
    idx = np.arange(n)
    k = surface.shape[-1]
    ixl, ixr = np.clip(ix - 1, 0, k - 1), np.clip(ix + 1, 0, k - 1)
    iyu, iyd = np.clip(iy - 1, 0, k - 1), np.clip(iy + 1, 0, k - 1)
    c = surface[idx, iy, ix].astype(np.float64)
    l_, r_ = surface[idx, iy, ixl], surface[idx, iy, ixr]
    u_, d_ = surface[idx, iyu, ix], surface[idx, iyd, ix]
    with np.errstate(invalid="ignore", divide="ignore"):
        denx = l_ - 2 * c + r_
        deny = u_ - 2 * c + d_
        fx = np.where(denx < 0, 0.5 * (l_ - r_) / denx, 0.0)
        fy = np.where(deny < 0, 0.5 * (u_ - d_) / deny, 0.0)
    return np.clip(np.nan_to_num(fx), -0.5, 0.5), np.clip(np.nan_to_num(fy), -0.5, 0.5)


def analyse_surfaces(surface: np.ndarray, params: MatchParams) -> dict[str, np.ndarray]:
    """Peak, sub-pixel offset, second peak and PSR of correlation surfaces.

    Args:
        surface: ``(N, K, K)`` correlation surfaces, ``K = 2r + 1``.
        params: matching parameters (exclusion radius, reliability constants).

    Returns:
        Dict with ``offset (N, 2)``, ``peak``, ``second``, ``psr``, ``inside`` (peak not on the border),
        ``reliability`` (before the usability mask).

    Convention:
        Offsets ``(dx, dy)`` relative to the surface centre, x = column.
    """
    n, k, _ = surface.shape
    r = (k - 1) // 2
    flat = surface.reshape(n, -1)
    best = flat.argmax(axis=1)
    iy, ix = np.divmod(best, k)
    peak = flat[np.arange(n), best].astype(np.float64)
    fx, fy = _subpixel(surface, iy, ix)
    offset = np.stack([ix - r + fx, iy - r + fy], axis=1)
    inside = (ix > 0) & (ix < k - 1) & (iy > 0) & (iy < k - 1)
    # Second peak: highest local maximum outside the exclusion disk.
    locmax = surface >= ndimage.maximum_filter(surface, size=(1, 3, 3), mode="nearest")
    yy, xx = np.mgrid[0:k, 0:k]
    far = (yy[None] - iy[:, None, None]) ** 2 + (xx[None] - ix[:, None, None]) ** 2 > params.exclusion_radius**2
    cand = np.where(locmax & far, surface, -1.0)
    second = cand.reshape(n, -1).max(axis=1).astype(np.float64)
    second = np.where(second <= -1.0, surface.reshape(n, -1).min(axis=1), second)
    mean = flat.mean(axis=1)
    std = flat.std(axis=1)
    psr = (peak - mean) / np.maximum(std, 1e-9)
    f_rho = np.clip((peak - params.rho_floor) / (params.rho_full - params.rho_floor), 0.0, 1.0)
    f_margin = np.clip((peak - second) / params.margin_full, 0.0, 1.0)
    reliability = f_rho * f_margin
    return {
        "offset": offset,
        "peak": peak,
        "second": second,
        "psr": psr,
        "inside": inside,
        "reliability": reliability,
    }


def match_stacks(templates: np.ndarray, windows: np.ndarray, params: MatchParams) -> dict[str, np.ndarray]:
    """Match pre-extracted templates into their search windows, in batches.

    Args:
        templates: ``(N, C, T, T)`` float32 reference templates.
        windows: ``(N, C, T + 2r, T + 2r)`` float32 target windows (the template's zero-shift position is the
            window's centre).
        params: matching parameters (``search_radius`` must equal ``r``).

    Returns:
        The dict of :func:`analyse_surfaces` for all N points.

    Convention:
        Offsets ``(dx, dy)``, x = column: the template matches the window at its centre plus the offset.
    """
    n = templates.shape[0]
    out: dict[str, list[np.ndarray]] = {}
    for b0 in range(0, n, max(1, params.batch)):
        surf = correlation_surfaces(templates[b0 : b0 + params.batch], windows[b0 : b0 + params.batch])
        for k, v in analyse_surfaces(surf, params).items():
            out.setdefault(k, []).append(v)
    if n == 0:
        k = 2 * params.search_radius + 1
        return analyse_surfaces(np.zeros((0, k, k), np.float32), params)
    return {k: np.concatenate(v) for k, v in out.items()}


def _result(res: dict[str, np.ndarray], ok: np.ndarray) -> MatchResult:
    n = ok.shape[0]
    offset = np.full((n, 2), np.nan)
    peak = np.full(n, np.nan)
    second = np.full(n, np.nan)
    psr = np.full(n, np.nan)
    rel = np.zeros(n)
    inside = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(ok)
    offset[idx] = res["offset"]
    peak[idx] = res["peak"]
    second[idx] = res["second"]
    psr[idx] = res["psr"]
    inside[idx] = res["inside"]
    rel[idx] = res["reliability"]
    usable = ok & inside
    return MatchResult(
        offset=offset, peak=peak, second=second, psr=psr, reliability=np.where(usable, rel, 0.0), usable=usable
    )


def match_points(
    ref_features: np.ndarray,
    ref_valid: np.ndarray,
    tgt_features: np.ndarray,
    tgt_valid: np.ndarray,
    points_xy: np.ndarray,
    params: MatchParams | None = None,
) -> MatchResult:
    """Match templates of ``ref_features`` around points into ``tgt_features``.

    Args:
        ref_features: ``(C, H, W)`` reference (warped optical) features on the shared grid.
        ref_valid: ``(H, W)`` bool validity of ``ref_features``.
        tgt_features: ``(C, H, W)`` target (SAR) features on the same grid.
        tgt_valid: ``(H, W)`` bool validity of ``tgt_features``.
        points_xy: ``(N, 2)`` integer-valued template centres ``(x, y)``.
        params: template size, search radius and reliability constants.

    Returns:
        A :class:`MatchResult` in the order of ``points_xy``.

    Raises:
        InputError: if the feature arrays disagree in shape or the template/radius are too small.

    Convention:
        x = column, y = row, 0-based, pixel centres at integers. The template covers columns
        ``x - T//2 .. x - T//2 + T - 1``; the match is at ``points_xy + offset``.
    """
    params = params or MatchParams()
    if ref_features.shape != tgt_features.shape:
        raise InputError(f"feature shapes differ: {ref_features.shape} vs {tgt_features.shape}")
    pts = np.rint(np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)).astype(np.int64)
    c, h, w = ref_features.shape
    t, r = int(params.template_size), int(params.search_radius)
    if t < 4 or r < 1:
        raise InputError(f"template_size must be >= 4 and search_radius >= 1, got {t} and {r}")
    s = t + 2 * r
    half = t // 2
    pad = half + r + 1
    refp = np.pad(ref_features, ((0, 0), (pad, pad), (pad, pad)))
    tgtp = np.pad(tgt_features, ((0, 0), (pad, pad), (pad, pad)))
    # Integral images of the masks give each window's valid fraction cheaply.
    rv_int = _box_sums(np.pad(ref_valid, pad)[None].astype(np.float32), t)[0]
    tv_int = _box_sums(np.pad(tgt_valid, pad)[None].astype(np.float32), s)[0]
    in_image = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    x0 = np.where(in_image, pts[:, 0] - half + pad, 0)
    y0 = np.where(in_image, pts[:, 1] - half + pad, 0)
    ok = in_image.copy()
    ok[ok] = (rv_int[y0[ok], x0[ok]] / float(t * t) >= params.min_valid_fraction) & (
        tv_int[y0[ok] - r, x0[ok] - r] / float(s * s) >= params.min_valid_fraction
    )
    idx = np.flatnonzero(ok)
    tview = sliding_window_view(refp, (t, t), axis=(1, 2))  # (C, Hp-t+1, Wp-t+1, t, t)
    sview = sliding_window_view(tgtp, (s, s), axis=(1, 2))
    temps = np.ascontiguousarray(tview[:, y0[idx], x0[idx]].transpose(1, 0, 2, 3), dtype=np.float32)
    wins = np.ascontiguousarray(sview[:, y0[idx] - r, x0[idx] - r].transpose(1, 0, 2, 3), dtype=np.float32)
    return _result(match_stacks(temps, wins, params), ok)
