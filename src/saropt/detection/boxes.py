"""Axis-aligned boxes as numpy arrays (no torch): clipping, areas, IoU, polygons to boxes.

Convention:
    Boxes are ``(N, 4)`` float ``(x1, y1, x2, y2)`` in pixel-edge coordinates: the image spans ``[0, W] x [0, H]``,
    x = column, y = row; saropt's pixel-centre coordinate of an edge is ``edge - 0.5``. ``x2 > x1`` and
    ``y2 > y1`` for a valid box.
"""

from __future__ import annotations

import numpy as np


def as_boxes(boxes: object) -> np.ndarray:
    """``boxes`` as a float64 ``(N, 4)`` array (an empty input gives ``(0, 4)``)."""
    a = np.asarray(boxes, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    return a.reshape(-1, 4)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas ``(N,)`` of ``(N, 4)`` boxes; degenerate boxes have area 0.

    Convention:
        Pixel-edge box coordinates (see module docstring).
    """
    b = as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union ``(N, M)`` of two box sets.

    Convention:
        Pixel-edge box coordinates (continuous areas; no VOC ``+1``).
    """
    a, b = as_boxes(a), as_boxes(b)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip boxes to the image ``[0, width] x [0, height]``.

    Convention:
        Pixel-edge box coordinates.
    """
    b = as_boxes(boxes).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0.0, float(width))
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0.0, float(height))
    return b


def polygons_to_boxes(polygons: np.ndarray) -> np.ndarray:
    """Enclosing horizontal boxes of ``(N, K, 2)`` polygons (e.g. DOTA's 4 corners).

    Convention:
        Polygon vertices and boxes in the same pixel-edge coordinates, x = column, y = row.
    """
    p = np.asarray(polygons, dtype=np.float64)
    if p.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    p = p.reshape(len(p), -1, 2)
    return np.stack([p[..., 0].min(1), p[..., 1].min(1), p[..., 0].max(1), p[..., 1].max(1)], axis=1)


def crop_boxes(
    boxes: np.ndarray, x0: float, y0: float, width: float, height: float, *, min_area_fraction: float = 0.3,
    min_size: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of a crop: shifted into the crop, clipped, tiny remnants dropped.

    A box is kept when its clipped part keeps at least ``min_area_fraction`` of its own area and both sides of the
    clipped box are at least ``min_size`` pixels.

    Args:
        boxes: ``(N, 4)`` boxes in the full image.
        x0: left edge of the crop in the full image.
        y0: top edge of the crop.
        width: crop width.
        height: crop height.
        min_area_fraction: smallest kept fraction of a box's area.
        min_size: smallest side (pixels) of a kept clipped box.

    Returns:
        ``(kept_boxes, keep_index)``: ``(K, 4)`` boxes in crop coordinates and the ``(K,)`` indexes of the kept
        input boxes.

    Convention:
        Pixel-edge coordinates; the crop covers ``[x0, x0 + width] x [y0, y0 + height]`` of the full image and
        its own coordinates start at 0.
    """
    b = as_boxes(boxes)
    shifted = b - np.array([x0, y0, x0, y0], dtype=np.float64)
    clipped = clip_boxes(shifted, width, height)
    area = box_area(b)
    kept_area = box_area(clipped)
    w = clipped[:, 2] - clipped[:, 0]
    h = clipped[:, 3] - clipped[:, 1]
    frac = np.where(area > 0, kept_area / np.where(area > 0, area, 1.0), 0.0)
    keep = (frac >= min_area_fraction) & (w >= min_size) & (h >= min_size)
    idx = np.nonzero(keep)[0]
    return clipped[idx], idx
