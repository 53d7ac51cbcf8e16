"""VOC AP against hand-computed cases and pycocotools; WBF / NMS / soft-NMS and their box normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from saropt.detection.fusion import denormalise_boxes, fuse, fuse_all, normalise_boxes
from saropt.detection.metrics import Detections, average_precision, coco_ap, plot_pr_curves, voc_ap
from saropt.errors import ConfigError, InputError

GT = [{"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]]}, {"boxes": [[0, 0, 10, 10]]}]


def test_ap_hand_computed():
    # ranked: TP (0.9), FP (0.8), TP (0.7), duplicate of a taken GT = FP (0.6); 3 GT boxes
    preds = [Detections([[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8, 0.6]),
             Detections([[0, 0, 10, 11]], [0.7])]
    r = voc_ap(preds, GT)
    np.testing.assert_allclose(r.precision, [1, 1 / 2, 2 / 3, 2 / 4])
    np.testing.assert_allclose(r.recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    # envelope: 1 up to recall 1/3, 2/3 up to 2/3, nothing beyond -> AP = 1/3 + 1/3 * 2/3
    assert r.ap == pytest.approx(1 / 3 + 2 / 9)
    assert (r.tp, r.fp, r.num_gt) == (2, 2, 3)
    perfect = [Detections(g["boxes"], [0.9] * len(g["boxes"])) for g in GT]
    assert voc_ap(perfect, GT).ap == pytest.approx(1.0)
    assert voc_ap([Detections.empty(), Detections.empty()], GT).ap == 0.0
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx(0.75)


def test_iou_threshold_and_difficult_are_ignored():
    gt = [{"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "difficult": [False, True]}]
    # IoU of [0,0,10,10] with [0,0,10,20] is 0.5 exactly: a TP at 0.5; the detection on the difficult box
    # counts as neither TP nor FP
    preds = [Detections([[0, 0, 10, 20], [20, 20, 30, 30]], [0.9, 0.95])]
    r = voc_ap(preds, gt)
    assert (r.tp, r.fp, r.num_gt, r.num_det) == (1, 0, 1, 1)
    assert r.ap == pytest.approx(1.0)
    assert voc_ap(preds, gt, iou_threshold=0.6).ap == 0.0
    with pytest.raises(InputError, match="align"):
        voc_ap(preds, gt * 2)


def test_voc_ap50_close_to_pycocotools_ap50():
    """All-point VOC AP and pycocotools' 101-point AP50 agree to within interpolation differences."""
    rng = np.random.default_rng(0)
    gts, preds, sizes = [], [], []
    for _ in range(30):
        n = int(rng.integers(1, 5))
        xy = rng.uniform(0, 200, size=(n, 2))
        wh = rng.uniform(8, 40, size=(n, 2))
        g = np.hstack([xy, xy + wh])
        gts.append({"boxes": g})
        jitter = g + rng.normal(0, 3, size=g.shape)
        fp_xy = rng.uniform(0, 200, size=(2, 2))
        fps = np.hstack([fp_xy, fp_xy + 20])
        boxes = np.vstack([jitter, fps])
        scores = np.concatenate([rng.uniform(0.3, 1.0, n), rng.uniform(0.0, 0.8, 2)])
        preds.append(Detections(boxes, scores))
        sizes.append((260, 260))
    ours = voc_ap(preds, gts).ap
    coco = coco_ap(preds, gts, sizes)
    assert 0.5 < ours < 1.0
    assert abs(ours - coco["ap50"]) < 0.01
    assert coco["ap"] < coco["ap50"]
    perfect = [Detections(g["boxes"], np.ones(len(g["boxes"]))) for g in gts]
    assert coco_ap(perfect, gts, sizes)["ap"] == pytest.approx(1.0)


def test_pr_curve_png(tmp_path):
    preds = [Detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8]), Detections([[0, 0, 10, 11]], [0.7])]
    plot_pr_curves({"a": voc_ap(preds, GT)}, tmp_path / "pr.png", "test")
    assert (tmp_path / "pr.png").stat().st_size > 1000


def test_normalisation_round_trip():
    boxes = np.array([[10.0, 5.0, 40.0, 25.0], [0.0, 0.0, 64.0, 48.0]])
    n = normalise_boxes(boxes, 64, 48)
    assert n.min() >= 0 and n.max() <= 1
    np.testing.assert_allclose(denormalise_boxes(n, 64, 48), boxes)
    np.testing.assert_allclose(normalise_boxes([[-5, -5, 70, 50]], 64, 48), [[0, 0, 1, 1]])  # clipped


def test_wbf_averages_and_downweights_single_sources():
    a = Detections([[10, 10, 30, 30], [100, 100, 120, 120]], [0.9, 0.6])
    b = Detections([[12, 12, 32, 32]], [0.3])
    out = fuse([a, b], 200, 150, method="wbf", iou_thr=0.5)
    assert len(out) == 2
    # the pair is averaged weighted by score: (0.9 * 10 + 0.3 * 12) / 1.2 = 10.5
    np.testing.assert_allclose(out.boxes[0], [10.5, 10.5, 30.5, 30.5], atol=1e-3)
    assert out.scores[0] == pytest.approx(0.6, abs=1e-4)  # mean of 0.9 and 0.3, both sources present
    assert out.scores[1] == pytest.approx(0.3, abs=1e-4)  # seen by one of two sources: halved
    w = fuse([a, b], 200, 150, method="wbf", iou_thr=0.5, weights=[3, 1])
    np.testing.assert_allclose(w.boxes[0, 0], (0.9 * 3 * 10 + 0.3 * 12) / (0.9 * 3 + 0.3), atol=1e-3)
    n = fuse([a, b], 200, 150, method="nms", iou_thr=0.5)
    np.testing.assert_allclose(n.boxes, [[10, 10, 30, 30], [100, 100, 120, 120]], atol=1e-3)
    s = fuse([a, b], 200, 150, method="soft_nms", iou_thr=0.5, sigma=0.5)
    # the overlapping box survives with a decayed score: IoU 324/476 -> 0.3 * exp(-IoU^2 / 0.5)
    assert len(s) == 3
    assert s.scores[-1] == pytest.approx(0.3 * np.exp(-((324 / 476) ** 2) / 0.5))
    assert len(fuse([], 10, 10)) == 0
    assert len(fuse_all([[a], [b]], [(200, 150)])) == 1
    with pytest.raises(ConfigError, match="one per source"):
        fuse([a, b], 200, 150, weights=[1.0])
    with pytest.raises(ConfigError, match="unknown fusion"):
        fuse([a], 200, 150, method="mean")
