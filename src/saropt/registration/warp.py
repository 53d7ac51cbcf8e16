"""Warping the optical image onto the SAR pixel grid, one SAR window at a time.

For every pixel of a SAR window the transform's ``inverse`` gives the optical position to sample; the optical
image is resampled there bilinearly with OpenCV's ``remap``. Only the optical window that covers those positions
is read (:func:`optical_window_for`), so a SAR window costs memory and I/O in proportion to its own size.

Sample positions:

* linear models (identity, similarity, affine, projective): exact per pixel, from the 3x3 inverse matrix;
* non-linear models (polynomial2, tps): the inverse is evaluated on a coarse lattice of SAR pixels (every
  ``step`` pixels, ``step`` a power of two chosen once per transform from its curvature so that bilinear
  interpolation of the lattice stays within about 0.05 px of the exact inverse) and interpolated bilinearly.

Fast path (``exact=False``; what :func:`warp_optical` and so a build use by default): linear models are
resampled with one ``cv2.warpAffine`` / ``cv2.warpPerspective`` call per band (``WARP_INVERSE_MAP``, bilinear,
constant border), about 3 times faster than computing and remapping per-pixel maps (2101 px RGB block: 41 vs
124 ms CPU). OpenCV computes the positions in fixed point and interpolates at 1/32 px, so positions differ from
the exact path's by at most about 1/32 px (tested: < 0.5 grey levels on smooth images, < 8.5 on pixel noise).
The result is deterministic for a given window, source window and transform: a build's units are fixed by its
plan, not by the number of workers, so builds stay byte-identical for any number of workers. It is *not*
byte-identical when a window is warped in pieces or from another source origin (OpenCV's fixed-point positions
depend on the window origin). Bilinear interpolation runs on the float32 values read (not on 8-bit values
mapped first), so the 8-bit mapping after the warp sees the same values as the exact path's.
Validity on the fast path: the source validity mask (all 255 when every source pixel is valid) is warped as
8-bit with the same bilinear interpolation and a pixel is valid where the result is 255, i.e. where invalid or
outside source pixels carry a bilinear weight below about 1/510 (0.002; the exact path's rule is 0.001);
when the four corners of an affine window map inside a fully valid source, every pixel is valid. A projective
window that reaches the horizon, non-linear models and sources over 32000 px take the exact path.

Determinism (exact path): every position is a function of its own SAR pixel only (lattice nodes sit at absolute multiples of
``step``, evaluation never depends on the batch) and is rounded to 1/256 px in absolute optical coordinates
before the source origin is subtracted (exactly: multiples of 1/256 px are exact in float32). So warping a window
in pieces, or in any number of worker processes, gives byte-identical output to warping it whole. (OpenCV 5
interpolates float maps exactly; OpenCV 4 rounds them to 1/32 px, deterministically.)

Validity: a SAR pixel is valid when the source pixels contributing to its bilinear sample are inside the source
and valid, tolerating a total weight below 0.001 on invalid ones (the validity mask is remapped like the data
and thresholded at 0.999; positions are multiples of 1/256 px, so a pixel outside the source always carries at
least 1/256). Invalid output pixels are 0, and invalid source pixels are zeroed before resampling.

Convention:
    Pixel coordinates, x = column, y = row, 0-based, pixel centres at integer coordinates (OpenCV ``remap``
    uses the same convention). Transforms map OPTICAL -> SAR; warping uses ``inverse`` (SAR -> optical). Arrays
    are ``(C, H, W)``; ``src[:, i, j]`` is optical pixel ``(src_origin[0] + j, src_origin[1] + i)``.
"""

from __future__ import annotations

import logging
import math
import weakref
from typing import TYPE_CHECKING

import numpy as np

from saropt.errors import InputError
from saropt.io.windows import Window
from saropt.registration.transforms import LinearTransform, Transform

if TYPE_CHECKING:  # pragma: no cover
    from saropt.io.raster import Scene

logger = logging.getLogger(__name__)

#: sample positions are rounded to 1/SUBPIXEL px (absolute optical coordinates) before use
SUBPIXEL = 256
#: output pixels per strip (bounds the temporary maps to a few MB and keeps them in cache)
_TILE_PIXELS = 1 << 17
#: widest strip (cv2.remap handles at most 32767 pixels a side)
_MAX_TILE_WIDTH = 8192
#: largest source array remap gets in one call (cv2 limit SHRT_MAX, with room for the margin)
_MAX_SRC_SIDE = 32000
#: lattice steps tried for non-linear maps, and the interpolation error allowed
_STEPS = (32, 16, 8, 4, 2, 1)
_MAP_TOLERANCE_PX = 0.05
_DEFAULT_STEP = 8
#: non-linear lattices up to this many nodes are evaluated once per window (else once per strip)
_MAX_CACHED_NODES = 1 << 21

