"""Synthetic SAR/optical pairs with exactly known geometry for the automatic-registration tests.

An "optical-like" world (fields, buildings, roads, blobs on a smooth background) is drawn once; the SAR-like
image is a crop of it after a non-linear radiometric change (reversed contrast, bright edges like double
bounce) and gamma speckle; the optical-like image samples the world through a known transform. Nothing here is
periodic, so a wrong match cannot line up by accident.

Convention:
    Pixel coordinates x = column, y = row, 0-based, pixel centres at integers; ``truth`` maps optical pixels to
    SAR pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


def optical_world(size: int, seed: int) -> np.ndarray:
    """A ``(size, size)`` float32 optical-like scene in [0, 1]."""
    rng = np.random.default_rng(seed)
    low = cv2.resize(rng.random((8, 8)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    img = 0.35 + 0.15 * low
    n_rect = int(size * size / 2500)
    for _ in range(n_rect):
        cx, cy = rng.uniform(0, size, 2)
        w, h = rng.uniform(8, 40, 2)
        ang = rng.uniform(0, 180)
        box = cv2.boxPoints(((float(cx), float(cy)), (float(w), float(h)), float(ang))).astype(np.int32)
        cv2.fillPoly(img, [box], float(rng.uniform(0.05, 0.95)))
    for _ in range(int(size / 40)):
        p0 = rng.uniform(0, size, 2).astype(int)
        p1 = rng.uniform(0, size, 2).astype(int)
        cv2.line(
            img,
            tuple(int(v) for v in p0),
            tuple(int(v) for v in p1),
            float(rng.uniform(0.0, 1.0)),
            int(rng.integers(2, 5)),
        )
    for _ in range(int(size / 60)):
        c = tuple(int(v) for v in rng.uniform(0, size, 2))
        ax = tuple(int(v) for v in rng.uniform(6, 30, 2))
        cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.1, 0.9)), -1)
    img += 0.03 * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(img, (0, 0), 0.8), 0.0, 1.0).astype(np.float32)


def sar_like(world: np.ndarray, seed: int, looks: float = 4.0) -> np.ndarray:
    """SAR-like amplitude of an optical-like image: non-linear radiometry plus gamma speckle (float32)."""
    rng = np.random.default_rng(seed + 1000)
    gx = cv2.Sobel(world, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(world, cv2.CV_32F, 0, 1, ksize=3)
    edges = np.sqrt(gx * gx + gy * gy)
    sigma0 = 0.04 + 0.5 * (1.0 - world) ** 2 + 1.5 * np.clip(edges, 0, 1) ** 1.5
    speckle = rng.gamma(looks, 1.0 / looks, size=world.shape).astype(np.float32)
    return (np.sqrt(sigma0 * speckle) * 100.0).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Pair:
    """A synthetic pair and its truth.

    Attributes:
        sar: ``(H, W)`` float32 SAR-like amplitude.
        opt: ``(h, w)`` uint8 optical-like image.
        truth: 3x3 optical -> SAR matrix (the linear part of the mapping).
        mapping: optical ``(N, 2)`` -> SAR ``(N, 2)`` true mapping (includes any local distortion).
    """

    sar: np.ndarray
    opt: np.ndarray
    truth: np.ndarray
    mapping: Callable[[np.ndarray], np.ndarray]


def similarity(
    angle_deg: float, scale: float, center_opt: tuple[float, float], center_sar: tuple[float, float]
) -> np.ndarray:
    """Optical -> SAR similarity taking ``center_opt`` to ``center_sar`` (OpenCV angle sign)."""
    m = np.vstack([cv2.getRotationMatrix2D(center_opt, angle_deg, scale), [0.0, 0.0, 1.0]])
    m[:2, 2] += np.asarray(center_sar) - np.asarray(center_opt)
    return m


def make_pair(
    truth: np.ndarray,
    *,
    sar_size: int = 256,
    opt_size: tuple[int, int] = (256, 256),
    seed: int = 0,
    distortion: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Pair:
    """A SAR-like crop of a synthetic world and the optical-like view of it through ``truth``.

    Args:
        truth: 3x3 optical -> SAR matrix.
        sar_size: SAR side in pixels.
        opt_size: optical ``(height, width)``.
        seed: world and speckle seed.
        distortion: optional extra SAR displacement ``d(q)`` of optical points ``q`` (``(N, 2) -> (N, 2)``).

    Returns:
        The :class:`Pair`.
    """
    world_size = 3 * sar_size
    origin = float(sar_size)
    world = optical_world(world_size, seed)
    sar = sar_like(world, seed)[sar_size : 2 * sar_size, sar_size : 2 * sar_size]

    def mapping(q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64).reshape(-1, 2)
        p = q @ truth[:2, :2].T + truth[:2, 2]
        if distortion is not None:
            p = p + distortion(q)
        return p

    h, w = opt_size
    ys, xs = np.mgrid[0:h, 0:w]
    q = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    p = mapping(q) + origin
    mx = p[:, 0].reshape(h, w).astype(np.float32)
    my = p[:, 1].reshape(h, w).astype(np.float32)
    opt = cv2.remap(world, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    opt_u8 = np.clip(opt * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Pair(sar=sar, opt=opt_u8, truth=truth, mapping=mapping)


def grid_rmse(
    estimate_forward: Callable[[np.ndarray], np.ndarray], pair: Pair, step: int = 16, margin: int = 24
) -> float:
    """RMSE (SAR px) of an estimated optical -> SAR mapping against the truth, over optical grid points whose
    true SAR position lies inside the SAR image (``margin`` pixels from its border)."""
    h, w = pair.opt.shape[:2]
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    q = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    p = pair.mapping(q)
    n = pair.sar.shape[0]
    inside = (p >= margin).all(axis=1) & (p < n - margin).all(axis=1)
    e = np.asarray(estimate_forward(q[inside])) - p[inside]
    return float(np.sqrt((e**2).sum(axis=1).mean()))
