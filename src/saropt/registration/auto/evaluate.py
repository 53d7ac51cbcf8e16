"""Measuring registrations against known geometry, and making test cases with known geometry from aligned pairs.

* :func:`transform_rmse`: the error of an estimated transform against the truth over a grid of SAR pixels (the
  SRIF benchmark's metric).
* :func:`rotated_case`: an SRIF-style test case from a co-registered SAR/optical pair: a SAR patch rotated about
  its centre (black wedge corners), the optical of the same footprint resampled to another size, and the exact
  optical -> SAR matrix.
* :func:`wedge_rotation`: the rotation of a square patch that was rotated about its centre with its size kept
  (black wedges), measured from where the wedges meet the image border.

Convention:
    Pixel coordinates x = column, y = row, 0-based, pixel centres at integer coordinates; matrices are 3x3 and
    map OPTICAL pixels to SAR pixels. Angles in degrees, counter-clockwise on screen (OpenCV sign).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from saropt.errors import InputError
from saropt.registration.transforms import Transform


def _matrix(t: Transform | np.ndarray) -> np.ndarray:
    if isinstance(t, Transform):
        m = t.matrix
        if m is None:
            raise InputError("transform_rmse needs linear transforms (a 3x3 matrix)")
        return np.asarray(m, dtype=np.float64)
    m = np.asarray(t, dtype=np.float64)
    if m.shape == (2, 3):
        m = np.vstack([m, [0.0, 0.0, 1.0]])
    if m.shape != (3, 3):
        raise InputError(f"expected a 3x3 (or 2x3) matrix, got shape {m.shape}")
    return m


def transform_rmse(
    estimate: Transform | np.ndarray,
    truth: Transform | np.ndarray,
    sar_shape: tuple[int, int],
    step: int = 8,
    valid: np.ndarray | None = None,
) -> float:
    """RMSE, in SAR pixels, between two optical -> SAR transforms over a grid of SAR pixels.

    Each grid pixel ``p`` is taken to the optical image by the truth's inverse and back by the estimate:
    ``|estimate(truth^-1(p)) - p|``.

    Args:
        estimate: estimated transform (or 3x3 / 2x3 matrix).
        truth: true transform (or matrix).
        sar_shape: ``(height, width)`` of the SAR image.
        step: grid spacing in pixels.
        valid: optional ``(H, W)`` bool mask; only grid pixels inside it count.

    Returns:
        The RMSE in SAR pixels.

    Raises:
        InputError: non-linear transforms or bad matrices.

    Convention:
        Pixel centres at integers; matrices map optical -> SAR.
    """
    e, g = _matrix(estimate), _matrix(truth)
    h, w = sar_shape
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    keep = np.ones(xs.shape, bool) if valid is None else valid[ys, xs]
    p = np.stack([xs[keep], ys[keep], np.ones(int(keep.sum()))]).astype(np.float64)
    q = e @ np.linalg.inv(g) @ p
    q = q[:2] / q[2]
    return float(np.sqrt(((q - p[:2]) ** 2).sum(axis=0).mean()))


@dataclass(frozen=True, eq=False)
class RotatedCase:
    """An SRIF-style registration test case with exact truth.

    Attributes:
        sar: ``(size, size)`` uint8 SAR patch, rotated about its centre, 0 in the wedge corners.
        opt: ``(n, n)`` uint8 grey optical patch of the same (unrotated) footprint, shifted by ``shift``.
        opt_to_sar: 3x3 true matrix, optical pixels -> SAR pixels.
        angle_deg: rotation applied to the SAR patch.
        scale: SAR pixels per optical pixel (``size / n``).
        shift: offset ``(dx, dy)`` of the optical footprint against the SAR's, source pixels.

    Convention:
        ``opt_to_sar`` maps optical (x=col, y=row) to SAR pixels, centres at integers.
    """

    sar: np.ndarray
    opt: np.ndarray
    opt_to_sar: np.ndarray
    angle_deg: float
    scale: float
    shift: tuple[int, int]


def _grey_u8(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim == 3:
        a = (
            cv2.cvtColor(np.ascontiguousarray(a[:, :, :3]), cv2.COLOR_RGB2GRAY)
            if a.shape[2] >= 3
            else a[:, :, 0]
        )
    return np.clip(a, 0, 255).astype(np.uint8)


def rotated_case(
    sar: np.ndarray,
    opt: np.ndarray,
    rng: np.random.Generator,
    *,
    size: int = 256,
    angle_range: tuple[float, float] = (1.0, 90.0),
    opt_size_range: tuple[int, int] = (155, 511),
    max_shift: int = 24,
    jpeg_quality: int | None = 90,
    base: np.ndarray | None = None,
) -> RotatedCase:
    """Cut an SRIF-style case with exact truth from a co-registered pair.

    A ``size x size`` SAR patch at a random place is rotated by a random angle about its centre (size kept,
    corners filled with 0, like the SRIF optical-SAR pairs); the optical patch covers the same footprint shifted
    by up to ``max_shift`` pixels and is resized to a random side in ``opt_size_range``; both may be JPEG
    compressed.

    Args:
        sar: SAR image (uint8 or float), grey.
        opt: optical image co-registered with ``sar`` (same grid unless ``base`` is given), grey or RGB.
        rng: random generator (the case is a function of its state).
        size: SAR patch side.
        angle_range: rotation range in degrees.
        opt_size_range: side range of the optical patch in pixels.
        max_shift: largest footprint offset in pixels.
        jpeg_quality: JPEG quality of both patches, or ``None`` for none.
        base: 3x3 matrix from ``opt`` pixels to ``sar`` pixels when the pair is not on one grid (the optical is
            first resampled onto the SAR grid with it).

    Returns:
        The :class:`RotatedCase`.

    Raises:
        InputError: the images are smaller than the patch plus the shift margin.

    Convention:
        x = column, y = row, pixel centres at integers; truth maps optical -> SAR.
    """
    s = _grey_u8(sar) if np.asarray(sar).dtype == np.uint8 else np.asarray(sar, dtype=np.float32)
    o = _grey_u8(opt)
    if base is not None:
        o = cv2.warpAffine(
            o, np.asarray(base, dtype=np.float64)[:2], (s.shape[1], s.shape[0]), flags=cv2.INTER_LINEAR
        )
    h, w = s.shape[:2]
    margin = max_shift + 1
    if h < size + 2 * margin or w < size + 2 * margin:
        raise InputError(
            f"images of {w}x{h} are too small for {size}-pixel cases with {max_shift}-pixel shifts"
        )
    x0 = int(rng.integers(margin, w - size - margin + 1))
    y0 = int(rng.integers(margin, h - size - margin + 1))
    dx, dy = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
    angle = float(rng.uniform(*angle_range))
    n = int(rng.integers(opt_size_range[0], opt_size_range[1] + 1))
    sar_patch = np.asarray(s[y0 : y0 + size, x0 : x0 + size], dtype=np.float32)
    opt_patch = o[y0 + dy : y0 + dy + size, x0 + dx : x0 + dx + size]
    c = (size - 1) / 2.0
    rot = np.vstack([cv2.getRotationMatrix2D((c, c), angle, 1.0), [0.0, 0.0, 1.0]])
    sar_rot = cv2.warpAffine(sar_patch, rot[:2], (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    sar_rot = np.clip(np.rint(sar_rot), 0, 255).astype(np.uint8)
    opt_small = cv2.resize(opt_patch, (n, n), interpolation=cv2.INTER_AREA if n < size else cv2.INTER_CUBIC)
    if jpeg_quality is not None:
        sar_rot = _jpeg(sar_rot, jpeg_quality)
        opt_small = _jpeg(opt_small, jpeg_quality)
    k = size / n
    # optical patch pixel q -> source optical pixel (x0 + dx + k (q + 0.5) - 0.5) -> SAR patch pixel (+ dx, dy)
    up = np.array([[k, 0.0, 0.5 * k - 0.5 + dx], [0.0, k, 0.5 * k - 0.5 + dy], [0.0, 0.0, 1.0]])
    truth = rot @ up
    return RotatedCase(sar=sar_rot, opt=opt_small, opt_to_sar=truth, angle_deg=angle, scale=k, shift=(dx, dy))


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
    return img if out is None else np.asarray(out)


def _border_runs(img: np.ndarray, thr: float) -> np.ndarray:
    """Fill-pixel runs from the four corners along the border rows and columns (8 values)."""

    def run(v: np.ndarray) -> int:
        big = v > thr
        ok = big[:-2] & big[1:-1] & big[2:]
        idx = np.flatnonzero(ok)
        return int(idx[0]) if idx.size else len(v)

    r0 = img[:2].max(axis=0)
    r1 = img[-2:].max(axis=0)
    c0 = img[:, :2].max(axis=1)
    c1 = img[:, -2:].max(axis=1)
    return np.array(
        [run(r0), run(r0[::-1]), run(r1), run(r1[::-1]), run(c0), run(c0[::-1]), run(c1), run(c1[::-1])],
        dtype=np.float64,
    )


@lru_cache(maxsize=4)
def _run_table(size: int, step: float, fill_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Border runs of a mid-grey square rotated the way the patches were made (bilinear, fill 0), per angle."""
    angles = np.arange(0.0, 90.0 + 1e-9, step)
    c = (size - 1) / 2.0
    grey = np.full((size, size), 128.0, np.float32)
    rows = []
    for a in angles:
        m = cv2.warpAffine(
            grey,
            cv2.getRotationMatrix2D((c, c), float(a), 1.0),
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderValue=0.0,
        )
        rows.append(_border_runs(m, fill_threshold))
    return angles, np.array(rows)


