"""Ship detection over a whole SAR scene: sliding-window tiles, cross-tile merging, GeoJSON and an overview PNG.

The scene is read tile by tile through :class:`saropt.io.raster.Scene` (never whole), mapped to 8-bit with a
:class:`~saropt.io.radiometry.SarMapping` resolved on a decimated read (dB percentile stretch for 16-bit or float
amplitude; 8-bit passes through), and each tile goes through the detector. Detections that touch an inner tile
edge are dropped when the neighbouring tile covers them whole (the ship is smaller than the overlap); the rest
are merged across tiles with NMS (default), WBF or soft-NMS.

GeoJSON: one Polygon feature per ship. For a georeferenced scene the coordinates are longitude/latitude
(EPSG:4326, RFC 7946); otherwise they are pixel coordinates, and the collection's ``properties`` say so. Each
feature carries ``score`` and ``pixel_box`` (pixel-edge ``[x1, y1, x2, y2]``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from saropt.detection.fusion import fuse
from saropt.detection.metrics import Detections
from saropt.detection.tiling import tile_windows, to_channels
from saropt.errors import ConfigError
from saropt.io.windows import Window

log = logging.getLogger(__name__)

PIXEL_CONVENTION = ("x = column, y = row (downwards), pixel-edge coordinates: the image spans [0, width] x "
                    "[0, height]; saropt's pixel-centre coordinate is this minus 0.5")


@dataclass(frozen=True)
class ScenePrediction:
    """Ships detected in one scene.

    Attributes:
        path: the scene file.
        width: scene width in pixels.
        height: scene height in pixels.
        detections: merged detections in scene pixels.
        tiles: number of tiles read.
        tile: tile side.
        overlap: tile overlap fraction.
        merge: cross-tile merge method.
        crs: the scene CRS (WKT) or ``None``.
        mapping: the resolved radiometric mapping (dict).

    Convention:
        ``detections`` boxes in pixel-edge coordinates of the whole scene.
    """

    path: str
    width: int
    height: int
    detections: Detections = field(repr=False)
    tiles: int
    tile: int
    overlap: float
    merge: str
    crs: str | None
    mapping: dict[str, Any]


def _drop_inner_edge(det: Detections, win: Window, width: int, height: int, overlap_px: int, margin: float = 1.0
                     ) -> Detections:
    """Drop tile detections touching an inner tile edge when the neighbour tile sees them whole."""
    if len(det) == 0 or overlap_px <= 0:
        return det
    b = det.boxes
    size_ok = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) < overlap_px
    touch = np.zeros(len(b), dtype=bool)
    if win.col_off > 0:
        touch |= b[:, 0] <= margin
    if win.row_off > 0:
        touch |= b[:, 1] <= margin
    if win.col_end < width:
        touch |= b[:, 2] >= win.width - margin
    if win.row_end < height:
        touch |= b[:, 3] >= win.height - margin
    keep = ~(touch & size_ok)
    return Detections(b[keep], det.scores[keep])


def predict_scene(
    model: Any, path: str | os.PathLike[str], *, tile: int | None = None, overlap: float = 0.25, merge: str = "nms",
    iou_thr: float = 0.5, score_thresh: float = 0.3, batch_size: int = 4, band: int | None = None,
    device: Any = None, on_progress: Callable[[int, int], None] | None = None,
) -> ScenePrediction:
    """Detect ships over a whole SAR scene.

    Args:
        model: a detector (``model.spec`` gives the input channels).
        path: SAR raster (GeoTIFF, PNG, JPEG ...).
        tile: tile side in pixels (default: the detector's ``min_size``, so tiles are not rescaled; a different
            size is resized by the detector to ``min_size``, changing the apparent ship size).
        overlap: tile overlap fraction in ``[0, 1)``.
        merge: ``"nms"``, ``"wbf"`` or ``"soft_nms"`` across tiles.
        iou_thr: IoU of the cross-tile merge.
        score_thresh: keep detections scoring at least this.
        batch_size: tiles per forward pass.
        band: 1-based band to read (``None``: saropt's SAR default).
        device: torch device (default: the model's).
        on_progress: called with ``(tiles_done, tiles_total)``.

    Returns:
        The merged detections.

    Raises:
        RasterReadError: unreadable scene. ConfigError: bad tiling or merge parameters.

    Convention:
        Boxes in pixel-edge coordinates of the scene (x = column, y = row).
    """
    import torch

    from saropt.io.radiometry import SarMapping
    from saropt.io.raster import open_scene

    if tile is None:
        tile = int(model.spec.min_size)
    if tile < 32:
        raise ConfigError(f"tile must be >= 32 px, got {tile}")
    if merge not in ("nms", "wbf", "soft_nms"):
        raise ConfigError(f"merge must be nms, wbf or soft_nms, got {merge!r}")
    scene = open_scene(path, "sar", bands=(band,) if band else None)
    mapping = SarMapping().resolve(scene)
    windows = tile_windows(scene.width, scene.height, tile, overlap)
    overlap_px = max(0, tile - max(1, round(tile * (1.0 - overlap))))
    dev = device if device is not None else next(model.parameters()).device
    model.eval()
    boxes: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    with torch.inference_mode():
        for s in range(0, len(windows), batch_size):
            wins = windows[s:s + batch_size]
            imgs = []
            for w in wins:
                data, valid = scene.read(w)
                img = to_channels(mapping.apply(data, valid), model.spec.in_chans)
                imgs.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0).to(dev))
            for w, r in zip(wins, model(imgs), strict=True):
                keep = (r["labels"] == 1) & (r["scores"] >= score_thresh)
                det = Detections(r["boxes"][keep].cpu().double().numpy(), r["scores"][keep].cpu().double().numpy())
                det = _drop_inner_edge(det, w, scene.width, scene.height, overlap_px)
                boxes.append(det.boxes + np.array([w.col_off, w.row_off, w.col_off, w.row_off], dtype=np.float64))
                scores.append(det.scores)
            if on_progress:
                on_progress(min(len(windows), s + batch_size), len(windows))
    all_det = Detections(np.concatenate(boxes) if boxes else np.zeros((0, 4)),
                         np.concatenate(scores) if scores else np.zeros(0))
    merged = fuse([all_det], scene.width, scene.height, method=merge, iou_thr=iou_thr, skip_box_thr=score_thresh)
    log.info("%s: %d ships from %d tiles (%s merge)", scene.name, len(merged), len(windows), merge)
    return ScenePrediction(str(scene.path), scene.width, scene.height, merged, len(windows), tile, overlap, merge,
                           scene.crs, mapping.to_dict())


def _ring(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]], dtype=np.float64)


def to_geojson(pred: ScenePrediction, model_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The detections as a GeoJSON FeatureCollection (see module docstring for coordinates).

    Convention:
        Pixel-edge boxes are converted to saropt pixel centres (``- 0.5``) and through
        :meth:`saropt.io.raster.Scene.pixel_to_map` then to EPSG:4326 when the scene is georeferenced.
    """
    from saropt.io.raster import open_scene

    scene = open_scene(pred.path, "sar", bands=(1,))
    geo = scene.georeferenced
    feats = []
    for i, (b, s) in enumerate(zip(pred.detections.boxes, pred.detections.scores, strict=True)):
        ring = _ring(b)
        if geo:
            xy = scene.pixel_to_map(ring - 0.5)
            if scene.crs:
                from rasterio.crs import CRS
                from rasterio.warp import transform as warp_transform

                lon, lat = warp_transform(CRS.from_wkt(scene.crs), CRS.from_epsg(4326), xy[:, 0].tolist(),
                                          xy[:, 1].tolist())
                xy = np.stack([lon, lat], axis=1)
            coords = np.round(xy, 8).tolist()
        else:
            coords = np.round(ring, 2).tolist()
        feats.append({
            "type": "Feature", "id": i,
            "geometry": {"type": "Polygon", "coordinates": [coords]},
            "properties": {"score": round(float(s), 4), "pixel_box": [round(float(v), 2) for v in b],
                           "width_px": round(float(b[2] - b[0]), 2), "height_px": round(float(b[3] - b[1]), 2)},
        })
    coord_info = ("lon/lat EPSG:4326" if geo and scene.crs else "map (scene CRS units)") if geo else "pixel"
    props: dict[str, Any] = {
        "scene": pred.path, "width": pred.width, "height": pred.height, "coordinates": coord_info,
        "pixel_convention": PIXEL_CONVENTION, "ships": len(feats), "tile": pred.tile, "overlap": pred.overlap,
        "merge": pred.merge, "sar_mapping": pred.mapping, "generator": "saropt detect predict",
    }
    if model_info:
        props["model"] = model_info
    return {"type": "FeatureCollection", "properties": props, "features": feats}


def write_geojson(pred: ScenePrediction, path: str | os.PathLike[str], model_info: dict[str, Any] | None = None
                  ) -> Path:
    """Write :func:`to_geojson` to ``path`` (temporary name, then rename)."""
    from saropt.io.images import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(to_geojson(pred, model_info)))
    return Path(path)


def write_overview(pred: ScenePrediction, path: str | os.PathLike[str], max_size: int = 1600) -> Path:
    """An overview PNG of the scene (decimated read) with the detected boxes drawn, colour by score.

    Convention:
        Scene pixel-edge boxes are scaled by the decimation factor; the overview's edges match the scene's.
    """
    import cv2

    from saropt.io.images import write_png
    from saropt.io.radiometry import SarMapping
    from saropt.io.raster import open_scene

    scene = open_scene(pred.path, "sar", bands=(1,))
    data, valid, _ = scene.read_decimated(max_size)
    grey = SarMapping.from_dict(pred.mapping).apply(data, valid)
    img = np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    sx = img.shape[1] / pred.width
    sy = img.shape[0] / pred.height
    t = max(1, round(max(img.shape[:2]) / 700))
    for b, s in zip(pred.detections.boxes, pred.detections.scores, strict=True):
        c = (255, int(255 * (1 - s)), 0) if s >= 0.5 else (255, 200, 0)
        p1 = (round(b[0] * sx), round(b[1] * sy))
        p2 = (max(p1[0] + 1, round(b[2] * sx) - 1), max(p1[1] + 1, round(b[3] * sy) - 1))
        cv2.rectangle(img, p1, p2, c, t)
    write_png(path, img)
    return Path(path)
