"""Structural feature channels that SAR and optical images share (CFOG-style oriented gradients).

SAR and optical intensities are related non-linearly (speckle, double bounce, layover, shadow), so matching
compares *structure*: where edges are and which way they run. Each image becomes ``C`` channels, one per edge
orientation in ``[0, 180)`` degrees, holding the smoothed magnitude of the gradient projected on that orientation;
the channels are then normalised per pixel, so only the *shape* of the local orientation distribution counts, not
the contrast (Ye et al., "Fast and robust matching for multimodal remote sensing image registration", CFOG,
IEEE TGRS 2019).

The gradient operator differs by modality. Speckle is multiplicative, so SAR gradients are taken in the log domain
as a ratio of averages on either side of the pixel (ROEWA-like: ``log(mean_right / mean_left)``), which has a
constant false-alarm rate regardless of brightness; a Gaussian derivative of the log image is the alternative.
Optical images use a Gaussian derivative of the intensity.

Convention:
    Arrays are ``(H, W)`` or ``(C, H, W)`` in the image's own pixel grid: x = column, y = row, 0-based, pixel
    centres at integer coordinates. Gradients: ``gx = d/dx`` (towards larger columns), ``gy = d/dy`` (towards
    larger rows). Channel ``k`` holds edges whose gradient direction is ``k * 180 / C`` degrees from +x towards +y.
"""

from __future__ import annotations

import logging
from typing import Literal

import cv2
import numpy as np

from saropt.errors import InputError

logger = logging.getLogger(__name__)

GradientOperator = Literal["ratio", "log_gaussian", "gaussian"]


def to_float_image(img: np.ndarray) -> np.ndarray:
    """A single-band float32 copy of an image; multi-band images are averaged.

    Args:
        img: ``(H, W)``, ``(H, W, B)`` (OpenCV/PIL order) or ``(B, H, W)`` array of any numeric dtype. A 3-D array
            whose first axis is at most 4 and smaller than the others is taken as ``(B, H, W)``.

    Returns:
        ``(H, W)`` float32.

    Raises:
        InputError: if the array is not 2-D or 3-D.
    """
    a = np.asarray(img)
    if a.ndim == 3:
        if a.shape[0] <= 4 and a.shape[0] < min(a.shape[1:]):
            a = a.astype(np.float32).mean(axis=0)
        else:
            a = a.astype(np.float32).mean(axis=2)
    if a.ndim != 2:
        raise InputError(f"expected a 2-D image or a 3-D band stack, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _log_image(img: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """``log(img + eps)`` with ``eps`` relative to the image's typical level (scale-invariant)."""
    vals = img[valid] if valid is not None and valid.any() else img
    level = float(np.median(vals)) if vals.size else 1.0
    eps = max(level * 0.05, 1e-6) if level > 0 else 1e-3
    return np.log(np.maximum(img, 0.0) + eps).astype(np.float32)


def _fill_invalid(img: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Replace invalid pixels by the mean of the valid ones, so nodata borders do not make edges."""
    if valid is None or valid.all():
        return img
    out = img.copy()
    out[~valid] = float(img[valid].mean()) if valid.any() else 0.0
    return out


def gaussian_gradients(img: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-smoothed central-difference gradients.

    Args:
        img: ``(H, W)`` float32 image.
        sigma: Gaussian smoothing in pixels (0 disables it).

    Returns:
        ``(gx, gy)``, each ``(H, W)`` float32.

    Convention:
        ``gx`` is the derivative along x (columns), ``gy`` along y (rows).
    """
    sm = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) if sigma > 0 else img
    gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=1, scale=0.5, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=1, scale=0.5, borderType=cv2.BORDER_REFLECT)
    return gx, gy


