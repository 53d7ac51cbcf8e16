"""Uniform single-band access to the two images, whether in-memory arrays or :class:`~saropt.io.raster.Scene`.

Matching needs three reads: a decimated whole image (coarse levels), a window at full resolution (chips around
candidates on big scenes), and the optical image resampled onto a SAR grid. Arrays and scenes differ in how
they give them; this module hides that. Multi-band images are averaged to one band. SAR in decibels (float data
with negative values) is converted to linear amplitude, which the ratio gradient operator expects.

Validity of plain arrays: pixels at ``nodata`` that connect to the image border (after a 5 x 5 mean, within a
small tolerance, so that JPEG noise around black wedge corners is caught but dark speckled water is not) are
invalid, grown by 2 pixels. NaN and infinite values are invalid.

Convention:
    x = column, y = row, 0-based, pixel centres at integer coordinates. Decimated grids follow ``cv2.resize``:
    a factor-``f`` pixel ``j`` covers full-resolution pixels ``[j f, (j + 1) f)`` (edges), so its centre is at
    ``f (j + 0.5) - 0.5``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from saropt.errors import InputError
from saropt.io.windows import Window

logger = logging.getLogger(__name__)


def border_nodata_mask(img: np.ndarray, nodata: float, tolerance: float | None = None) -> np.ndarray:
    """Validity mask that removes nodata regions touching the image border.

    Args:
        img: ``(H, W)`` float image.
        nodata: the fill value.
        tolerance: a pixel is fill-like when its 5 x 5 mean is within this of ``nodata``; default 0.6 % of the
            image's 99th percentile (1.5 for 8-bit data).

    Returns:
        ``(H, W)`` bool, True where valid.
    """
    finite = np.isfinite(img)
    a = np.where(finite, img, nodata).astype(np.float32)
    if tolerance is None:
        vals = a[finite]
        p99 = float(np.percentile(np.abs(vals), 99)) if vals.size else 0.0
        tolerance = max(0.006 * p99, 1e-6)
    m = cv2.blur(np.abs(a - np.float32(nodata)), (5, 5), borderType=cv2.BORDER_REPLICATE)
    low = (m <= tolerance).astype(np.uint8)
    if not low.any():
        return finite
    _, lab = cv2.connectedComponents(low, connectivity=4)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    border = border[border > 0]
    nd = np.isin(lab, border) & (low > 0)
    if nd.any():
        nd = cv2.dilate(nd.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return finite & ~nd


def decimate(img: np.ndarray, valid: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Area-average an image by ``factor`` (>= 1); a decimated pixel is valid when all its sources are.

    Returns:
        ``(img, valid)`` of shape ``(round(H / f), round(W / f))`` (at least 1 x 1).

    Convention:
        ``cv2.resize`` grid (see module docstring).
    """
    if factor <= 1.0 + 1e-9:
        return img.astype(np.float32, copy=False), valid
    h, w = img.shape
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    filled = np.where(valid, img, 0.0).astype(np.float32)
    num = cv2.resize(filled, size, interpolation=cv2.INTER_AREA)
    den = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    out = np.where(den > 0, num / np.maximum(den, 1e-6), 0.0).astype(np.float32)
    return out, den > 0.99


def scale_matrix(fx: float, fy: float | None = None) -> np.ndarray:
    """3x3 matrix taking full-resolution pixel coordinates to a grid decimated by ``(fx, fy)``.

    Convention:
        ``x' = (x + 0.5) / fx - 0.5`` (pixel centres at integers on both grids).
    """
    fy = fx if fy is None else fy
    return np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1.0]])


