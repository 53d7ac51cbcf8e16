"""Tiny fake ship datasets in the exact VOC / COCO / YOLO / DOTA layouts, and a synthetic SAR scene with ships."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

# (x1, y1, x2, y2) pixel-edge boxes per image; image 0 is 64x48, image 1 is 80x60
BOXES = [np.array([[10.0, 8.0, 30.0, 20.0], [40.0, 30.0, 52.0, 44.0]]), np.array([[5.0, 5.0, 25.0, 15.0]])]
SIZES = [(64, 48), (80, 60)]


def ship_image(w: int, h: int, boxes: np.ndarray, seed: int = 0) -> np.ndarray:
    """Dark speckled sea with bright rectangles where the ships are (uint8, (h, w))."""
    rng = np.random.default_rng(seed)
    img = rng.gamma(1.0, 20.0, size=(h, w))
    for x1, y1, x2, y2 in boxes:
        img[int(y1):int(y2), int(x1):int(x2)] = 230.0
    return np.clip(img, 0, 255).astype(np.uint8)


def make_voc(root: Path, difficult_second: bool = True) -> Path:
    """VOC layout: Annotations/*.xml (1-based inclusive), JPEGImages/*.jpg, ImageSets/Main/{train,test}.txt."""
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i, ((w, h), boxes) in enumerate(zip(SIZES, BOXES, strict=True)):
        stem = f"{i + 1:06d}"
        Image.fromarray(ship_image(w, h, boxes, i)).convert("RGB").save(root / "JPEGImages" / f"{stem}.jpg", quality=95)
        objs = []
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            diff = int(difficult_second and i == 0 and k == 1)
            objs.append(
                f"<object><name>ship</name><difficult>{diff}</difficult><bndbox><xmin>{int(x1) + 1}</xmin>"
                f"<ymin>{int(y1) + 1}</ymin><xmax>{int(x2)}</xmax><ymax>{int(y2)}</ymax></bndbox></object>"
            )
        objs.append("<object><name>harbour</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
                    "<xmax>4</xmax><ymax>4</ymax></bndbox></object>")
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>1</depth></size>{''.join(objs)}</annotation>"
        )
    (root / "ImageSets/Main/train.txt").write_text("000001\n000002\n")
    (root / "ImageSets/Main/test.txt").write_text("000002\n")
    (root / "ImageSets/Main/train_inshore.txt").write_text("000001\n")
    (root / "ImageSets/Main/train_offshore.txt").write_text("000002\n")
    return root


def make_coco(root: Path) -> Path:
    """COCO layout: annotations/train.json, images/*.png (HRSID style)."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i, ((w, h), boxes) in enumerate(zip(SIZES, BOXES, strict=True)):
        Image.fromarray(ship_image(w, h, boxes, i)).save(root / "images" / f"P{i:04d}.png")
        images.append({"id": 100 + i, "file_name": f"P{i:04d}.png", "width": w, "height": h})
        for x1, y1, x2, y2 in boxes:
            anns.append({"id": len(anns) + 1, "image_id": 100 + i, "category_id": 1, "iscrowd": 0,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
    anns.append({"id": 99, "image_id": 100, "category_id": 2, "iscrowd": 0, "bbox": [1, 1, 3, 3], "area": 9})
    (root / "annotations" / "train.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "ship"}, {"id": 2, "name": "land"}]}))
    return root


def make_yolo(root: Path) -> Path:
    """YOLO layout: images/train/*.png, labels/train/*.txt with normalised 'class cx cy w h'."""
    (root / "images" / "train").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
    for i, ((w, h), boxes) in enumerate(zip(SIZES, BOXES, strict=True)):
        Image.fromarray(ship_image(w, h, boxes, i)).save(root / "images" / "train" / f"img{i}.png")
        lines = [f"0 {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
                 for x1, y1, x2, y2 in boxes]
        lines.append("3 0.5 0.5 0.1 0.1")
        (root / "labels" / "train" / f"img{i}.txt").write_text("\n".join(lines) + "\n")
    return root


def make_dota(root: Path) -> Path:
    """DOTA layout: images/P0001.png, labelTxt/P0001.txt with header lines and oriented boxes."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labelTxt").mkdir(parents=True, exist_ok=True)
    boxes = BOXES[0]
    Image.fromarray(np.repeat(ship_image(64, 48, boxes)[:, :, None], 3, axis=2)).save(root / "images" / "P0001.png")
    lines = ["imagesource:GoogleEarth", "gsd:0.5"]
    # first ship: a rotated quadrilateral whose enclosing box is boxes[0]
    lines.append("20 8 30 14 20 20 10 14 ship 0")
    x1, y1, x2, y2 = boxes[1]
    lines.append(f"{x1} {y1} {x2} {y1} {x2} {y2} {x1} {y2} ship 1")
    lines.append("1 1 5 1 5 5 1 5 small-vehicle 0")
    (root / "labelTxt" / "P0001.txt").write_text("\n".join(lines) + "\n")
    (root / "labelTxt" / "P0002.txt").write_text("imagesource:GoogleEarth\n1 1 5 1 5 5 1 5 plane 0\n")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(root / "images" / "P0002.png")
    return root


def make_scene(path: Path, ships: list[tuple[int, int, int, int]], size: tuple[int, int] = (300, 220),
               georef: bool = False, dtype: str = "uint16") -> Path:
    """A SAR-like GeoTIFF (speckled sea, bright ship rectangles given as pixel-edge boxes)."""
    import rasterio
    from affine import Affine

    w, h = size
    rng = np.random.default_rng(3)
    amp = rng.rayleigh(60.0, size=(h, w))
    for x1, y1, x2, y2 in ships:
        amp[y1:y2, x1:x2] = 4000.0
    data = amp.astype(dtype)
    kw = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": dtype}
    if georef:
        kw.update(crs="EPSG:32631", transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5600000.0))
    with rasterio.open(path, "w", **kw) as ds:
        ds.write(data, 1)
    return path
