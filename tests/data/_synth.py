"""Shared helpers of the fake-dataset generators: structured scenes with aligned SAR and optical views.

Each fake scene is a smooth random field with a few bright blobs and straight edges; the SAR view is the field
under gamma speckle, the optical view is a colour mapping of the same field. Pairs are therefore aligned
(gradient structure matches at zero shift), which the pair/alignment tests rely on, and different scenes or
windows look different, which negatives rely on.
"""

from __future__ import annotations

import numpy as np


def scene_field(seed: int, height: int, width: int) -> np.ndarray:
    """A ``(height, width)`` float32 field in [0, 1] with smooth texture, edges and blobs."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((height // 8 + 2, width // 8 + 2)).astype(np.float32)
    field = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(3):  # straight edges (fields, roads)
        a, b = rng.normal(size=2)
        c = rng.uniform(-0.5, 0.5) * (height + width)
        field += 0.35 * ((a * xx + b * yy + c) > 0)
    for _ in range(4):  # bright blobs (buildings)
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(2, max(3, width / 10))
        field += 0.6 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    field -= field.min()
    return (field / max(float(field.max()), 1e-6)).astype(np.float32)


def sar_view(field: np.ndarray, seed: int, looks: float = 4.0) -> np.ndarray:
    """8-bit SAR-like view: the field (as intensity) under gamma speckle of ``looks`` looks, in dB,
    stretched."""
    rng = np.random.default_rng(seed)
    intensity = (0.05 + field) * rng.gamma(looks, 1.0 / looks, field.shape)
    db = 10 * np.log10(intensity)
    return np.clip((db + 14.0) / 20.0 * 255.0, 0, 255).astype(np.uint8)


def sar_db(field: np.ndarray, seed: int, looks: float = 4.0) -> np.ndarray:
    """float32 sigma0 in dB (about -25..0) under speckle."""
    rng = np.random.default_rng(seed)
    intensity = (0.003 + 0.3 * field) * rng.gamma(looks, 1.0 / looks, field.shape)
    return (10 * np.log10(intensity)).astype(np.float32)


def opt_view(field: np.ndarray) -> np.ndarray:
    """8-bit RGB ``(H, W, 3)`` view of the field (vegetation-green to built-up grey)."""
    r = 40 + 180 * field
    g = 90 + 120 * np.sqrt(field)
    b = 60 + 160 * field**2
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def write_png(path, array: np.ndarray) -> None:
    """Write an ``(H, W)`` or ``(H, W, 3)`` RGB uint8 array as PNG."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    img = array[:, :, ::-1] if array.ndim == 3 else array
    if not cv2.imwrite(str(path), np.ascontiguousarray(img)):
        raise OSError(f"cannot write {path}")