def ratio_gradients(img: np.ndarray, half_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Ratio-of-averages gradients for speckled SAR (ROEWA-like, with box windows).

    ``gx(x, y) = log(m_right / m_left)`` where ``m_right`` is the mean over the ``half_width x (2 half_width + 1)``
    box just right of the pixel and ``m_left`` the box just left of it; ``gy`` likewise below / above. The log of
    a ratio of local means is insensitive to the multiplicative speckle level.

    Args:
        img: ``(H, W)`` non-negative float32 intensity or amplitude.
        half_width: box depth in pixels on each side (>= 1).

    Returns:
        ``(gx, gy)``, each ``(H, W)`` float32.

    Convention:
        ``gx`` points towards larger columns, ``gy`` towards larger rows.
    """
    w = max(int(half_width), 1) | 1  # odd, so the boxes are centred on whole or half pixels exactly
    pos = np.maximum(img, 0.0)
    level = float(np.median(pos)) if pos.size else 1.0
    eps = max(level * 0.05, 1e-6) if level > 0 else 1e-3
    pos = pos + eps
    # Means over (2w+1) rows x w columns, centred, then shifted by (w+1)/2 to either side.
    k_side = (w, 2 * w + 1)  # (width, height) for cv2
    m = cv2.boxFilter(pos, cv2.CV_32F, k_side, normalize=True, borderType=cv2.BORDER_REFLECT)
    s = (w + 1) / 2.0
    right = _shift(m, -s, 0.0)
    left = _shift(m, s, 0.0)
    m2 = cv2.boxFilter(pos, cv2.CV_32F, (2 * w + 1, w), normalize=True, borderType=cv2.BORDER_REFLECT)
    below = _shift(m2, 0.0, -s)
    above = _shift(m2, 0.0, s)
    gx = np.log(right) - np.log(left)
    gy = np.log(below) - np.log(above)
    return gx.astype(np.float32), gy.astype(np.float32)


def _shift(a: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``out(x, y) = a(x - dx, y - dy)`` (content moves by (dx, dy)), bilinear, edges replicated."""
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float64)
    return cv2.warpAffine(
        a, m, (a.shape[1], a.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def image_gradients(
    img: np.ndarray,
    operator: GradientOperator,
    sigma: float,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of one image with the given operator.

    Args:
        img: ``(H, W)`` image (any real dtype).
        operator: ``"ratio"`` (SAR: log of ratio of one-sided box means, box depth ``round(1.5 * sigma)``),
            ``"log_gaussian"`` (Gaussian derivative of ``log(img)``) or ``"gaussian"`` (Gaussian derivative of
            the intensity: optical).
        sigma: smoothing scale in pixels.
        valid: optional ``(H, W)`` bool mask; invalid pixels are filled with the valid mean first.

    Returns:
        ``(gx, gy)`` float32 arrays.

    Raises:
        InputError: for an unknown operator.

    Convention:
        x = column, y = row; ``gx`` towards larger columns.
    """
    f = _fill_invalid(to_float_image(img), valid)
    if operator == "ratio":
        return ratio_gradients(f, max(1, round(1.5 * sigma)))
    if operator == "log_gaussian":
        return gaussian_gradients(_log_image(f, valid), sigma)
    if operator == "gaussian":
        return gaussian_gradients(f, sigma)
    raise InputError(f"unknown gradient operator {operator!r}: use 'ratio', 'log_gaussian' or 'gaussian'")


def oriented_channels(
    gx: np.ndarray,
    gy: np.ndarray,
    n_orientations: int = 9,
    sigma: float = 1.0,
    eps_rel: float = 0.1,
) -> np.ndarray:
    """CFOG oriented-gradient channels, smoothed and normalised per pixel.

    Channel ``k`` is ``|gx cos(t_k) + gy sin(t_k)|`` with ``t_k = k pi / C``: the sign is dropped because a SAR
    edge and the optical edge at the same place often have opposite contrast. Channels are Gaussian-smoothed in
    space (``sigma``) and with a ``[1, 2, 1] / 4`` kernel across (circular) orientation, then divided by the
    per-pixel L2 norm plus ``eps_rel`` times the mean norm, so flat areas stay small instead of amplifying noise.

    Args:
        gx: ``(H, W)`` x-gradient.
        gy: ``(H, W)`` y-gradient.
        n_orientations: number of channels ``C`` (>= 2).
        sigma: spatial smoothing of each channel in pixels.
        eps_rel: regulariser of the normalisation, relative to the image's mean channel norm.

    Returns:
        ``(C, H, W)`` float32.

    Raises:
        InputError: if ``n_orientations < 2``.
    """
    if n_orientations < 2:
        raise InputError(f"n_orientations must be >= 2, got {n_orientations}")
    h, w = gx.shape
    theta = np.arange(n_orientations) * np.pi / n_orientations
    out = np.empty((n_orientations, h, w), dtype=np.float32)
    for k, t in enumerate(theta):
        ch = np.abs(gx * np.float32(np.cos(t)) + gy * np.float32(np.sin(t)))
        out[k] = cv2.GaussianBlur(ch, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) if sigma > 0 else ch
    # [1, 2, 1]/4 across circular orientation (slices, not np.roll: this runs on thousands of small chips).
    sm = 0.5 * out
    sm[1:] += 0.25 * out[:-1]
    sm[0] += 0.25 * out[-1]
    sm[:-1] += 0.25 * out[1:]
    sm[-1] += 0.25 * out[0]
    out = sm
    norm = np.sqrt(np.einsum("chw,chw->hw", out, out))
    eps = np.float32(eps_rel * float(norm.mean()) + 1e-12)
    out /= norm + eps
    return out


def structural_features(
    img: np.ndarray,
    valid: np.ndarray | None,
    operator: GradientOperator,
    gradient_sigma: float,
    n_orientations: int = 9,
    channel_sigma: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature channels and their validity for one image.

    Args:
        img: ``(H, W)`` image.
        valid: ``(H, W)`` bool mask of valid pixels, or ``None`` (all valid).
        operator: gradient operator (see :func:`image_gradients`).
        gradient_sigma: gradient smoothing scale in pixels.
        n_orientations: number of orientation channels.
        channel_sigma: spatial smoothing of the channels in pixels.

    Returns:
        ``(features, feature_valid)``: ``(C, H, W)`` float32 channels (zero where invalid) and the ``(H, W)``
        bool mask of pixels whose gradient support lies wholly inside the valid area.

    Convention:
        Same pixel grid as ``img``: x = column, y = row, 0-based.
    """
    gx, gy = image_gradients(img, operator, gradient_sigma, valid)
    feats = oriented_channels(gx, gy, n_orientations, channel_sigma)
    if valid is None:
        return feats, np.ones(gx.shape, dtype=bool)
    r = int(np.ceil(2.0 * gradient_sigma + 2.0 * channel_sigma)) + 1
    fvalid = erode(valid, r)
    feats[:, ~fvalid] = 0.0
    return feats, fvalid


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary erosion of a bool mask by a square of half-size ``radius`` (outside the array counts as valid)."""
    if radius <= 0 or mask.all():
        return mask.astype(bool)
    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), k, borderType=cv2.BORDER_CONSTANT, borderValue=1).astype(bool)


def orientation_field(
    img: np.ndarray,
    valid: np.ndarray | None,
    operator: GradientOperator,
    gradient_sigma: float,
    smooth_sigma: float = 1.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Double-angle orientation field: a cheap, contrast-sign-invariant structure feature for coarse search.

    ``z = G * (gx + i gy)^2 / (G * |g|^2 + eps^2)``: the smoothed structure tensor written as one complex number.
    Its phase is twice the dominant gradient direction (so an edge and the same edge with reversed contrast agree)
    and its modulus is the local coherence in ``[0, 1]``, small in flat or isotropic (speckle) areas. Comparing
    two fields needs one complex correlation instead of one per orientation channel.

    Args:
        img: ``(H, W)`` image.
        valid: ``(H, W)`` bool mask or ``None``.
        operator: gradient operator (see :func:`image_gradients`).
        gradient_sigma: gradient scale in pixels.
        smooth_sigma: structure-tensor integration scale in pixels.

    Returns:
        ``(z, z_valid)``: ``(H, W)`` complex64 field (zero where invalid) and the eroded validity mask.

    Convention:
        Phase of ``z`` is ``2 * atan2(gy, gx)``: x = column, y = row.
    """
    gx, gy = image_gradients(img, operator, gradient_sigma, valid)
    g2 = gx * gx + gy * gy
    if valid is not None:
        g2v = g2[valid]
    else:
        g2v = g2.ravel()
    eps2 = np.float32(np.median(g2v) if g2v.size else 1.0) + np.float32(1e-12)
    re = cv2.GaussianBlur(gx * gx - gy * gy, (0, 0), smooth_sigma, borderType=cv2.BORDER_REFLECT)
    im = cv2.GaussianBlur(2.0 * gx * gy, (0, 0), smooth_sigma, borderType=cv2.BORDER_REFLECT)
    tr = cv2.GaussianBlur(g2, (0, 0), smooth_sigma, borderType=cv2.BORDER_REFLECT) + eps2
    z = ((re + 1j * im) / tr).astype(np.complex64)
    if valid is None:
        return z, np.ones(gx.shape, dtype=bool)
    r = int(np.ceil(2.0 * gradient_sigma + 2.0 * smooth_sigma)) + 1
    zvalid = erode(valid, r)
    z[~zvalid] = 0
    return z, zvalid