def wedge_rotation(
    patch: np.ndarray, fill_threshold: float = 12.0, step: float = 0.05
) -> tuple[float, float]:
    """Rotation (0-90 degrees) of a square patch rotated about its centre with its size kept, from its wedges.

    The black wedges left in the corners meet the border rows and columns at distances from the corners that
    depend only on the angle; the angle whose rendered wedges (a mid-grey square rotated bilinearly, as the
    patches were made) best match the eight measured runs (mean absolute difference; the middle of the range of
    tied angles) is returned. Angles near 0 or 90 degrees leave no wedges and cannot be measured.

    Args:
        patch: ``(n, n)`` grey patch, fill value 0 (JPEG noise tolerated up to ``fill_threshold``).
        fill_threshold: values at or below count as fill.
        step: angle resolution in degrees.

    Returns:
        ``(angle_deg, misfit_px)``: the angle (counter-clockwise on screen, OpenCV sign, in [0, 90]) and the
        mean run misfit in pixels (large when the patch is not such a rotation).

    Raises:
        InputError: for a non-square patch.
    """
    a = np.asarray(patch, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise InputError(f"wedge_rotation needs a square grey patch, got shape {a.shape}")
    angles, table = _run_table(int(a.shape[0]), float(step), float(fill_threshold))
    runs = _border_runs(a, fill_threshold)
    cost = np.mean(np.abs(table - runs[None]), axis=1)
    best = float(cost.min())
    # integer runs leave a range of angles tied at the minimum: take the middle of the range around the best
    k = int(np.argmin(cost))
    lo = hi = k
    while lo > 0 and cost[lo - 1] <= best + 1e-9:
        lo -= 1
    while hi < len(cost) - 1 and cost[hi + 1] <= best + 1e-9:
        hi += 1
    return float(0.5 * (angles[lo] + angles[hi])), best


def srif_truth(sar_patch: np.ndarray, opt_shape: tuple[int, int]) -> tuple[np.ndarray, float, float]:
    """Truth of an SRIF optical-SAR pair derived from the images (the published gt files do not fit them).

    Model (what the GT files encode, with the optical resize they omit): the optical covers the SAR patch's
    footprint before rotation, resized from the SAR size to its own; the SAR patch was then rotated about its
    centre. The angle comes from the wedges (:func:`wedge_rotation`), the scale from the sizes.

    Args:
        sar_patch: ``(n, n)`` SAR patch with wedge corners.
        opt_shape: ``(height, width)`` of the optical image.

    Returns:
        ``(matrix, angle_deg, wedge_misfit_px)``: 3x3 optical -> SAR matrix, the measured angle and the misfit.

    Convention:
        Pixel centres at integers; the matrix maps optical -> SAR.
    """
    n = sar_patch.shape[0]
    angle, misfit = wedge_rotation(sar_patch)
    ky, kx = n / opt_shape[0], n / opt_shape[1]
    up = np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5], [0.0, 0.0, 1.0]])
    c = (n - 1) / 2.0
    rot = np.vstack([cv2.getRotationMatrix2D((c, c), angle, 1.0), [0.0, 0.0, 1.0]])
    return rot @ up, angle, misfit