_step_cache: weakref.WeakKeyDictionary[Transform, int] = weakref.WeakKeyDictionary()


# ------------------------------------------------------------------------------------------------ public API


def optical_window_for(transform: Transform, sar_window: Window, margin: int = 2) -> Window:
    """The optical pixel window needed to warp ``sar_window`` (bounding box of its sample positions).

    Linear models: the inverse of the window's corner pixels (a projective window that crosses the horizon
    uses its edges, sampled every 8 px, on the valid side). Non-linear models: the positions the warp samples
    along the window's four edges plus those at the lattice nodes inside it (so a fold inside the window is
    seen at lattice resolution). May extend outside the optical image.

    Args:
        transform: optical -> SAR transform.
        sar_window: SAR pixel window.
        margin: extra pixels on every side (>= 0).

    Returns:
        The optical :class:`Window`; an empty window (width 0) when no position is defined.

    Raises:
        InputError: negative margin.

    Convention:
        x = column, y = row, 0-based, pixel centres at integers. The window covers pixel centres
        ``floor(xmin) - margin`` .. ``floor(xmax) + 1 + margin``, so both bilinear neighbours of every sample.
    """
    if margin < 0:
        raise InputError(f"margin must be >= 0, got {margin}")
    if sar_window.width == 0 or sar_window.height == 0:
        return Window(sar_window.col_off, sar_window.row_off, 0, 0)
    return _window_for(_Sampler(transform, sar_window), sar_window, margin)


