"""Ship detection datasets: Pascal VOC XML (SSDD, AIR-SARShip), COCO JSON (HRSID), YOLO txt and DOTA txt.

A reader turns a dataset on disk into a list of :class:`ShipRecord` (image path, boxes, difficult flags, size,
optional window of a large image); :class:`ShipDataset` turns records into training samples::

    image: (C, H, W) float32 tensor in [0, 1]   (C = 1 grey SAR, or 3)
    target: {"boxes": (N, 4) float32 x1, y1, x2, y2, "labels": (N,) int64 (1 = ship),
             "difficult": (N,) bool, "image_id": int}

Only the ``ship`` class is read (names are matched case-insensitively against ``classes``; DOTA's other
categories are skipped). ``difficult`` objects are kept and flagged by default (VOC protocol: evaluation ignores
them); ``difficult="drop"`` removes them, ``difficult="keep"`` treats them as ordinary ships.

Layouts::

    voc:  ROOT/JPEGImages/<id>.<ext>, ROOT/Annotations/<id>.xml, ROOT/ImageSets/Main/<split>.txt
          (optional ROOT/ImageSets/Main/<split>_inshore.txt / <split>_offshore.txt name scene types)
    coco: ROOT/annotations/<split>.json (or ROOT/<split>.json, or a .json file), images under ROOT/images/
          or ROOT/JPEGImages/ or ROOT
    yolo: ROOT/images/<split>/*.{jpg,png,tif}, ROOT/labels/<split>/<stem>.txt ("class cx cy w h", normalised);
          without a split, ROOT/images and ROOT/labels
    dota: ROOT/images/<id>.png, ROOT/labelTxt/<id>.txt ("x1 y1 ... x4 y4 class difficult", optional
          "imagesource:"/"gsd:" header lines); oriented boxes become their enclosing horizontal boxes

Convention:
    Boxes in pixel-edge coordinates (image spans ``[0, W] x [0, H]``, x = column, y = row). VOC's 1-based
    inclusive ``xmin..xmax`` become ``x1 = xmin - 1, x2 = xmax``; COCO ``[x, y, w, h]`` and DOTA vertices are
    taken as pixel-edge coordinates; YOLO's normalised values are multiplied by the image size.
"""

from __future__ import annotations

import json
import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from saropt.errors import ConfigError, CorruptFileError, DatasetNotFoundError, InputError
from saropt.io.windows import Window

log = logging.getLogger(__name__)

FORMATS = ("voc", "coco", "yolo", "dota")
DIFFICULT_MODES = ("flag", "drop", "keep")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


@dataclass(frozen=True)
class ShipRecord:
    """One image (or one window of a large image) with its ship boxes.

    Attributes:
        image_id: unique integer id within the dataset.
        name: file stem (plus a window suffix for tiles), used in outputs.
        path: image file.
        width: width of the image or window in pixels.
        height: height of the image or window in pixels.
        boxes: ``(N, 4)`` float64 boxes inside this image or window.
        difficult: ``(N,)`` bool.
        window: the window of ``path`` this record covers (``None``: the whole image).
        scene_type: ``"inshore"``, ``"offshore"`` or ``""`` (unknown).

    Convention:
        Boxes in pixel-edge coordinates of this record's own image (window origin at 0).
    """

    image_id: int
    name: str
    path: str
    width: int
    height: int
    boxes: np.ndarray = field(repr=False)
    difficult: np.ndarray = field(repr=False)
    window: Window | None = None
    scene_type: str = ""

    @property
    def num_boxes(self) -> int:
        """Number of boxes."""
        return len(self.boxes)


def _finish(boxes: list[list[float]], difficult: list[bool], mode: str) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    d = np.asarray(difficult, dtype=bool).reshape(-1)
    if mode == "drop":
        b, d = b[~d], d[~d]
    elif mode == "keep":
        d = np.zeros_like(d)
    ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    return b[ok], d[ok]


def _check_mode(difficult: str) -> None:
    if difficult not in DIFFICULT_MODES:
        raise ConfigError(f"difficult must be one of {', '.join(DIFFICULT_MODES)}, got {difficult!r}")


def _class_set(classes: Sequence[str]) -> set[str]:
    s = {c.strip().lower() for c in classes}
    if not s:
        raise ConfigError("classes must name at least one class (e.g. ['ship'])")
    return s


