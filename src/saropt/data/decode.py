"""Decoding image files into channel-first numpy arrays, with dataset-friendly errors.

PNG/JPEG go through OpenCV (``cv2.imread``): on 256x256 patches it decodes about 10% faster than Pillow and
returns contiguous arrays. GeoTIFF: plain (uncompressed, stripped) files are read straight from their bytes
(:mod:`saropt.data.tiff`, ~0.1 ms per patch), deflate/packbits files with tifffile, everything else (and any
resampling of coarser bands onto a target grid) with rasterio. Every failure to decode a file that exists
raises :class:`~saropt.errors.CorruptFileError` with its path; a missing file raises
:class:`~saropt.errors.DatasetNotFoundError`.

Arrays come back channel-first ``(C, H, W)`` in their native dtype; scaling to float happens in
:mod:`saropt.data.scaling`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from saropt.data.tiff import read_plain_tiff
from saropt.errors import CorruptFileError, DatasetNotFoundError


def read_image(path: str | os.PathLike[str], channels: int | None = None) -> np.ndarray:
    """Read a PNG/JPEG/BMP (or single-page TIFF) into a ``(C, H, W)`` array, RGB channel order.

    Args:
        path: the image file.
        channels: ``1`` to get one channel (a 3-channel image with identical channels, as SAR patches are
            often stored, gives its first channel; a colour image is converted to grey by luminance), ``3``
            to get RGB (a grey image is repeated), ``None`` to keep what the file holds (alpha is dropped).

    Returns:
        ``(C, H, W)`` array of the file's dtype (uint8 for 8-bit PNG, uint16 for 16-bit PNG).

    Raises:
        DatasetNotFoundError: the file does not exist.
        CorruptFileError: the file exists but cannot be decoded.
    """
    import cv2

    p = os.fspath(path)
    img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
    if img is None:
        if not os.path.exists(p):
            raise DatasetNotFoundError(f"missing file {p}")
        raise CorruptFileError(f"cannot decode image {p} (truncated or not an image); re-download it")
    if img.ndim == 2:
        arr = img[None]
    else:
        if img.shape[2] == 4:
            img = img[:, :, :3]
        # OpenCV decodes BGR
        arr = (
            np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))
            if img.shape[2] == 3
            else img.transpose(2, 0, 1)
        )
    return _to_channels(arr, channels)


def _to_channels(arr: np.ndarray, channels: int | None) -> np.ndarray:
    c = arr.shape[0]
    if channels is None or channels == c:
        return np.ascontiguousarray(arr)
    if channels == 1 and c == 3:
        if np.array_equal(arr[0], arr[1]) and np.array_equal(arr[0], arr[2]):
            return np.ascontiguousarray(arr[:1])
        grey = 0.299 * arr[0].astype(np.float32) + 0.587 * arr[1] + 0.114 * arr[2]
        if np.issubdtype(arr.dtype, np.integer):
            grey = np.clip(np.rint(grey), np.iinfo(arr.dtype).min, np.iinfo(arr.dtype).max)
        return grey.astype(arr.dtype)[None]
    if channels == 3 and c == 1:
        return np.repeat(arr, 3, axis=0)
    return (
        np.ascontiguousarray(arr[:channels])
        if c > channels
        else np.concatenate([arr, np.repeat(arr[-1:], channels - c, axis=0)])
    )


def read_raster(
    path: str | os.PathLike[str],
    bands: Sequence[int] | None = None,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read bands of a GeoTIFF (or any GDAL raster) into a ``(C, H, W)`` array.

    Args:
        path: the raster file.
        bands: 1-based band indexes to read (``None``: all bands).
        out_shape: ``(H, W)`` to resample to (bilinear), e.g. to put a 20 m Sentinel-2 band on the 10 m grid.

    Returns:
        ``(C, H, W)`` array of the file's dtype.

    Raises:
        DatasetNotFoundError: the file does not exist.
        CorruptFileError: the file cannot be opened or decoded, or a band index is out of range.
    """
    p = os.fspath(path)
    if out_shape is None and p.lower().endswith((".tif", ".tiff")):
        fast = read_plain_tiff(p, bands)
        if fast is None:
            fast = _read_tiff_fast(p, bands)
        if fast is not None:
            return fast
    import rasterio
    from rasterio.enums import Resampling

    try:
        with rasterio.open(p) as src:
            idx = list(bands) if bands is not None else list(range(1, src.count + 1))
            if any(b < 1 or b > src.count for b in idx):
                raise CorruptFileError(f"{p} has {src.count} bands; cannot read bands {idx}")
            if out_shape is not None and tuple(out_shape) != (src.height, src.width):
                return src.read(idx, out_shape=(len(idx), *out_shape), resampling=Resampling.bilinear)
            return src.read(idx)
    except CorruptFileError:
        raise
    except Exception as exc:  # rasterio raises RasterioIOError and friends
        if not os.path.exists(p):
            raise DatasetNotFoundError(f"missing file {p}") from None
        raise CorruptFileError(f"cannot read raster {p}: {str(exc).splitlines()[0]}") from None


#: TIFF compressions tifffile decodes without extra codecs: none, deflate (two codes), packbits
_FAST_COMPRESSION = frozenset({1, 8, 32946, 32773})


def _read_tiff_fast(path: str, bands: Sequence[int] | None) -> np.ndarray | None:
    """Read a plain (raw, deflate or packbits) TIFF with tifffile: ~8x faster than opening it with GDAL.

    Returns ``None`` when the file is not such a TIFF or anything is unusual (GDAL then reads it). The caller
    has checked the ``.tif``/``.tiff`` suffix.
    """
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if int(page.compression) not in _FAST_COMPRESSION or int(page.predictor) != 1:
                return None
            arr = page.asarray()
            separate = int(page.planarconfig) == 2
    except Exception:  # anything unusual: GDAL decides (and reports corrupt files)
        return None
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3 and not separate:
        arr = arr.transpose(2, 0, 1)
    elif arr.ndim != 3:
        return None
    if bands is not None:
        idx = [int(b) - 1 for b in bands]
        if any(i < 0 or i >= arr.shape[0] for i in idx):
            return None
        arr = arr[idx]
    return np.ascontiguousarray(arr)


def raster_georef(
    path: str | os.PathLike[str],
) -> tuple[tuple[float, float, float, float] | None, str | None]:
    """``(bounds, crs)`` of a raster: ``(minx, miny, maxx, maxy)`` in its CRS (WKT-free short string), or
    Nones.

    Raises:
        CorruptFileError: the file cannot be opened.
    """
    import rasterio

    p = os.fspath(path)
    try:
        with rasterio.open(p) as src:
            if src.crs is None:
                return None, None
            b = src.bounds
            return (float(b.left), float(b.bottom), float(b.right), float(b.top)), src.crs.to_string()
    except Exception as exc:
        if not os.path.exists(p):
            raise DatasetNotFoundError(f"missing file {p}") from None
        raise CorruptFileError(f"cannot open raster {p}: {str(exc).splitlines()[0]}") from None