def translate_matrix(dx: float, dy: float) -> np.ndarray:
    """3x3 matrix of a translation by ``(dx, dy)`` pixels (x = column, y = row)."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


@dataclass
class Source:
    """One image, single band, with validity, read by window or decimated.

    Attributes:
        role: ``"sar"`` or ``"optical"``.
        width: full-resolution width.
        height: full-resolution height.
        scene: the scene, or ``None`` for an array.
        array: the ``(H, W)`` float32 image for an array source.
        array_valid: its validity.
        db: SAR scene values are decibels (converted to amplitude on read).
    """

    role: str
    width: int
    height: int
    scene: object | None = None
    array: np.ndarray | None = None
    array_valid: np.ndarray | None = None
    db: bool = False

    @property
    def window(self) -> Window:
        return Window(0, 0, self.width, self.height)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Full-resolution ``(img, valid)`` of a window (boundless: zero and invalid outside).

        Convention:
            ``img[i, j]`` is pixel ``(col_off + j, row_off + i)``.
        """
        if self.array is not None:
            img = np.zeros(window.shape, np.float32)
            val = np.zeros(window.shape, bool)
            inside = window.clip(self.width, self.height)
            if inside is not None:
                r0, c0 = inside.row_off - window.row_off, inside.col_off - window.col_off
                sl = inside.to_slices()
                img[r0 : r0 + inside.height, c0 : c0 + inside.width] = self.array[sl]
                val[r0 : r0 + inside.height, c0 : c0 + inside.width] = self.array_valid[sl]  # type: ignore[index]
            return img, val
        data, valid = self.scene.read(window)  # type: ignore[attr-defined]
        return self._to_single(data, valid)

    def read_level(self, window: Window, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """A window decimated by ``factor`` (area average), as ``(img, valid)``.

        Scenes are read through GDAL at twice the target size (nearest, using overviews when present), then
        area-averaged, so a level never needs a full-resolution read of a big scene.

        Convention:
            The result's pixel ``j`` covers the window's full-resolution pixels ``[j f, (j + 1) f)``.
        """
        if factor <= 1.0 + 1e-9:
            return self.read(window)
        th, tw = max(1, round(window.height / factor)), max(1, round(window.width / factor))
        if self.array is not None:
            img, val = self.read(window)
            img2, val2 = decimate(img, val, factor)
            return img2[:th, :tw], val2[:th, :tw]
        oh, ow = min(window.height, 2 * th), min(window.width, 2 * tw)
        data, valid = self.scene.read(window, out_shape=(oh, ow))  # type: ignore[attr-defined]
        img, val = self._to_single(data, valid)
        if (oh, ow) != (th, tw):
            img, val = decimate(img, val, oh / th)
            img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA) if img.shape != (th, tw) else img
            val = (
                cv2.resize(val.astype(np.float32), (tw, th), interpolation=cv2.INTER_AREA) > 0.99
                if val.shape != (th, tw)
                else val
            )
        return img, val

    def _to_single(self, data: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        img = data.mean(axis=0) if data.shape[0] > 1 else data[0]
        img = img.astype(np.float32, copy=False)
        if self.db:
            img = np.where(valid, np.power(10.0, img / 20.0), 0.0).astype(np.float32)
        ok = valid & np.isfinite(img)
        img = np.where(ok, img, 0.0).astype(np.float32)
        return img, ok


def make_source(obj: object, role: str, nodata: float | None, max_pixels: int = 2048 * 2048) -> Source:
    """Wrap an array or a :class:`~saropt.io.raster.Scene` as a :class:`Source`.

    A scene without a declared nodata value and at most ``max_pixels`` pixels is read whole, so that border
    fill at ``nodata`` (black wedges of rotated patches, zero-filled footprints) is found as for arrays; it keeps
    its scene (for georeferencing). Bigger scenes are read lazily, window by window, with the file's nodata.

    Args:
        obj: ``(H, W)``, ``(H, W, B)`` or ``(B, H, W)`` array, or a Scene.
        role: ``"sar"`` or ``"optical"``.
        nodata: border fill value of arrays and small scenes without nodata (see :func:`border_nodata_mask`),
            or ``None``.
        max_pixels: largest scene read whole.

    Returns:
        The :class:`Source`.

    Raises:
        InputError: for arrays of another shape, or empty ones.
    """
    from saropt.io.raster import Scene

    if isinstance(obj, Scene):
        db = False
        if role == "sar" and not obj.is_complex and np.dtype(obj.dtype).kind == "f":
            data, valid, _ = obj.read_decimated(256)
            v = data[0][valid]
            db = bool(v.size and float(np.nanmin(v)) < 0.0)
        src = Source(role=role, width=obj.width, height=obj.height, scene=obj, db=db)
        if obj.nodata is None and nodata is not None and obj.width * obj.height <= max_pixels:
            img, valid = src.read(src.window)
            valid &= border_nodata_mask(np.where(valid, img, nodata).astype(np.float32), nodata)
            src.array = np.where(valid, img, 0.0).astype(np.float32)
            src.array_valid = valid
        return src
    a = np.asarray(obj)
    if a.ndim == 3:
        if a.shape[0] <= 4 and a.shape[0] < min(a.shape[1:]):
            a = a.astype(np.float32).mean(axis=0)
        else:
            a = a.astype(np.float32).mean(axis=2)
    if a.ndim != 2 or a.size == 0:
        raise InputError(
            f"{role} image must be a 2-D array or a band stack, got shape {np.asarray(obj).shape}"
        )
    a = a.astype(np.float32)
    valid = np.isfinite(a)
    if nodata is not None:
        valid &= border_nodata_mask(a, nodata)
    if role == "sar" and valid.any() and float(a[valid].min()) < 0.0:
        a = np.where(valid, np.power(10.0, a / 20.0), 0.0).astype(np.float32)
    a = np.where(valid, a, 0.0).astype(np.float32)
    return Source(role=role, width=a.shape[1], height=a.shape[0], array=a, array_valid=valid)
