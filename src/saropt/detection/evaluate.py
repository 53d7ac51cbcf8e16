"""Evaluate detectors and their fusion on one split: predictions, metrics, a comparison table, PR curves.

:func:`compare` takes named prediction sets (one per detector, plus fused ones) for the same records and writes::

    OUT/comparison.md        markdown table: method, VOC AP@0.5, COCO AP, AP75, best F1, TP/FP at best F1
    OUT/comparison.json      the same figures, machine-readable, plus inshore/offshore APs where known
    OUT/pr_curves.png        precision-recall curves
    OUT/predictions/<name>.json   per-image detections (reusable: fusion can be recomputed without models)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saropt.detection.datasets import ShipRecord
from saropt.detection.metrics import Detections, coco_ap, plot_pr_curves, split_by_scene_type, voc_ap
from saropt.errors import InputError

log = logging.getLogger(__name__)


def predict_records(
    model: Any, records: Sequence[ShipRecord], role: str = "sar", *, device: Any = None, batch_size: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Detections]:
    """Run a detector over records (whole images or chips).

    Args:
        model: a detector (any torchvision detection model with ``model.spec``).
        records: images to predict.
        role: ``"sar"`` or ``"optical"``.
        device: torch device (default: the model's).
        batch_size: images per forward pass.
        on_progress: called with ``(done, total)`` after each batch.

    Returns:
        One :class:`Detections` per record (ship class only).

    Convention:
        Boxes in pixel-edge coordinates of each record's image.
    """
    import torch

    from saropt.detection.samples import ShipDataset

    ds = ShipDataset(records, role, model.spec.in_chans)
    dev = device if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[Detections] = []
    with torch.inference_mode():
        for s in range(0, len(ds), batch_size):
            imgs = [ds[i][0].to(dev) for i in range(s, min(len(ds), s + batch_size))]
            for r in model(imgs):
                keep = r["labels"] == 1
                out.append(Detections(r["boxes"][keep].cpu().double().numpy(), r["scores"][keep].cpu().double().numpy()))
            if on_progress:
                on_progress(len(out), len(ds))
    if was_training:
        model.train()
    return out


def metrics_for(preds: Sequence[Detections], records: Sequence[ShipRecord]) -> dict[str, Any]:
    """VOC AP@0.5, COCO APs, best F1 and, where the dataset says, inshore/offshore AP@0.5.

    Raises:
        InputError: predictions and records are not aligned.
    """
    if len(preds) != len(records):
        raise InputError(f"{len(preds)} prediction sets for {len(records)} images")
    res = voc_ap(preds, records)
    f1, thr = res.best_f1()
    k = int(np.sum(res.scores >= thr)) if res.scores.size else 0
    tp = round(res.recall[k - 1] * res.num_gt) if k else 0
    out: dict[str, Any] = {
        "ap50": res.ap, "best_f1": f1, "f1_threshold": thr, "tp_at_f1": tp, "fp_at_f1": k - tp,
        "num_gt": res.num_gt, "images": len(records),
    }
    out["coco"] = coco_ap(preds, records, [(r.width, r.height) for r in records])
    for kind, idx in split_by_scene_type(records).items():
        out[f"ap50_{kind}"] = voc_ap([preds[i] for i in idx], [records[i] for i in idx]).ap
    return out


def save_predictions(path: str | os.PathLike[str], preds: Sequence[Detections], records: Sequence[ShipRecord]
                     ) -> None:
    """Write per-image detections as JSON (``[{"name", "boxes", "scores"}]``), atomically."""
    from saropt.io.images import atomic_path

    rows = [{"name": r.name, "boxes": np.round(p.boxes, 2).tolist(), "scores": np.round(p.scores, 5).tolist()}
            for p, r in zip(preds, records, strict=True)]
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(rows))


def load_predictions(path: str | os.PathLike[str], records: Sequence[ShipRecord]) -> list[Detections]:
    """Read detections written by :func:`save_predictions`, aligned to ``records`` by name.

    Raises:
        InputError: the file does not cover every record.
    """
    rows = {r["name"]: r for r in json.loads(Path(path).read_text())}
    missing = [r.name for r in records if r.name not in rows]
    if missing:
        raise InputError(f"{path} has no predictions for {len(missing)} images (e.g. {missing[0]}); predict again")
    return [Detections(np.asarray(rows[r.name]["boxes"]).reshape(-1, 4), rows[r.name]["scores"]) for r in records]


@dataclass(frozen=True)
class Comparison:
    """A comparison table.

    Attributes:
        rows: one dict per method (``method`` plus the figures of :func:`metrics_for`).
        markdown: the table as markdown.
    """

    rows: list[dict[str, Any]]
    markdown: str


def _markdown(rows: Sequence[Mapping[str, Any]], title: str) -> str:
    has_io = any("ap50_inshore" in r for r in rows)
    head = "| method | AP@0.5 (VOC) | COCO AP | COCO AP50 | AP75 | best F1 | TP / FP at best F1 |"
    sep = "|---|---|---|---|---|---|---|"
    if has_io:
        head += " AP@0.5 inshore | AP@0.5 offshore |"
        sep += "---|---|"
    lines = [f"### {title}", "", head, sep] if title else [head, sep]
    for r in rows:
        c = r["coco"]
        line = (f"| {r['method']} | {r['ap50']:.4f} | {c['ap']:.4f} | {c['ap50']:.4f} | {c['ap75']:.4f} | "
                f"{r['best_f1']:.4f} | {r['tp_at_f1']} / {r['fp_at_f1']} |")
        if has_io:
            line += f" {r.get('ap50_inshore', float('nan')):.4f} | {r.get('ap50_offshore', float('nan')):.4f} |"
        lines.append(line)
    n = rows[0]["images"] if rows else 0
    g = rows[0]["num_gt"] if rows else 0
    lines += ["", f"{n} images, {g} ship boxes; VOC AP all-point interpolated, IoU 0.5; COCO AP via pycocotools."]
    if not has_io:
        lines.append("The dataset names no inshore/offshore split, so none is reported.")
    return "\n".join(lines) + "\n"


def compare(
    methods: Mapping[str, Sequence[Detections]], records: Sequence[ShipRecord], out: str | os.PathLike[str] | None,
    title: str = "", extra: Mapping[str, Any] | None = None,
) -> Comparison:
    """Compare named prediction sets on the same records; write the table, JSON, PR curves and predictions.

    Args:
        methods: method name -> aligned detections.
        records: the evaluated images.
        out: output folder (``None``: write nothing).
        title: table title.
        extra: additional JSON fields (e.g. the configuration of each method).

    Returns:
        The table.
    """
    rows = []
    curves = {}
    for name, preds in methods.items():
        m = metrics_for(preds, records)
        rows.append({"method": name, **m})
        curves[name] = voc_ap(preds, records)
    md = _markdown(rows, title)
    if out is not None:
        from saropt.io.images import atomic_path

        o = Path(out)
        (o / "predictions").mkdir(parents=True, exist_ok=True)
        for name, preds in methods.items():
            save_predictions(o / "predictions" / f"{_safe(name)}.json", preds, records)
        with atomic_path(o / "comparison.md") as tmp:
            Path(tmp).write_text(md)
        with atomic_path(o / "comparison.json") as tmp:
            Path(tmp).write_text(json.dumps({"title": title, "rows": rows, **(extra or {})}, indent=2, default=float))
        plot_pr_curves(curves, o / "pr_curves.png", title)
    return Comparison(rows, md)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def evaluate_checkpoints(
    checkpoints: Mapping[str, str | os.PathLike[str]], *, data: str | None = None, fmt: str | None = None,
    split: str = "test", fusions: Sequence[str] = ("wbf",), weights: Sequence[float] | None = None,
    iou_thr: float = 0.55, out: str | os.PathLike[str] | None = None, device: str = "auto",
    max_images: int = 0, on_progress: Callable[[str, int, int], None] | None = None,
) -> Comparison:
    """Evaluate detector checkpoints on one split and, with two or more, their fusion.

    Args:
        checkpoints: method name -> checkpoint file or run folder.
        data: dataset root (default: the first checkpoint's training data).
        fmt: dataset format (default: the first checkpoint's).
        split: split evaluated.
        fusions: fusion methods of all detectors' outputs (``wbf``, ``nms``, ``soft_nms``); ignored with one.
        weights: per-detector fusion weights (default equal).
        iou_thr: fusion IoU threshold.
        out: output folder for :func:`compare` (``None``: nothing written).
        device: ``auto``, ``cpu`` or ``cuda``.
        max_images: evaluate a seeded subset (0 = all).
        on_progress: called with ``(method, done, total)``.

    Returns:
        The comparison table.

    Raises:
        CheckpointError: unreadable checkpoints. DatasetNotFoundError: missing data. ConfigError: bad options.
    """
    from saropt.detection.checkpoint import detector_from_checkpoint
    from saropt.detection.config import DetectTrainConfig
    from saropt.detection.datasets import read_records, subset
    from saropt.detection.fusion import fuse_all
    from saropt.detection.train import resolve_device

    if not checkpoints:
        raise InputError("give at least one checkpoint to evaluate")
    dev = resolve_device(device)
    preds: dict[str, list[Detections]] = {}
    records: list[ShipRecord] | None = None
    role = "sar"
    info: dict[str, Any] = {"split": split, "checkpoints": {}}
    for name, path in checkpoints.items():
        model, ckpt = detector_from_checkpoint(path)
        cfg = DetectTrainConfig.from_dict(ckpt["config"])
        if records is None:
            root = data or cfg.data
            fm = fmt or cfg.format
            records = subset(read_records(fm, root, split or None, classes=cfg.classes), max_images, 0)
            role = cfg.role
            info.update({"data": str(root), "format": fm})
        model.to(dev)
        cb = (lambda d, t, n=name: on_progress(n, d, t)) if on_progress else None
        preds[name] = predict_records(model, records, role, device=dev, on_progress=cb)
        info["checkpoints"][name] = {"path": ckpt["path"], "init": ckpt.get("init", {}).get("init", ""),
                                     "steps": ckpt.get("step"), "epochs": ckpt.get("epoch")}
    if records is None:  # pragma: no cover - checkpoints is not empty
        raise InputError("no records to evaluate")
    methods: dict[str, list[Detections]] = dict(preds)
    if len(preds) > 1:
        sizes = [(r.width, r.height) for r in records]
        joined = "+".join(preds)
        for f in fusions:
            methods[f"{f.upper()}({joined})"] = fuse_all(list(preds.values()), sizes, method=f, weights=weights,
                                                         iou_thr=iou_thr)
    info["fusion"] = {"methods": list(fusions), "weights": list(weights) if weights else None, "iou_thr": iou_thr}
    return compare(methods, records, out, title=f"{info.get('data', '')} split {split}", extra=info)
