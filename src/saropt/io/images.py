"""Image files: atomic, byte-deterministic PNG and GeoTIFF writers, and an 8-bit image reader.

Every writer writes to a temporary name in the destination folder and renames it into place when complete
(:func:`atomic_path`), so an interrupted job never leaves a half-written file under the final name. The same
input always gives the same bytes (no timestamps), which keeps parallel and resumed builds byte-identical.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import secrets
import warnings
from collections.abc import Iterator

import numpy as np

from saropt.errors import CorruptFileError, ImageWriteError, InputError, RasterReadError

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success, remove it on error.

    The temporary name keeps the file extension (``.name.<random>.tmp.png``) so format-by-extension writers
    (OpenCV, GDAL) work on it. Parent folders are created. The rename is atomic on POSIX and Windows when
    source and destination are on the same volume, which they are.

    Args:
        path: the final file path.

    Yields:
        The temporary path to write to.

    Example:
        >>> with atomic_path("out/table.csv") as tmp:  # doctest: +SKIP
        ...     open(tmp, "w").write("a,b\\n")
    """
    final = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(final))
    os.makedirs(folder, exist_ok=True)
    _, ext = os.path.splitext(name)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp{ext}")
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


_counter = itertools.count()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: to a temporary name beside it, then renamed into place.

    The same guarantee as :func:`atomic_path` (an interrupted write never leaves a partial file under the final
    name) at a third of its cost per small file (unbuffered ``os.write``, a per-process counter instead of a
    random token, parent folders created only when missing): a build writes two files per patch pair.

    Raises:
        OSError: when the file cannot be written (the temporary file is removed).
    """
    final = os.fspath(path)
    folder, name = os.path.split(final)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}-{next(_counter)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileNotFoundError:
        os.makedirs(folder or ".", exist_ok=True)
        fd = os.open(tmp, flags, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _as_hwc_uint8(img: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise InputError(
            f"{what} expects uint8 data, got {a.dtype}; map it to 8-bit first (saropt.io.radiometry)"
        )
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise InputError(f"{what} expects (h, w) or (h, w, 3) data, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"{what}: cannot write an empty image of shape {a.shape}")
    return a


def write_png(path: str | os.PathLike[str], img: np.ndarray, *, compression: int = 1) -> None:
    """Write an 8-bit grey or RGB PNG atomically, with deterministic bytes.

    Args:
        path: destination ``.png`` file.
        img: ``(h, w)`` grey or ``(h, w, 3)`` RGB uint8 (``(h, w, 1)`` is written as grey).
        compression: zlib level 0-9 (1 = fast; PNG is lossless at every level).

    Raises:
        InputError: wrong dtype, shape or compression level.
        ImageWriteError: the file could not be written.
    """
    import cv2

    a = _as_hwc_uint8(img, "write_png")
    if not 0 <= int(compression) <= 9:
        raise InputError(f"PNG compression must be 0..9, got {compression}")
    if a.ndim == 3:
        a = a[:, :, ::-1]  # OpenCV writes BGR
    a = np.ascontiguousarray(a)
    with atomic_path(path) as tmp:
        try:
            ok = cv2.imwrite(tmp, a, [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
        except cv2.error as exc:
            raise ImageWriteError(f"cannot write PNG {os.fspath(path)}: {exc}") from exc
        if not ok:
            raise ImageWriteError(
                f"cannot write PNG {os.fspath(path)} (check the folder and the .png extension)"
            )


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PNG, JPEG or TIFF image as 8-bit.

    Grey images come back as ``(h, w)``, colour as ``(h, w, 3)`` RGB (alpha is dropped). 16-bit images are
    scaled to 8-bit by ``round(x / 257)``. EXIF orientation is ignored: the pixel grid is returned as stored.

    Args:
        path: image file.

    Returns:
        ``(h, w)`` or ``(h, w, 3)`` uint8, RGB order.

    Raises:
        RasterReadError: the file does not exist.
        CorruptFileError: the file cannot be decoded, or is not an 8/16-bit image (the message names the path).
    """
    import cv2

    p = os.fspath(path)
    if not os.path.isfile(p):
        raise RasterReadError(f"image not found: {p}")
    try:
        buf = np.fromfile(p, dtype=np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    except (OSError, cv2.error) as exc:
        raise CorruptFileError(f"cannot decode image {p}: {exc}") from exc
    if img is None:
        raise CorruptFileError(f"cannot decode image {p} (corrupt, truncated or not PNG/JPEG/TIFF)")
    if img.dtype == np.uint16:
        img = ((img.astype(np.float32) + 128.0) / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise CorruptFileError(
            f"{p} holds {img.dtype} data, not an 8-bit image; open it with saropt.io.open_scene"
        )
    if img.ndim == 3:
        n = img.shape[2]
        if n == 1:
            img = img[:, :, 0]
        elif n == 2:  # grey + alpha
            img = img[:, :, 0]
        elif n in (3, 4):
            img = np.ascontiguousarray(img[:, :, 2::-1])  # BGR(A) -> RGB
        else:
            raise CorruptFileError(f"{p} has {n} channels; expected grey, RGB or RGBA")
    return img


def write_geotiff(
    path: str | os.PathLike[str],
    data: np.ndarray,
    *,
    transform: tuple[float, ...] | None,
    crs: str | None,
    nodata: float | None = None,
) -> None:
    """Write a (Geo)TIFF atomically: deflate-compressed, deterministic bytes (no timestamps, no sidecars).

    Args:
        path: destination ``.tif`` file.
        data: ``(C, h, w)``, ``(h, w)`` or ``(h, w, 3)`` array of any GDAL data type. An array ``(h, w, 3)`` is
            recognised by its last axis being 3 while the first is not.
        transform: rasterio affine ``(a, b, c, d, e, f)`` (pixel-CORNER based, e.g.
            :meth:`Scene.window_transform`), or ``None`` for a plain TIFF.
        crs: CRS as WKT (or any string rasterio accepts, e.g. ``"EPSG:4326"``), or ``None``.
        nodata: nodata value to record, or ``None``.

    Raises:
        InputError: bad shape, or a CRS/transform rasterio cannot interpret.
        ImageWriteError: the file could not be written.

    Convention:
        ``transform`` maps pixel-corner coordinates (col, row) to map coordinates, as GDAL does.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioIOError
    from rasterio.transform import Affine

    a = np.asarray(data)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and a.shape[2] == 3 and a.shape[0] != 3:
        a = np.moveaxis(a, 2, 0)
    if a.ndim != 3 or min(a.shape) == 0:
        raise InputError(
            f"write_geotiff expects (C, h, w), (h, w) or (h, w, 3) data, got shape {np.shape(data)}"
        )
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    c, h, w = a.shape
    try:
        rio_crs = CRS.from_user_input(crs) if crs else None
    except CRSError as exc:
        raise InputError(f"write_geotiff: cannot interpret CRS {str(crs)[:80]!r}: {exc}") from exc
    if transform is not None and len(tuple(transform)) < 6:
        raise InputError(f"write_geotiff: transform needs 6 values (a, b, c, d, e, f), got {transform}")
    profile: dict[str, object] = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": c,
        "dtype": a.dtype.name,
        "compress": "deflate",
        "crs": rio_crs,
        "transform": Affine(*tuple(transform)[:6]) if transform is not None else None,
        "nodata": nodata,
    }
    if h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if c == 3 and a.dtype == np.uint8:
        profile["photometric"] = "RGB"
    if c > 1:
        profile["interleave"] = "pixel"
    with atomic_path(path) as tmp:
        try:
            with rasterio.Env(GDAL_PAM_ENABLED="NO"), warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(tmp, "w", **{k: v for k, v in profile.items() if v is not None}) as dst:
                    dst.write(np.ascontiguousarray(a))
        except (RasterioIOError, OSError) as exc:
            raise ImageWriteError(f"cannot write GeoTIFF {os.fspath(path)}: {exc}") from exc
