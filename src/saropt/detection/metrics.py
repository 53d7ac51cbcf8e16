"""Detection metrics: VOC AP@0.5 (all-point interpolation, VOC2010+), COCO AP (pycocotools), PR curves.

VOC protocol: detections of all images are sorted by score; each is a true positive when its best-overlapping
ground-truth box (IoU >= ``iou_threshold``) is not yet taken, else a false positive; a detection whose best
match is a ``difficult`` box counts as neither, and difficult boxes are not in the recall denominator. AP is the
area under the precision envelope (precision made monotonically non-increasing), summed at every recall change.
IoU uses continuous pixel-edge areas (no VOC ``+1``), the same as COCO.

Convention:
    Boxes in pixel-edge coordinates ``(x1, y1, x2, y2)``; predictions and records are aligned by position.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from saropt.detection.boxes import as_boxes, box_iou
from saropt.errors import InputError


@dataclass(frozen=True)
class Detections:
    """Ship detections of one image.

    Attributes:
        boxes: ``(N, 4)`` float64 boxes.
        scores: ``(N,)`` float64 confidences in ``[0, 1]``.

    Convention:
        Pixel-edge coordinates of the image (see :mod:`saropt.detection`).
    """

    boxes: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        b = as_boxes(self.boxes)
        s = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if len(b) != len(s):
            raise InputError(f"detections have {len(b)} boxes but {len(s)} scores")
        object.__setattr__(self, "boxes", b)
        object.__setattr__(self, "scores", s)

    def __len__(self) -> int:
        return len(self.scores)

    def above(self, threshold: float) -> Detections:
        """Detections with ``score >= threshold``."""
        k = self.scores >= threshold
        return Detections(self.boxes[k], self.scores[k])

    @staticmethod
    def empty() -> Detections:
        """No detection."""
        return Detections(np.zeros((0, 4)), np.zeros(0))


@dataclass(frozen=True)
class APResult:
    """VOC average precision and the curve behind it.

    Attributes:
        ap: average precision (NaN when there is no non-difficult ground truth).
        precision: ``(K,)`` precision after each ranked detection (difficult matches skipped).
        recall: ``(K,)`` recall after each ranked detection.
        scores: ``(K,)`` the ranked detections' scores.
        num_gt: non-difficult ground-truth boxes.
        num_det: detections counted (TP + FP).
        tp: true positives at the lowest score.
        fp: false positives at the lowest score.
    """

    ap: float
    precision: np.ndarray = field(repr=False)
    recall: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    num_gt: int
    num_det: int
    tp: int
    fp: int

    def best_f1(self) -> tuple[float, float]:
        """``(F1, score threshold)`` at the best F1 point of the curve (``(0, 1)`` without detections)."""
        if self.precision.size == 0:
            return 0.0, 1.0
        f1 = 2 * self.precision * self.recall / np.maximum(self.precision + self.recall, 1e-12)
        i = int(np.argmax(f1))
        return float(f1[i]), float(self.scores[i])


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP (VOC2010+): area under the monotone precision envelope.

    Args:
        recall: ``(K,)`` non-decreasing recall values.
        precision: ``(K,)`` precision values.

    Returns:
        AP in ``[0, 1]``.
    """
    r = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    idx = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[idx + 1] - r[idx]) * p[idx + 1]))


