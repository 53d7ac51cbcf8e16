"""Combine detections: weighted boxes fusion (WBF), NMS and soft-NMS, through the ensemble-boxes package (MIT).

ensemble-boxes works on boxes normalised to ``[0, 1]`` by the image size; these functions take and return
pixel boxes and do the normalisation (and its inverse) themselves, clipping to the image first (ensemble-boxes
clips silently and warns). One call fuses the detections of **one image** from one or more sources (models, or
overlapping tiles of a scene).

- ``wbf``: clusters boxes of all sources with IoU > ``iou_thr`` and averages their coordinates weighted by score
  (and source weight); a fused box seen by fewer sources than there are is down-weighted (``conf_type="avg"``).
- ``nms``: keeps the best-scoring box of each overlapping group.
- ``soft_nms``: decays the scores of overlapping boxes (Gaussian, ``sigma``) instead of removing them. This one is
  implemented here: ensemble-boxes' ``soft_nms`` returns the *undecayed* scores of the boxes it keeps, which makes
  it a plain score threshold as far as AP is concerned.

Convention:
    Boxes in pixel-edge coordinates (image spans ``[0, W] x [0, H]``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from saropt.detection.boxes import clip_boxes
from saropt.detection.metrics import Detections
from saropt.errors import ConfigError, InputError, require

METHODS = ("wbf", "nms", "soft_nms", "none")


def normalise_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixel boxes to ensemble-boxes' ``[0, 1]`` coordinates (clipped to the image first).

    Convention:
        Input pixel-edge coordinates; output fractions of the image width/height.
    """
    if width <= 0 or height <= 0:
        raise InputError(f"image size must be positive, got {width}x{height}")
    b = clip_boxes(boxes, width, height)
    return b / np.array([width, height, width, height], dtype=np.float64)


def denormalise_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Inverse of :func:`normalise_boxes` (for boxes inside the image)."""
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * np.array([width, height, width, height])


def fuse(
    sources: Sequence[Detections], width: float, height: float, *, method: str = "wbf",
    weights: Sequence[float] | None = None, iou_thr: float = 0.55, skip_box_thr: float = 0.0, sigma: float = 0.5,
    conf_type: str = "avg",
) -> Detections:
    """Fuse the detections of one image from several sources.

    Args:
        sources: one :class:`Detections` per source (model or tile).
        width: image width in pixels.
        height: image height in pixels.
        method: ``"wbf"``, ``"nms"``, ``"soft_nms"`` or ``"none"`` (concatenate).
        weights: one weight per source (default: equal).
        iou_thr: IoU above which boxes are the same object.
        skip_box_thr: ignore input boxes scoring below this.
        sigma: soft-NMS Gaussian width.
        conf_type: WBF score rule (ensemble-boxes: ``avg``, ``max``, ``box_and_model_avg``, ``absent_model_aware_avg``).

    Returns:
        The fused detections, sorted by decreasing score.

    Raises:
        ConfigError: unknown method, bad threshold or a weight count that does not match.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown fusion method {method!r}; use one of {', '.join(METHODS)}")
    if not 0.0 < iou_thr <= 1.0:
        raise ConfigError(f"iou_thr must be in (0, 1], got {iou_thr}")
    if weights is not None and len(weights) != len(sources):
        raise ConfigError(f"{len(weights)} fusion weights for {len(sources)} sources; give one per source")
    if not sources:
        return Detections.empty()
    if method == "none":
        b = np.concatenate([s.boxes for s in sources])
        sc = np.concatenate([s.scores for s in sources])
        o = np.argsort(-sc, kind="stable")
        return Detections(b[o], sc[o])
    kept = [s.above(skip_box_thr) for s in sources]
    if sum(len(s) for s in kept) == 0:
        return Detections.empty()
    eb: Any = require("ensemble_boxes", "torch")
    boxes = [normalise_boxes(s.boxes, width, height).tolist() for s in kept]
    scores = [np.clip(s.scores, 0.0, 1.0).tolist() for s in kept]
    labels = [[0] * len(s) for s in kept]
    w = list(weights) if weights is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero-area boxes are dropped by ensemble-boxes with a warning
        if method == "wbf":
            fb, fs, _ = eb.weighted_boxes_fusion(boxes, scores, labels, weights=w, iou_thr=iou_thr,
                                                 skip_box_thr=skip_box_thr, conf_type=conf_type)
        elif method == "nms":
            fb, fs, _ = eb.nms(boxes, scores, labels, weights=w, iou_thr=iou_thr)
        else:
            return soft_nms(kept, weights=w, sigma=sigma, thresh=max(skip_box_thr, 1e-3))
    fs = np.asarray(fs, dtype=np.float64)
    o = np.argsort(-fs, kind="stable")
    return Detections(denormalise_boxes(np.asarray(fb), width, height)[o], fs[o])


def fuse_all(
    per_source: Sequence[Sequence[Detections]], sizes: Sequence[tuple[int, int]], **kwargs: object
) -> list[Detections]:
    """Fuse aligned per-image detections of several sources, image by image.

    Args:
        per_source: ``per_source[m][i]`` is source ``m``'s detections on image ``i``.
        sizes: ``(width, height)`` of each image.
        **kwargs: passed to :func:`fuse`.

    Returns:
        One fused :class:`Detections` per image.

    Raises:
        InputError: sources of different lengths.
    """
    n = len(sizes)
    if any(len(s) != n for s in per_source):
        raise InputError("every source needs one detection set per image")
    return [fuse([s[i] for s in per_source], sizes[i][0], sizes[i][1], **kwargs) for i in range(n)]  # type: ignore[arg-type]


def soft_nms(sources: Sequence[Detections], *, weights: Sequence[float] | None = None, sigma: float = 0.5,
             thresh: float = 1e-3) -> Detections:
    """Gaussian soft-NMS (Bodla et al. 2017) over the detections of all sources, with decayed scores.

    Repeatedly takes the highest-scoring box and multiplies the scores of the remaining boxes by
    ``exp(-IoU^2 / sigma)``; boxes whose score falls below ``thresh`` are dropped. Source weights scale the input
    scores (``w / mean(w)``).

    Args:
        sources: detections per source.
        weights: one weight per source (default equal).
        sigma: Gaussian width.
        thresh: drop boxes scoring below this.

    Returns:
        Kept boxes with their decayed scores, sorted by decreasing score.

    Convention:
        Pixel-edge box coordinates.
    """
    from saropt.detection.boxes import box_iou

    if sigma <= 0:
        raise ConfigError(f"soft-NMS sigma must be > 0, got {sigma}")
    w = np.ones(len(sources)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.mean()
    boxes = np.concatenate([s.boxes for s in sources] or [np.zeros((0, 4))])
    scores = np.concatenate([s.scores * wi for s, wi in zip(sources, w, strict=True)] or [np.zeros(0)])
    out_b, out_s = [], []
    while scores.size:
        i = int(np.argmax(scores))
        if scores[i] < thresh:
            break
        out_b.append(boxes[i])
        out_s.append(scores[i])
        rest = np.ones(len(scores), dtype=bool)
        rest[i] = False
        iou = box_iou(boxes[i][None], boxes[rest])[0]
        boxes, scores = boxes[rest], scores[rest] * np.exp(-(iou ** 2) / sigma)
    return Detections(np.asarray(out_b).reshape(-1, 4), np.asarray(out_s))