def _image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` read from the file header (PIL, then rasterio for GeoTIFFs)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except Exception:  # noqa: BLE001 - fall back to GDAL for formats PIL cannot open
        from saropt.io.raster import open_scene

        try:
            sc = open_scene(path, "sar", bands=(1,))
        except Exception as exc:
            raise CorruptFileError(f"cannot read the size of image {path}: {exc}") from exc
        return sc.width, sc.height


def _find_image(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_EXTS:
        for e in (ext, ext.upper()):
            p = folder / f"{stem}{e}"
            if p.is_file():
                return p
    return None


# ----------------------------------------------------------------------------------------------------------- VOC
def read_voc_xml(path: str | os.PathLike[str], classes: Sequence[str] = ("ship",), difficult: str = "flag"
                 ) -> tuple[str, int, int, np.ndarray, np.ndarray]:
    """Parse one Pascal VOC annotation.

    Args:
        path: ``.xml`` file.
        classes: class names to read (case-insensitive).
        difficult: ``"flag"``, ``"drop"`` or ``"keep"`` (see module docstring).

    Returns:
        ``(filename, width, height, boxes, difficult)``; width/height are 0 when the file has no ``<size>``.

    Raises:
        CorruptFileError: not XML, or a box with missing or non-numeric coordinates.

    Convention:
        VOC ``xmin..xmax`` are 1-based inclusive pixel indexes; returned boxes are pixel-edge coordinates
        ``(xmin - 1, ymin - 1, xmax, ymax)``.
    """
    _check_mode(difficult)
    names = _class_set(classes)
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except (ET.ParseError, OSError) as exc:
        raise CorruptFileError(f"cannot parse VOC annotation {p}: {exc}") from exc
    filename = (root.findtext("filename") or "").strip()
    size = root.find("size")
    w = h = 0
    if size is not None:
        try:
            w = int(float(size.findtext("width") or 0))
            h = int(float(size.findtext("height") or 0))
        except ValueError as exc:
            raise CorruptFileError(f"{p}: <size> is not numeric") from exc
    boxes: list[list[float]] = []
    diff: list[bool] = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip().lower()
        if name not in names:
            continue
        bb = obj.find("bndbox")
        try:
            vals = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore[union-attr,arg-type]
        except (TypeError, ValueError, AttributeError) as exc:
            raise CorruptFileError(f"{p}: an object has no valid <bndbox> xmin/ymin/xmax/ymax") from exc
        boxes.append([vals[0] - 1.0, vals[1] - 1.0, vals[2], vals[3]])
        diff.append((obj.findtext("difficult") or "0").strip() in ("1", "true", "True"))
    b, d = _finish(boxes, diff, difficult)
    return filename, w, h, b, d


def read_voc(
    root: str | os.PathLike[str], split: str | None = "train", *, classes: Sequence[str] = ("ship",),
    difficult: str = "flag",
) -> list[ShipRecord]:
    """Read a Pascal VOC ship dataset (SSDD, AIR-SARShip).

    Args:
        root: folder holding ``Annotations/``, ``JPEGImages/`` and ``ImageSets/Main/``.
        split: split list name (``ImageSets/Main/<split>.txt``), or ``None`` for every annotation.
        classes: class names to read.
        difficult: ``"flag"``, ``"drop"`` or ``"keep"``.

    Returns:
        One record per image, in split-file order.

    Raises:
        DatasetNotFoundError: missing folders, split file or images.
        CorruptFileError: unreadable annotation.
    """
    r = Path(root)
    ann = r / "Annotations"
    img_dir = r / "JPEGImages"
    if not ann.is_dir() or not img_dir.is_dir():
        raise DatasetNotFoundError(f"{r} is not a VOC dataset: expected Annotations/ and JPEGImages/ in it")
    main = r / "ImageSets" / "Main"
    if split is None:
        ids = sorted(p.stem for p in ann.glob("*.xml"))
    else:
        lst = main / f"{split}.txt"
        if not lst.is_file():
            have = sorted(p.stem for p in main.glob("*.txt")) if main.is_dir() else []
            raise DatasetNotFoundError(
                f"split list {lst} not found" + (f"; available: {', '.join(have)}" if have else "")
            )
        ids = [ln.split()[0] for ln in lst.read_text().splitlines() if ln.strip()]
    scene_types: dict[str, str] = {}
    for kind in ("inshore", "offshore"):
        f = main / f"{split}_{kind}.txt" if split else main / f"{kind}.txt"
        if f.is_file():
            for ln in f.read_text().splitlines():
                if ln.strip():
                    scene_types[ln.split()[0]] = kind
    records = []
    for i, stem in enumerate(ids):
        xml = ann / f"{stem}.xml"
        if not xml.is_file():
            raise DatasetNotFoundError(f"annotation {xml} listed in split {split!r} does not exist")
        filename, w, h, b, d = read_voc_xml(xml, classes, difficult)
        img = img_dir / filename if filename and (img_dir / filename).is_file() else _find_image(img_dir, stem)
        if img is None:
            raise DatasetNotFoundError(f"no image for {stem} in {img_dir} (looked for {stem}.jpg/.png/.tif)")
        if w <= 0 or h <= 0:
            w, h = _image_size(img)
        records.append(ShipRecord(i, stem, str(img), w, h, b, d, None, scene_types.get(stem, "")))
    return records


# ---------------------------------------------------------------------------------------------------------- COCO
def read_coco(
    root: str | os.PathLike[str], split: str | None = "train", *, classes: Sequence[str] = ("ship",),
    difficult: str = "flag", image_dir: str | os.PathLike[str] | None = None,
) -> list[ShipRecord]:
    """Read a COCO JSON ship dataset (HRSID).

    ``iscrowd`` annotations are flagged difficult (COCO ignores them in evaluation).

    Args:
        root: dataset folder, or the ``.json`` file itself.
        split: json name (``annotations/<split>.json`` or ``<split>.json``); ignored when ``root`` is a file.
        classes: category names to read.
        difficult: ``"flag"``, ``"drop"`` or ``"keep"``.
        image_dir: image folder (default: ``images/``, ``JPEGImages/`` or ``root``).

    Returns:
        One record per image in the json, in its order.

    Raises:
        DatasetNotFoundError: json or images not found.
        CorruptFileError: invalid json or annotations.

    Convention:
        COCO ``bbox = [x, y, w, h]`` in pixel-edge coordinates -> ``(x, y, x + w, y + h)``.
    """
    _check_mode(difficult)
    names = _class_set(classes)
    r = Path(root)
    if r.is_file():
        js, base = r, r.parent.parent if r.parent.name == "annotations" else r.parent
    else:
        cands = [r / "annotations" / f"{split}.json", r / f"{split}.json"]
        js = next((c for c in cands if c.is_file()), None)  # type: ignore[assignment]
        base = r
        if js is None:
            raise DatasetNotFoundError(f"COCO json for split {split!r} not found: looked for {cands[0]} and {cands[1]}")
    try:
        data = json.loads(Path(js).read_text())
        cats = {int(c["id"]): str(c["name"]).lower() for c in data.get("categories", [])}
        images = data["images"]
        anns = data.get("annotations", [])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"{js} is not a COCO detection json: {exc}") from exc
    if image_dir is not None:
        folders = [Path(image_dir)]
    else:
        folders = [base / "images" / str(split), base / "images", base / "JPEGImages", base]
    want = {cid for cid, n in cats.items() if n in names}
    if not want and cats:
        raise InputError(f"{js} has no category named {sorted(names)}; its categories: {sorted(set(cats.values()))}")
    per: dict[int, tuple[list[list[float]], list[bool]]] = {}
    for a in anns:
        try:
            if int(a["category_id"]) not in want:
                continue
            x, y, w, h = (float(v) for v in a["bbox"])
            per.setdefault(int(a["image_id"]), ([], []))
            per[int(a["image_id"])][0].append([x, y, x + w, y + h])
            per[int(a["image_id"])][1].append(bool(a.get("iscrowd", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{js}: annotation {a.get('id', '?')} has no valid bbox/category_id") from exc
    records = []
    for i, im in enumerate(images):
        fname = str(im["file_name"])
        path = next((f / fname for f in folders if (f / fname).is_file()), None)
        if path is None:
            raise DatasetNotFoundError(f"image {fname} of {js} not found in {', '.join(map(str, folders))}")
        w, h = int(im.get("width", 0)), int(im.get("height", 0))
        if w <= 0 or h <= 0:
            w, h = _image_size(path)
        bl, dl = per.get(int(im["id"]), ([], []))
        b, d = _finish(bl, dl, difficult)
        records.append(ShipRecord(i, Path(fname).stem, str(path), w, h, b, d))
    return records


# ---------------------------------------------------------------------------------------------------------- YOLO
def read_yolo(
    root: str | os.PathLike[str], split: str | None = "train", *, class_ids: Sequence[int] = (0,),
) -> list[ShipRecord]:
    """Read a YOLO txt dataset (``class cx cy w h`` normalised to ``[0, 1]``).

    Args:
        root: folder with ``images/`` and ``labels/`` (with ``<split>/`` sub-folders when ``split`` is given
            and they exist).
        split: sub-folder name or ``None``.
        class_ids: class indexes that are ships.

    Returns:
        One record per image (sorted by file name); an image without a label file has no ships.

    Raises:
        DatasetNotFoundError: no images folder.
        CorruptFileError: a label line that is not 5 numbers.

    Convention:
        ``x1 = (cx - w / 2) * W`` etc.: YOLO's normalised coordinates are fractions of the pixel-edge extent.
    """
    r = Path(root)
    img_dir, lbl_dir = r / "images", r / "labels"
    if split and (img_dir / split).is_dir():
        img_dir, lbl_dir = img_dir / split, lbl_dir / split
    if not img_dir.is_dir():
        raise DatasetNotFoundError(f"{r} is not a YOLO dataset: expected {img_dir}")
    ids = {int(c) for c in class_ids}
    records = []
    for i, img in enumerate(sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS)):
        w, h = _image_size(img)
        boxes: list[list[float]] = []
        lbl = lbl_dir / f"{img.stem}.txt"
        if lbl.is_file():
            for n, ln in enumerate(lbl.read_text().splitlines(), 1):
                parts = ln.split()
                if not parts:
                    continue
                try:
                    c, cx, cy, bw, bh = int(float(parts[0])), *(float(v) for v in parts[1:5])
                    if len(parts) < 5:
                        raise ValueError
                except ValueError as exc:
                    raise CorruptFileError(f"{lbl}:{n}: expected 'class cx cy w h', got {ln.strip()!r}") from exc
                if c in ids:
                    boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
        b, d = _finish(boxes, [False] * len(boxes), "flag")
        records.append(ShipRecord(i, img.stem, str(img), w, h, b, d))
    return records


# ---------------------------------------------------------------------------------------------------------- DOTA
def read_dota_txt(path: str | os.PathLike[str], classes: Sequence[str] = ("ship",), difficult: str = "flag"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Parse one DOTA label file into horizontal boxes.

    Args:
        path: ``labelTxt/<id>.txt``.
        classes: categories to read.
        difficult: ``"flag"``, ``"drop"`` or ``"keep"``.

    Returns:
        ``(boxes, difficult)``: enclosing horizontal boxes of the oriented ones.

    Raises:
        CorruptFileError: a line with fewer than 9 fields or non-numeric coordinates.

    Convention:
        DOTA vertices taken as pixel-edge coordinates; box = min/max of the 4 vertices.
    """
    _check_mode(difficult)
    names = _class_set(classes)
    p = Path(path)
    polys: list[list[float]] = []
    diff: list[bool] = []
    for n, ln in enumerate(p.read_text().splitlines(), 1):
        s = ln.strip()
        if not s or s.startswith(("imagesource", "gsd")):
            continue
        parts = s.split()
        if len(parts) < 9:
            raise CorruptFileError(f"{p}:{n}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class [difficult]', got {s!r}")
        if parts[8].lower() not in names:
            continue
        try:
            polys.append([float(v) for v in parts[:8]])
        except ValueError as exc:
            raise CorruptFileError(f"{p}:{n}: non-numeric vertex in {s!r}") from exc
        diff.append(len(parts) > 9 and parts[9] == "1")
    from saropt.detection.boxes import polygons_to_boxes

    boxes = polygons_to_boxes(np.asarray(polys).reshape(-1, 4, 2)) if polys else np.zeros((0, 4))
    return _finish(boxes.tolist(), diff, difficult)


def read_dota(
    root: str | os.PathLike[str], split: str | None = None, *, classes: Sequence[str] = ("ship",),
    difficult: str = "flag", require_objects: bool = True,
) -> list[ShipRecord]:
    """Read a DOTA-layout dataset (optical ships for OSD pretraining).

    Args:
        root: folder with ``images/`` and ``labelTxt/`` (or ``<split>/images`` etc. when ``split`` is given).
        split: optional sub-folder.
        classes: categories to read (``ship``).
        difficult: ``"flag"``, ``"drop"`` or ``"keep"``.
        require_objects: skip images with no object of ``classes`` (DOTA images of other categories).

    Returns:
        One record per image that has a label file (and objects, with ``require_objects``).

    Raises:
        DatasetNotFoundError: missing folders or no usable image.
    """
    r = Path(root) / split if split else Path(root)
    img_dir, lbl_dir = r / "images", r / "labelTxt"
    if not img_dir.is_dir() or not lbl_dir.is_dir():
        raise DatasetNotFoundError(f"{r} is not a DOTA dataset: expected images/ and labelTxt/ in it")
    records: list[ShipRecord] = []
    for lbl in sorted(lbl_dir.glob("*.txt")):
        img = _find_image(img_dir, lbl.stem)
        if img is None:
            log.debug("DOTA label %s has no image; skipped", lbl.name)
            continue
        b, d = read_dota_txt(lbl, classes, difficult)
        if require_objects and len(b) == 0:
            continue
        w, h = _image_size(img)
        records.append(ShipRecord(len(records), lbl.stem, str(img), w, h, b, d))
    if not records:
        raise DatasetNotFoundError(f"no DOTA image in {img_dir} has a label file with classes {list(classes)}")
    return records


READERS: dict[str, Callable[..., list[ShipRecord]]] = {
    "voc": read_voc, "coco": read_coco, "yolo": read_yolo, "dota": read_dota,
}


def read_records(
    fmt: str, root: str | os.PathLike[str], split: str | None, *, classes: Sequence[str] = ("ship",),
    difficult: str = "flag",
) -> list[ShipRecord]:
    """Read any supported dataset by format name (``voc``, ``coco``, ``yolo``, ``dota``).

    Raises:
        ConfigError: unknown format.
        DatasetNotFoundError: the dataset is not where it should be.
    """
    if fmt not in READERS:
        raise ConfigError(f"unknown detection dataset format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not Path(root).exists():
        raise DatasetNotFoundError(f"dataset not found: {root}")
    if fmt == "yolo":
        return read_yolo(root, split)
    return READERS[fmt](root, split, classes=classes, difficult=difficult)


def subset(records: Sequence[ShipRecord], n: int, seed: int = 0) -> list[ShipRecord]:
    """A seeded random subset of ``n`` records (all when ``n <= 0`` or ``n >= len``), re-numbered in order."""
    recs = list(records)
    if 0 < n < len(recs):
        idx = np.sort(np.random.default_rng(seed).choice(len(recs), n, replace=False))
        recs = [recs[i] for i in idx]
    return [replace(r, image_id=i) for i, r in enumerate(recs)]


def summarise(records: Sequence[ShipRecord]) -> dict[str, Any]:
    """Counts of a record list: images, boxes, difficult boxes, images without ships, box size quantiles."""
    n_boxes = sum(r.num_boxes for r in records)
    sizes = np.concatenate([np.sqrt((r.boxes[:, 2] - r.boxes[:, 0]) * (r.boxes[:, 3] - r.boxes[:, 1]))
                            for r in records if r.num_boxes] or [np.zeros(0)])
    return {
        "images": len(records),
        "boxes": int(n_boxes),
        "difficult": int(sum(int(r.difficult.sum()) for r in records)),
        "empty_images": int(sum(1 for r in records if r.num_boxes == 0)),
        "box_side_px": {q: round(float(np.percentile(sizes, p)), 1) for q, p in
                        (("p5", 5), ("median", 50), ("p95", 95))} if sizes.size else {},
        "scene_types": {k: sum(1 for r in records if r.scene_type == k) for k in ("inshore", "offshore")},
    }