def _gt_of(item: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(item, "boxes") and hasattr(item, "difficult"):
        return as_boxes(item.boxes), np.asarray(item.difficult, dtype=bool).reshape(-1)
    if isinstance(item, Mapping):
        b = as_boxes(item["boxes"])
        d = np.asarray(item.get("difficult", np.zeros(len(b), bool)), dtype=bool).reshape(-1)
        return b, d
    b = as_boxes(item)
    return b, np.zeros(len(b), dtype=bool)


def voc_ap(predictions: Sequence[Detections], ground_truth: Sequence[Any], iou_threshold: float = 0.5
           ) -> APResult:
    """VOC average precision of single-class detections.

    Args:
        predictions: one :class:`Detections` per image.
        ground_truth: one entry per image, aligned: a :class:`~saropt.detection.datasets.ShipRecord`, a mapping
            with ``boxes`` (and optional ``difficult``), or a box array.
        iou_threshold: IoU for a true positive.

    Returns:
        The AP and its precision-recall curve.

    Raises:
        InputError: predictions and ground truth are not aligned.
    """
    if len(predictions) != len(ground_truth):
        raise InputError(f"{len(predictions)} prediction sets for {len(ground_truth)} images; align them")
    gts = [_gt_of(g) for g in ground_truth]
    num_gt = int(sum(int((~d).sum()) for _, d in gts))
    img_idx = np.concatenate([np.full(len(p), i) for i, p in enumerate(predictions)] or [np.zeros(0)]).astype(int)
    scores = np.concatenate([p.scores for p in predictions] or [np.zeros(0)])
    order = np.argsort(-scores, kind="stable")
    taken = [np.zeros(len(b), dtype=bool) for b, _ in gts]
    ious = [box_iou(predictions[i].boxes, gts[i][0]) for i in range(len(gts))]
    offsets = np.cumsum([0] + [len(p) for p in predictions])
    outcome = np.zeros(len(order), dtype=np.int8)  # 1 tp, -1 fp, 0 ignored
    for n, k in enumerate(order):
        i = img_idx[k]
        gb, gd = gts[i]
        if len(gb) == 0:
            outcome[n] = -1
            continue
        row = ious[i][k - offsets[i]]
        j = int(np.argmax(row))
        if row[j] < iou_threshold:
            outcome[n] = -1
        elif gd[j]:
            outcome[n] = 0
        elif not taken[i][j]:
            taken[i][j] = True
            outcome[n] = 1
        else:
            outcome[n] = -1
    keep = outcome != 0
    tp = np.cumsum(outcome[keep] == 1)
    fp = np.cumsum(outcome[keep] == -1)
    ranked_scores = scores[order][keep]
    recall = tp / num_gt if num_gt else np.zeros(len(tp))
    precision = tp / np.maximum(tp + fp, 1)
    ap = average_precision(recall, precision) if num_gt else float("nan")
    return APResult(ap, precision, recall, ranked_scores, num_gt, int(keep.sum()),
                    int(tp[-1]) if len(tp) else 0, int(fp[-1]) if len(fp) else 0)


def coco_ap(predictions: Sequence[Detections], ground_truth: Sequence[Any], sizes: Sequence[tuple[int, int]]
            ) -> dict[str, float]:
    """COCO AP through pycocotools (difficult / crowd boxes become ``iscrowd`` regions).

    Args:
        predictions: one :class:`Detections` per image.
        ground_truth: aligned ground truth (as :func:`voc_ap`).
        sizes: ``(width, height)`` per image.

    Returns:
        ``{"ap": AP@[.5:.95], "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar100"}`` (-1 where
        pycocotools has no boxes in a size range).

    Raises:
        MissingDependencyError: pycocotools is not installed.
        InputError: misaligned inputs.
    """
    from saropt.errors import require

    require("pycocotools", "torch")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not (len(predictions) == len(ground_truth) == len(sizes)):
        raise InputError("predictions, ground truth and sizes must have one entry per image")
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []
    for i, (p, g, (w, h)) in enumerate(zip(predictions, ground_truth, sizes, strict=True)):
        images.append({"id": i + 1, "width": int(w), "height": int(h), "file_name": str(i)})
        gb, gd = _gt_of(g)
        for b, d in zip(gb, gd, strict=True):
            bw, bh = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": [float(b[0]), float(b[1]), bw, bh],
                         "area": bw * bh, "iscrowd": int(bool(d))})
        for b, s in zip(p.boxes, p.scores, strict=True):
            dets.append({"image_id": i + 1, "category_id": 1, "score": float(s),
                         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    keys = ["ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large"]
    if not anns:
        return {k: float("nan") for k in keys + ["ar100"]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "ship"}]}
        gt.createIndex()
        if not dets:
            return {k: 0.0 for k in keys + ["ar100"]}
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    out = {k: float(v) for k, v in zip(keys, ev.stats[:6], strict=True)}
    out["ar100"] = float(ev.stats[8])
    return out


def split_by_scene_type(records: Sequence[Any]) -> dict[str, list[int]]:
    """Indexes of records per scene type (``inshore``/``offshore``); empty when the dataset does not say."""
    out: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        t = getattr(r, "scene_type", "")
        if t:
            out.setdefault(t, []).append(i)
    return out


def plot_pr_curves(curves: Mapping[str, APResult], path: str | os.PathLike[str], title: str = "") -> None:
    """Write precision-recall curves (one per method) to a PNG.

    Args:
        curves: method name -> its :class:`APResult`.
        path: output ``.png`` (written to a temporary name, then renamed).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from saropt.io.images import atomic_path

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    styles = ("-", "--", "-.", ":")
    for k, (name, res) in enumerate(curves.items()):
        if res.recall.size:  # line styles cycle so that identical curves stay visible
            env = np.maximum.accumulate(res.precision[::-1])[::-1]
            ax.plot(res.recall, env, label=f"{name} (AP {res.ap:.3f})", lw=1.6, ls=styles[k % 4])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (interpolated)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
