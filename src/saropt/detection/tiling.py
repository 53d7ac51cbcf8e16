"""Chips of large images and SAR-aware normalisation to 8-bit.

Large scenes (AIR-SARShip's ~3000x3000 16-bit images, whole SAR scenes) are cut into chips of ``size`` pixels
with ``overlap``; a chip keeps the boxes whose clipped part retains at least ``min_area_fraction`` of their
area and whose clipped sides are at least ``min_size`` pixels (smaller remnants are dropped, not clipped to
slivers). Pixels are read window by window through :class:`saropt.io.raster.Scene`, never the whole file.

Normalisation: 8-bit files pass through unchanged; other SAR data go through
:class:`saropt.io.radiometry.SarMapping` (amplitude -> dB -> percentile stretch 1%-99.5% of the scene's valid
pixels, statistics from a decimated read), optical data through :class:`~saropt.io.radiometry.OpticalMapping`.
Resolved mappings are cached per (path, role).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from saropt.detection.boxes import crop_boxes
from saropt.detection.datasets import ShipRecord
from saropt.errors import ConfigError, InputError
from saropt.io.windows import Window

log = logging.getLogger(__name__)

ROLES = ("sar", "optical")


def tile_starts(length: int, size: int, stride: int) -> list[int]:
    """Start offsets of tiles of ``size`` along an axis of ``length`` pixels, the last one flush with the end.

    Args:
        length: axis length in pixels (>= 1).
        size: tile size (>= 1).
        stride: step between tiles (1..size).

    Returns:
        Increasing offsets; ``[0]`` when ``length <= size``.

    Raises:
        ConfigError: non-positive size or stride, or stride > size.

    Convention:
        Offsets are 0-based pixel indexes (column or row of the tile's first pixel).
    """
    if size < 1 or stride < 1 or stride > size:
        raise ConfigError(f"tile size ({size}) and stride ({stride}) must satisfy 1 <= stride <= size")
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def tile_windows(width: int, height: int, size: int, overlap: float) -> list[Window]:
    """Windows covering a ``width x height`` image with tiles of ``size`` and fractional ``overlap``.

    ``stride = round(size * (1 - overlap))``; tiles at the right and bottom are shifted inwards so every tile
    lies inside the image (an image smaller than ``size`` gives one window of the image size).

    Raises:
        ConfigError: overlap outside ``[0, 1)``.

    Convention:
        Windows are integer pixel rectangles ``(col_off, row_off, width, height)``.
    """
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"tile overlap must be in [0, 1), got {overlap}")
    stride = max(1, round(size * (1.0 - overlap)))
    out = []
    for r in tile_starts(height, size, stride):
        for c in tile_starts(width, size, stride):
            out.append(Window(c, r, min(size, width - c), min(size, height - r)))
    return out


def tile_records(
    records: Sequence[ShipRecord], size: int, overlap: float = 0.2, *, min_area_fraction: float = 0.3,
    min_size: float = 2.0, keep_empty: bool = True, only_larger_than: int = 0,
) -> list[ShipRecord]:
    """Cut records into chip records (windows of their image) with boxes clipped.

    Args:
        records: whole-image records (``window`` must be ``None``).
        size: chip side in pixels.
        overlap: fractional overlap of neighbouring chips.
        min_area_fraction: drop a box whose part inside the chip is below this fraction of its area.
        min_size: drop a clipped box with a side below this many pixels.
        keep_empty: keep chips without ships (background for training).
        only_larger_than: tile only images whose longer side exceeds this (others pass through); 0 tiles all.

    Returns:
        Chip records named ``<name>_<col>_<row>``, re-numbered from 0.

    Raises:
        InputError: a record is already a window.

    Convention:
        Chip boxes are pixel-edge coordinates of the chip (its top-left outer corner at 0, 0).
    """
    out: list[ShipRecord] = []
    for rec in records:
        if rec.window is not None:
            raise InputError(f"record {rec.name} is already a tile; tile whole-image records only")
        if only_larger_than and max(rec.width, rec.height) <= only_larger_than:
            out.append(replace(rec, image_id=len(out)))
            continue
        for w in tile_windows(rec.width, rec.height, size, overlap):
            b, idx = crop_boxes(rec.boxes, w.col_off, w.row_off, w.width, w.height,
                                min_area_fraction=min_area_fraction, min_size=min_size)
            if not keep_empty and len(b) == 0:
                continue
            out.append(ShipRecord(len(out), f"{rec.name}_{w.col_off}_{w.row_off}", rec.path, w.width, w.height,
                                  b, rec.difficult[idx], w, rec.scene_type))
    return out


@functools.lru_cache(maxsize=64)
def _scene_and_mapping(path: str, role: str):  # type: ignore[no-untyped-def]
    from saropt.io.radiometry import OpticalMapping, SarMapping
    from saropt.io.raster import open_scene

    if role == "sar":
        scene = open_scene(path, "sar", bands=(1,))
        return scene, SarMapping().resolve(scene)
    scene = open_scene(path, "optical")
    return scene, OpticalMapping().resolve(scene)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """An 8-bit ``(h, w)`` or ``(h, w, 3)`` image as ``(h, w, channels)`` (grey: luminance; grey to 3: repeat).

    Raises:
        ConfigError: ``channels`` not 1 or 3.
    """
    if channels not in (1, 3):
        raise ConfigError(f"detector input channels must be 1 or 3, got {channels}")
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return a[:, :, None] if channels == 1 else np.repeat(a[:, :, None], 3, axis=2)
    if channels == 3:
        return a
    grey = a[:, :, 0] * 0.299 + a[:, :, 1] * 0.587 + a[:, :, 2] * 0.114
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, :, None]


def load_image(record: ShipRecord, role: str = "sar", channels: int = 1) -> np.ndarray:
    """Read a record's pixels as 8-bit ``(h, w, channels)``.

    Whole JPEG/BMP images (always 8-bit) are decoded directly; PNG/TIFF (maybe 16-bit) and windows are read through
    :class:`~saropt.io.raster.Scene` (only the window) and normalised (see module docstring).

    Args:
        record: the image or chip.
        role: ``"sar"`` or ``"optical"`` (picks the normalisation of non-8-bit data).
        channels: 1 or 3.

    Returns:
        ``(record.height, record.width, channels)`` uint8.

    Raises:
        ConfigError: unknown role.
        RasterReadError, CorruptFileError: unreadable image.
    """
    if role not in ROLES:
        raise ConfigError(f"image role must be 'sar' or 'optical', got {role!r}")
    if record.window is None and record.path.lower().endswith((".jpg", ".jpeg", ".bmp")):
        from saropt.io.images import read_image

        img = read_image(record.path)
    else:
        scene, mapping = _scene_and_mapping(record.path, role)
        win = record.window or scene.window
        data, valid = scene.read(win)
        img = mapping.apply(data, valid)
    return to_channels(img, channels)