def warp_array(
    src: np.ndarray,
    src_valid: np.ndarray | None,
    transform: Transform,
    sar_window: Window,
    src_origin: tuple[int, int] = (0, 0),
    exact: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample an in-memory optical array onto a SAR window (bilinear).

    Args:
        src: ``(C, H, W)`` optical data (converted to float32 if needed); pixel ``(0, 0)`` is optical pixel
            ``src_origin``.
        src_valid: ``(H, W)`` bool validity of ``src``, or ``None`` when every pixel is valid.
        transform: optical -> SAR transform (its ``inverse`` gives the sample positions).
        sar_window: the SAR pixel window to produce.
        src_origin: ``(col, row)`` of ``src``'s first pixel in the optical image.
        exact: ``True`` (default): the exact path (1/256 px positions, piece-wise byte-identical, exact
            validity rule). ``False``: the fast path for linear models (see the module docstring); non-linear
            models and sources over 32000 px always take the exact path.

    Returns:
        ``(data, valid)``: ``(C, h, w)`` float32 on the SAR window grid and ``(h, w)`` bool. A pixel is
        invalid when its bilinear sample puts a weight of 0.001 (fast path: about 0.002) or more on pixels
        outside ``src`` or invalid in ``src_valid``; invalid pixels are 0.

    Raises:
        InputError: ``src`` is not 3-D or ``src_valid`` does not match it.

    Convention:
        x = column, y = row, 0-based, pixel centres at integers; ``data[:, i, j]`` is SAR pixel
        ``(col_off + j, row_off + i)``, sampled at optical position ``inverse((col_off + j, row_off + i))``.
    """
    return _warp(src, src_valid, _Sampler(transform, sar_window), sar_window, src_origin, exact)


def _warp(
    src: np.ndarray,
    src_valid: np.ndarray | None,
    sampler: _Sampler,
    sar_window: Window,
    src_origin: tuple[int, int],
    exact: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    src = np.asarray(src)
    if src.ndim != 3:
        raise InputError(f"src must be a (C, H, W) array, got shape {src.shape}; use src[None] for one band")
    if src.dtype != np.float32:
        src = src.astype(np.float32)
    c, hs, ws = src.shape
    mask = None
    if src_valid is not None:
        src_valid = np.asarray(src_valid, dtype=bool)
        if src_valid.shape != (hs, ws):
            raise InputError(f"src_valid has shape {src_valid.shape}, expected {(hs, ws)}")
        bad = np.flatnonzero(~src_valid.ravel())
        if bad.size:
            mask = src_valid.astype(np.float32)
            flat = src.reshape(c, -1)
            if np.any(flat[:, bad] != 0):  # zero invalid pixels (no NaN or garbage leaks into valid ones)
                src = src.copy()
                src.reshape(c, -1)[:, bad] = 0.0
    h, w = sar_window.height, sar_window.width
    if h == 0 or w == 0 or hs == 0 or ws == 0:
        return np.zeros((c, h, w), dtype=np.float32), np.zeros((h, w), dtype=bool)
    out = np.empty((c, h, w), dtype=np.float32)  # every tile writes all of its pixels
    valid = np.empty((h, w), dtype=bool)

    ox, oy = int(src_origin[0]), int(src_origin[1])
    if not exact and _fast_ok(sampler, sar_window) and hs <= _MAX_SRC_SIDE and ws <= _MAX_SRC_SIDE:
        _warp_linear_fast(
            src, src_valid if mask is not None else None, sampler, sar_window, (ox, oy), out, valid
        )
        return out, valid
    # 3 or 4 bands are interleaved so that one remap call resamples them all (always, whatever the source
    # size: a pixel must take the same OpenCV code path in every window). Not 2: OpenCV 5 interpolates 1, 3
    # and 4 channels at the exact float position but rounds 2-channel images to 1/32 px.
    interleave = c in (3, 4)
    large = hs > _MAX_SRC_SIDE or ws > _MAX_SRC_SIDE
    src_hwc = cv2.merge(list(src)) if interleave and not large else None
    for tile in _tiles(sar_window):
        mx, my = sampler.maps(tile, ox, oy, ws, hs)
        ti, tj = tile.row_off - sar_window.row_off, tile.col_off - sar_window.col_off
        sl = (slice(ti, ti + tile.height), slice(tj, tj + tile.width))
        views = [out[b][sl] for b in range(c)]  # contiguous when the tile spans the window's width
        in_place = tile.width == w
        v: np.ndarray | None
        if mask is None:  # every source pixel valid: being inside decides (the same rule as remapping a mask)
            if sampler.linear and _corners_inside(mx, my, ws, hs):
                v = None  # a linear map's extremes are at the corners: the whole tile is inside
            else:
                v = (mx >= 0) & (mx <= ws - 1) & (my >= 0) & (my <= hs - 1)
        s_src, s_mask, s_hwc = src, mask, src_hwc
        if large:  # cv2.remap takes sources below 32767 px a side: cut what this strip needs
            s_src, s_mask = _crop_source(src, mask, mx, my)
            s_hwc = cv2.merge(list(s_src)) if interleave else None
        if s_mask is not None:
            v = _remap(s_mask, mx, my) >= 0.999
        if v is not None and v.all():
            v = None
        if s_hwc is not None:
            r = _remap(s_hwc, mx, my)
            if in_place:
                cv2.split(r, views)
            else:
                for b in range(c):
                    views[b][...] = r[:, :, b]
        else:
            for b in range(c):
                if in_place:
                    _remap(s_src[b], mx, my, dst=views[b])
                else:
                    views[b][...] = _remap(s_src[b], mx, my)
        if v is None:
            valid[sl] = True
        else:
            for b in range(c):
                views[b][~v] = 0.0
            valid[sl] = v
    return out, valid


def _fast_ok(sampler: _Sampler, win: Window) -> bool:
    """Whether the fast path applies: a linear model whose window lies on the valid side of any horizon."""
    if not sampler.linear:
        return False
    if sampler.affine:
        return True
    m = sampler.m
    c0, r0, c1, r1 = win.col_off, win.row_off, win.col_end - 1, win.row_end - 1
    den = [m[2, 0] * c + m[2, 1] * r + m[2, 2] for c, r in ((c0, r0), (c1, r0), (c0, r1), (c1, r1))]
    return min(den) > 1e-12


def _warp_linear_fast(
    src: np.ndarray,
    src_valid: np.ndarray | None,
    sampler: _Sampler,
    win: Window,
    origin: tuple[int, int],
    out: np.ndarray,
    valid: np.ndarray,
) -> None:
    """Fast path of a linear model: one ``cv2.warpAffine`` / ``warpPerspective`` per band (see module docstring).

    ``src`` is float32 with invalid pixels zeroed; fills ``out`` (C, h, w) and ``valid`` (h, w) in place.
    """
    import cv2

    m = np.asarray(sampler.m, dtype=np.float64)
    # dst pixel (j, i) is SAR pixel (col_off + j, row_off + i); source pixel = optical position - origin
    shift_dst = np.array([[1.0, 0.0, win.col_off], [0.0, 1.0, win.row_off], [0.0, 0.0, 1.0]])
    shift_src = np.array([[1.0, 0.0, -origin[0]], [0.0, 1.0, -origin[1]], [0.0, 0.0, 1.0]])
    mm = shift_src @ m @ shift_dst
    h, w = win.height, win.width
    hs, ws = src.shape[1:]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    if sampler.affine:
        mm = mm[:2] / mm[2, 2]

        def warp(a: np.ndarray, dst: np.ndarray | None = None, interp: int = flags) -> np.ndarray:
            return cv2.warpAffine(
                a, mm, (w, h), dst=dst, flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )

    else:

        def warp(a: np.ndarray, dst: np.ndarray | None = None, interp: int = flags) -> np.ndarray:
            return cv2.warpPerspective(
                a, mm, (w, h), dst=dst, flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )

    for b in range(src.shape[0]):
        warp(np.ascontiguousarray(src[b]), dst=out[b])
    all_inside = False
    if src_valid is None and sampler.affine:
        corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], dtype=np.float64)
        pos = corners @ mm.T
        e = 0.05  # OpenCV rounds positions to 1/32 px
        all_inside = bool(
            (pos[:, 0] >= e).all()
            and (pos[:, 0] <= ws - 1 - e).all()
            and (pos[:, 1] >= e).all()
            and (pos[:, 1] <= hs - 1 - e).all()
        )
    if all_inside:
        valid[...] = True
        return
    m8 = np.full((hs, ws), 255, np.uint8) if src_valid is None else src_valid.view(np.uint8) * np.uint8(255)
    v = warp(m8) == 255  # bilinear weight on invalid / outside pixels < 1/510 (8-bit rounding)
    valid[...] = v
    if not v.all():
        out[:, ~v] = 0.0


def _corners_inside(mx: np.ndarray, my: np.ndarray, ws: int, hs: int) -> bool:
    """Whether a tile's four corner positions lie inside the source with 0.01 px to spare (so that every
    position of a linear map's tile passes the exact per-pixel test, rounding included)."""
    xs = mx[[0, 0, -1, -1], [0, -1, 0, -1]]
    ys = my[[0, 0, -1, -1], [0, -1, 0, -1]]
    m = 0.01
    return bool((xs >= m).all() and (xs <= ws - 1 - m).all() and (ys >= m).all() and (ys <= hs - 1 - m).all())


def _remap(a: np.ndarray, mx: np.ndarray, my: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    import cv2

    return cv2.remap(a, mx, my, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def warp_optical(
    opt: Scene, transform: Transform, sar_window: Window, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Warp an optical scene onto a SAR window, reading only the optical window it needs.

    Args:
        opt: the optical :class:`~saropt.io.raster.Scene`.
        transform: optical -> SAR transform.
        sar_window: the SAR pixel window to produce (may extend outside the SAR scene).
        exact: the exact path (as :func:`warp_array`); the default, ``False``, takes the fast path for linear
            models (what a build does: its units are fixed by the plan, so builds stay byte-identical for any
            number of workers).

    Returns:
        ``(data, valid)`` as :func:`warp_array`: ``(opt.count, h, w)`` float32 and ``(h, w)`` bool; all zeros
        and ``False`` when the window maps outside the optical image.

    Convention:
        x = column, y = row, 0-based, pixel centres at integers; transforms map optical -> SAR.
    """
    h, w = sar_window.height, sar_window.width
    inside = None
    if h and w:
        sampler = _Sampler(transform, sar_window)  # one lattice evaluation serves the window and the warp
        need = _window_for(sampler, sar_window, 2)
        inside = need.clip(opt.width, opt.height) if need.width and need.height else None
    if inside is None:
        return np.zeros((opt.count, h, w), dtype=np.float32), np.zeros((h, w), dtype=bool)
    data, valid = opt.read(inside, boundless=True)
    return _warp(data, valid, sampler, sar_window, (inside.col_off, inside.row_off), exact)


def warp_optical_u8(
    opt: Scene, transform: Transform, sar_window: Window
) -> tuple[np.ndarray, np.ndarray] | None:
    """Warp an 8-bit optical scene onto a SAR window in 8 bits: the fast path of a build for uint8 optical.

    Reads the optical window as uint8 (not float32: a quarter of the memory), interleaves the bands and warps
    them with one ``cv2.warpAffine`` / ``warpPerspective`` call (bilinear, fixed-point weights, 1/32 px
    positions as the float fast path). The result differs from warping float32 values and rounding by at most
    one grey level (OpenCV rounds the 8-bit interpolation); validity follows the float fast path's rule.

    Args:
        opt: a uint8 optical :class:`~saropt.io.raster.Scene` of 1 or 3 bands.
        transform: optical -> SAR transform.
        sar_window: the SAR pixel window to produce.

    Returns:
        ``(image, valid)``: ``(h, w, C)`` uint8 (C = 1 or 3, invalid pixels 0) and ``(h, w)`` bool, or ``None``
        when this path does not apply (not uint8, a non-linear model, a projective window reaching the horizon,
        a source over 32000 px): use :func:`warp_optical` then.

    Convention:
        x = column, y = row, 0-based, pixel centres at integers; transforms map optical -> SAR;
        ``image[i, j]`` is SAR pixel ``(col_off + j, row_off + i)``.
    """
    import cv2

    if np.dtype(opt.dtype) != np.uint8 or opt.count not in (1, 3) or opt.is_complex or opt.iq:
        return None
    h, w = sar_window.height, sar_window.width
    if h == 0 or w == 0:
        return None
    sampler = _Sampler(transform, sar_window)
    if not _fast_ok(sampler, sar_window):
        return None
    need = _window_for(sampler, sar_window, 2)
    inside = need.clip(opt.width, opt.height) if need.width and need.height else None
    if inside is None:
        return np.zeros((h, w, opt.count), dtype=np.uint8), np.zeros((h, w), dtype=bool)
    if inside.width > _MAX_SRC_SIDE or inside.height > _MAX_SRC_SIDE:
        return None
    data, src_valid = opt.read(inside, boundless=True, native=True)
    src = cv2.merge(list(data)) if data.shape[0] == 3 else np.ascontiguousarray(data[0])
    m = np.asarray(sampler.m, dtype=np.float64)
    shift_dst = np.array([[1.0, 0.0, sar_window.col_off], [0.0, 1.0, sar_window.row_off], [0.0, 0.0, 1.0]])
    shift_src = np.array([[1.0, 0.0, -inside.col_off], [0.0, 1.0, -inside.row_off], [0.0, 0.0, 1.0]])
    mm = shift_src @ m @ shift_dst
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP

    def warp(a: np.ndarray) -> np.ndarray:
        if sampler.affine:
            return cv2.warpAffine(
                a, mm[:2] / mm[2, 2], (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )
        return cv2.warpPerspective(a, mm, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    out = warp(src)
    if out.ndim == 2:
        out = out[:, :, None]
    if inside == need and src_valid.all():
        # every sample's 2 x 2 footprint lies inside the read window (``need`` has a 2 px margin) and every
        # source pixel there is valid: the warped mask would be all 255
        return out, np.ones((h, w), dtype=bool)
    m8 = src_valid.view(np.uint8) * np.uint8(255)
    valid = warp(m8) == 255
    if not valid.all():
        out[~valid] = 0
    return out, valid


def sample_positions(transform: Transform, sar_window: Window) -> tuple[np.ndarray, np.ndarray]:
    """The optical positions the warp samples for each pixel of a SAR window (after 1/256 px rounding).

    Args:
        transform: optical -> SAR transform.
        sar_window: SAR pixel window.

    Returns:
        ``(x, y)``: two ``(h, w)`` float64 arrays of optical pixel coordinates (NaN where undefined).

    Convention:
        x = column, y = row, 0-based, pixel centres at integers; ``x[i, j]`` is the optical column sampled
        for SAR pixel ``(col_off + j, row_off + i)``.
    """
    sampler = _Sampler(transform)
    qx, qy = sampler.quantized(sar_window)
    return qx.astype(np.float64) / SUBPIXEL, qy.astype(np.float64) / SUBPIXEL


def lattice_step(transform: Transform) -> int:
    """Spacing (SAR pixels) of the lattice on which a non-linear transform's inverse is evaluated; 1 = exact.

    Chosen once per transform: the largest power of two up to 32 for which the estimated bilinear
    interpolation error, ``step^2 / 8 * max(|f_xx| + |f_yy|)`` with a safety factor of 2, stays below 0.05 px.
    The curvature is measured by finite differences of ``inverse`` on a 65 x 65 grid over the transform's
    ``domain`` (its SAR tie points' bounding box, grown by 10 %); transforms without a domain get 8.

    Convention:
        Distances in SAR pixels; ``f`` is ``inverse`` (SAR -> optical).
    """
    if isinstance(transform, LinearTransform):
        return 1
    try:
        return _step_cache[transform]
    except (KeyError, TypeError):
        pass
    step = _estimate_step(transform)
    try:
        _step_cache[transform] = step
    except TypeError:  # not weak-referenceable: recomputed next time (same value)
        pass
    return step


# ------------------------------------------------------------------------------------------------- internals


def _estimate_step(transform: Transform) -> int:
    domain = getattr(transform, "domain", None)
    if domain is None:
        return _DEFAULT_STEP
    x0, y0, x1, y1 = (float(v) for v in np.asarray(domain).reshape(4))
    gx, gy = 0.1 * (x1 - x0) + 1.0, 0.1 * (y1 - y0) + 1.0
    xs = np.linspace(x0 - gx, x1 + gx, 65)
    ys = np.linspace(y0 - gy, y1 + gy, 65)
    hx, hy = xs[1] - xs[0], ys[1] - ys[0]
    px, py = np.meshgrid(xs, ys)
    f = transform.inverse(np.column_stack([px.ravel(), py.ravel()])).reshape(65, 65, 2)
    if not np.isfinite(f).all():
        return 1
    fxx = np.abs(f[:, 2:] - 2 * f[:, 1:-1] + f[:, :-2])[1:-1] / hx**2
    fyy = np.abs(f[2:] - 2 * f[1:-1] + f[:-2])[:, 1:-1] / hy**2
    curv = float((fxx + fyy).max())
    for step in _STEPS:
        if 2.0 * step * step / 8.0 * curv <= _MAP_TOLERANCE_PX:
            logger.debug("lattice step %d for %s (curvature %.3g /px)", step, type(transform).__name__, curv)
            return step
    return 1


def _tiles(window: Window) -> list[Window]:
    """Row strips (at most ``_MAX_TILE_WIDTH`` wide) of about ``_TILE_PIXELS`` pixels covering ``window``."""
    tw = min(window.width, _MAX_TILE_WIDTH)
    th = max(1, _TILE_PIXELS // max(tw, 1))
    return [
        Window(c, r, min(tw, window.col_end - c), min(th, window.row_end - r))
        for r in range(window.row_off, window.row_end, th)
        for c in range(window.col_off, window.col_end, tw)
    ]


def _crop_source(
    src: np.ndarray, mask: np.ndarray | None, mx: np.ndarray, my: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cut the part of a large source a tile needs and shift the tile's maps to it (exact: 1/256 multiples)."""
    hs, ws = src.shape[1:]
    x0 = max(0, int(np.floor(mx.min())) - 1)
    y0 = max(0, int(np.floor(my.min())) - 1)
    x1 = min(ws, max(x0 + 1, int(np.floor(mx.max())) + 3))
    y1 = min(hs, max(y0 + 1, int(np.floor(my.max())) + 3))
    if x1 - x0 > _MAX_SRC_SIDE or y1 - y0 > _MAX_SRC_SIDE:
        raise InputError(
            f"one strip of the SAR window needs a {x1 - x0}x{y1 - y0} optical area (over {_MAX_SRC_SIDE} px); "
            "downsample the optical image first"
        )
    mx -= np.float32(x0)
    my -= np.float32(y0)
    np.clip(mx, -2, x1 - x0 + 1, out=mx)
    np.clip(my, -2, y1 - y0 + 1, out=my)
    return src[:, y0:y1, x0:x1], None if mask is None else mask[y0:y1, x0:x1]


class _Sampler:
    """Sample positions of one transform: exact per pixel (linear) or from a lattice (non-linear).

    Positions are rounded to :data:`SUBPIXEL` steps in absolute optical coordinates with operations whose
    result depends on the pixel only, then shifted to the source origin exactly (multiples of 1/256 below
    2^16 are exact in float32). That is what makes tiled and whole-window warps byte-identical.
    """

    def __init__(self, transform: Transform, window: Window | None = None) -> None:
        self.transform = transform
        self.linear = isinstance(transform, LinearTransform)
        self.affine = False
        self._lattice_cache: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        if self.linear:
            m = transform.inverse_matrix  # type: ignore[attr-defined]
            self.m = m
            self.affine = bool(m[2, 0] == 0.0 and m[2, 1] == 0.0 and m[2, 2] == 1.0)
            self.step = 1
        else:
            self.step = lattice_step(transform)
            if window is not None and window.area:
                n_nodes = (window.height // self.step + 2) * (window.width // self.step + 2)
                if n_nodes <= _MAX_CACHED_NODES:  # evaluate the window's lattice once, not per strip
                    self._lattice_cache = self._nodes(
                        window.row_off, window.row_end - 1, window.col_off, window.col_end - 1
                    )

    def quantized(self, tile: Window) -> tuple[np.ndarray, np.ndarray]:
        """Absolute optical positions of a tile's pixels in 1/SUBPIXEL px units (integer-valued, NaN if none).

        float32 for affine models, float64 otherwise; every value depends on its own SAR pixel only.
        """
        cols = np.arange(tile.col_off, tile.col_end, dtype=np.float64)
        rows = np.arange(tile.row_off, tile.row_end, dtype=np.float64)
        if self.affine:
            return self._affine(rows, cols)
        if self.linear:
            return self._projective(rows, cols)
        return self._lattice(tile, rows, cols)

    def maps(self, tile: Window, ox: int, oy: int, ws: int, hs: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 remap maps of a tile relative to the source origin (far-outside values clipped)."""
        out = []
        for q, o, size in zip(self.quantized(tile), (ox, oy), (ws, hs)):
            m = q if q.dtype == np.float32 else q.astype(np.float32)  # integers < 2^24: exact
            m *= np.float32(1.0 / SUBPIXEL)  # exact (power of two)
            m -= np.float32(o)  # exact while the result is within 2^16 px of the origin
            if self.affine:  # extremes of a linear map lie at the tile's corners: clip only when needed
                corners = m[[0, 0, -1, -1], [0, -1, 0, -1]]
                if corners.min() < -2 or corners.max() > size + 1:
                    np.clip(m, -2, size + 1, out=m)
            else:
                np.clip(m, -2, size + 1, out=m)
                m[np.isnan(m)] = -2.0
            out.append(m)
        return out[0], out[1]

    def _affine(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.m * SUBPIXEL
        qs = []
        for k in (0, 1):
            # float32 row term (+ 0.5 to round) plus float32 column term, then floor: the same operations on
            # the same operands for a pixel in any tile. float32 keeps 1/256 px up to 2^16 px.
            r = (m[k, 1] * rows + (m[k, 2] + 0.5)).astype(np.float32)
            c = (m[k, 0] * cols).astype(np.float32)
            q = np.add.outer(r, c)
            np.floor(q, out=q)
            qs.append(q)
        return qs[0], qs[1]

    def _projective(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.m
        den = np.add.outer(m[2, 1] * rows + m[2, 2], m[2, 0] * cols)
        den[~(den > 1e-12)] = (
            np.nan
        )  # the far side of the projective horizon (the side of w(0, 0) = 1 is valid)
        qs = []
        for k in (0, 1):
            q = np.add.outer(m[k, 1] * rows + m[k, 2], m[k, 0] * cols)
            q /= den
            q *= SUBPIXEL
            q += 0.5
            np.floor(q, out=q)
            qs.append(q)
        return qs[0], qs[1]

    def _nodes(
        self, r0: int, r1: int, c0: int, c1: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Lattice indices around pixel rows ``r0..r1`` and cols ``c0..c1`` (inclusive) and ``inverse`` there."""
        s = self.step
        kr = np.arange(r0 // s, r1 // s + 2)
        kc = np.arange(c0 // s, c1 // s + 2)
        gx, gy = np.meshgrid(kc * float(s), kr * float(s))
        f = self.transform.inverse(np.column_stack([gx.ravel(), gy.ravel()]))
        return kr, kc, f[:, 0].reshape(len(kr), len(kc)), f[:, 1].reshape(len(kr), len(kc))

    def lattice(self, tile: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Lattice indices (rows, cols) around a tile and ``inverse`` at those nodes (from the cache if it
        covers the tile)."""
        s = self.step
        cached = self._lattice_cache
        if (
            cached is not None
            and _covers(cached[0], tile.row_off, tile.row_end, s)
            and _covers(cached[1], tile.col_off, tile.col_end, s)
        ):
            return cached
        return self._nodes(tile.row_off, tile.row_end - 1, tile.col_off, tile.col_end - 1)

    def _lattice(self, tile: Window, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = self.step
        kr, kc, nx, ny = self.lattice(tile)
        # the node left of / above each pixel (always with a right / lower neighbour: see _nodes)
        ic = np.floor_divide(cols, s).astype(np.int64) - kc[0]
        tc = (cols - (ic + kc[0]) * s) / s
        ir = np.floor_divide(rows, s).astype(np.int64) - kr[0]
        tr = (rows - (ir + kr[0]) * s) / s
        j0, j1 = int(ir[0]), int(ir[-1]) + 2  # the lattice rows this tile needs
        ir = ir - j0
        qs = []
        for node in (nx[j0:j1], ny[j0:j1]):
            left, right = node[:, ic], node[:, ic + 1]
            a = left + tc * (right - left)  # along x on each lattice row
            lo, hi = a[ir], a[ir + 1]
            q = lo + tr[:, None] * (hi - lo)
            q *= SUBPIXEL
            q += 0.5
            np.floor(q, out=q)
            qs.append(q)
        return qs[0], qs[1]


def _covers(k: np.ndarray, start: int, end: int, step: int) -> bool:
    """Whether lattice indices ``k`` cover pixels ``start .. end - 1`` (both nodes around each)."""
    return int(k[0]) <= start // step and int(k[-1]) >= (end - 1) // step + 1


def _window_for(sampler: _Sampler, win: Window, margin: int) -> Window:
    """Bounding optical window (plus ``margin``) of the positions ``sampler`` gives ``win``'s pixels."""
    pts = _boundary_positions(sampler, win)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        return Window(0, 0, 0, 0)
    lo = np.clip(pts.min(axis=0), -1e9, 1e9)
    hi = np.clip(pts.max(axis=0), -1e9, 1e9)
    c0 = math.floor(lo[0]) - margin
    r0 = math.floor(lo[1]) - margin
    c1 = math.floor(hi[0]) + 2 + margin
    r1 = math.floor(hi[1]) + 2 + margin
    return Window(int(c0), int(r0), int(c1 - c0), int(r1 - r0))


def _boundary_positions(sampler: _Sampler, win: Window) -> np.ndarray:
    """Optical positions that bound the samples of a window (see :func:`optical_window_for`)."""
    transform = sampler.transform
    c0, r0, c1, r1 = win.col_off, win.row_off, win.col_end - 1, win.row_end - 1
    if isinstance(transform, LinearTransform):
        corners = np.array([[c0, r0], [c1, r0], [c0, r1], [c1, r1]], dtype=np.float64)
        m = transform.inverse_matrix
        if m[2, 0] == 0.0 and m[2, 1] == 0.0:
            return transform.inverse(corners)
        den = corners @ m[2, :2] + m[2, 2]
        if (den > 1e-12).all():  # the image of the window is the convex quadrilateral of its corners
            return transform.inverse(corners)
        xs = np.unique(np.r_[np.arange(c0, c1 + 1, 8), c1]).astype(np.float64)
        ys = np.unique(np.r_[np.arange(r0, r1 + 1, 8), r1]).astype(np.float64)
        edge = np.concatenate(
            [
                np.column_stack([xs, np.full_like(xs, r0)]),
                np.column_stack([xs, np.full_like(xs, r1)]),
                np.column_stack([np.full_like(ys, c0), ys]),
                np.column_stack([np.full_like(ys, c1), ys]),
            ]
        )
        edge = edge[edge @ m[2, :2] + m[2, 2] > 1e-12]
        return transform.inverse(edge) if len(edge) else np.zeros((0, 2))
    parts = []
    for side in (
        Window(c0, r0, win.width, 1),
        Window(c0, r1, win.width, 1),
        Window(c0, r0, 1, win.height),
        Window(c1, r0, 1, win.height),
    ):
        qx, qy = sampler.quantized(side)
        parts.append(np.column_stack([qx.ravel(), qy.ravel()]) / SUBPIXEL)
    kr, kc, nx, ny = sampler.lattice(win)
    s = sampler.step
    rin = (kr * s >= r0) & (kr * s <= r1)
    cin = (kc * s >= c0) & (kc * s <= c1)
    parts.append(np.column_stack([nx[np.ix_(rin, cin)].ravel(), ny[np.ix_(rin, cin)].ravel()]))
    return np.concatenate(parts)
