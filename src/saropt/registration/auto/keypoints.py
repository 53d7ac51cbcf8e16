"""Candidate points for template matching: textured, well spread, inside both images.

A template matches reliably only where the image has structure in two directions (a corner, a building, a road
crossing), not on a straight edge (the match slides along it) or in a flat field. The response used is the
smaller eigenvalue of the structure tensor (Shi-Tomasi) of the image, integrated over roughly the template
scale; one candidate is kept per cell of a regular grid (grid non-maximum suppression), so the points cover the
overlap instead of clustering in the most textured block, and cells whose best response is weak are left out.

Convention:
    Points are ``(x, y)`` = (column, row), 0-based, pixel centres at integers, in the grid of the image the
    response was computed on.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from saropt.registration.auto.features import erode, image_gradients

logger = logging.getLogger(__name__)


def structure_response(
    img: np.ndarray, valid: np.ndarray | None, sigma: float, integration: float
) -> np.ndarray:
    """Shi-Tomasi response: the smaller eigenvalue of the smoothed structure tensor.

    Args:
        img: ``(H, W)`` image.
        valid: ``(H, W)`` bool mask or ``None``.
        sigma: gradient scale in pixels.
        integration: integration (window) scale of the tensor in pixels.

    Returns:
        ``(H, W)`` float32 response, 0 outside ``valid``.
    """
    gx, gy = image_gradients(img, "gaussian", sigma, valid)
    a = cv2.GaussianBlur(gx * gx, (0, 0), integration)
    b = cv2.GaussianBlur(gx * gy, (0, 0), integration)
    c = cv2.GaussianBlur(gy * gy, (0, 0), integration)
    tr = 0.5 * (a + c)
    det = np.sqrt(np.maximum(0.25 * (a - c) ** 2 + b * b, 0.0))
    resp = (tr - det).astype(np.float32)
    if valid is not None:
        resp[~valid] = 0.0
    return resp


def grid_peaks(
    response: np.ndarray,
    allowed: np.ndarray,
    spacing: int,
    rel_threshold: float = 0.05,
    max_points: int | None = None,
) -> np.ndarray:
    """The strongest pixel of each ``spacing x spacing`` cell, where strong enough.

    Args:
        response: ``(H, W)`` response map.
        allowed: ``(H, W)`` bool mask of admissible centres.
        spacing: cell size in pixels (>= 1).
        rel_threshold: a cell's peak must reach this fraction of the 90th percentile of the cell peaks.
        max_points: keep at most this many (strongest first); ``None`` keeps all.

    Returns:
        ``(N, 2)`` int64 points ``(x, y)``, strongest first.

    Convention:
        x = column, y = row, 0-based.
    """
    h, w = response.shape
    spacing = max(1, int(spacing))
    r = np.where(allowed, response, -np.inf).astype(np.float32)
    gh, gw = -(-h // spacing), -(-w // spacing)
    pad = np.full((gh * spacing, gw * spacing), -np.inf, dtype=np.float32)
    pad[:h, :w] = r
    cells = pad.reshape(gh, spacing, gw, spacing).transpose(0, 2, 1, 3).reshape(gh, gw, -1)
    arg = cells.argmax(axis=2)
    val = np.take_along_axis(cells, arg[..., None], axis=2)[..., 0]
    ok = np.isfinite(val) & (val > 0)
    if not ok.any():
        return np.zeros((0, 2), dtype=np.int64)
    ref = float(np.percentile(val[ok], 90))
    ok &= val >= rel_threshold * ref
    gy, gx = np.nonzero(ok)
    ay, ax = np.divmod(arg[gy, gx], spacing)
    ys = gy * spacing + ay
    xs = gx * spacing + ax
    order = np.argsort(-val[gy, gx], kind="stable")
    pts = np.stack([xs, ys], axis=1)[order].astype(np.int64)
    if max_points is not None:
        pts = pts[:max_points]
    return pts


def select_candidates(
    img: np.ndarray,
    valid: np.ndarray,
    other_valid: np.ndarray | None,
    template_size: int,
    spacing: int,
    max_points: int | None = None,
    sigma: float = 1.0,
) -> tuple[np.ndarray, float]:
    """Textured, well-spread template centres whose templates lie inside both images.

    Args:
        img: ``(H, W)`` image the response is computed on (the optical image warped onto the SAR grid).
        valid: its ``(H, W)`` validity.
        other_valid: validity of the other image on the same grid (SAR), or ``None``.
        template_size: template side in pixels; centres keep ``template_size // 2`` from invalid pixels.
        spacing: grid cell size in pixels.
        max_points: cap on the number of candidates.
        sigma: gradient scale of the response.

    Returns:
        ``(points, texture)``: ``(N, 2)`` int64 centres ``(x, y)`` and the 90th percentile of the response over
        the admissible area (0 for a blank image).

    Convention:
        x = column, y = row, 0-based, in the grid of ``img``.
    """
    both = valid if other_valid is None else (valid & other_valid)
    allowed = erode(both, max(1, template_size // 2 - 1))
    # Outside the array counts as valid for erode(): keep centres away from the borders too.
    half = template_size // 2
    allowed[:half, :] = False
    allowed[-half:, :] = False
    allowed[:, :half] = False
    allowed[:, -half:] = False
    if not allowed.any():
        return np.zeros((0, 2), dtype=np.int64), 0.0
    resp = structure_response(img, both, sigma, max(2.0, template_size / 8.0))
    vals = resp[allowed]
    texture = float(np.percentile(vals, 90)) if vals.size else 0.0
    if texture <= 1e-6 * max(1.0, float(np.abs(img[both]).mean()) if both.any() else 1.0) ** 2:
        return np.zeros((0, 2), dtype=np.int64), 0.0
    pts = grid_peaks(resp, allowed, spacing, max_points=max_points)
    return pts, texture
