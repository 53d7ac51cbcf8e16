"""A fast PNG encoder for 8-bit grey and RGB patches: numpy row filters and ISA-L deflate, and fpng for RGB.

Writing PNGs is a large share of a build's time. OpenCV's libpng path at its fastest useful setting (SUB
filter, Huffman-only coding) costs about 0.6 ms for a 256 px SAR patch and 1.6 ms for an RGB one. This
encoder filters rows with numpy and deflates with Intel's ISA-L (the ``isal`` package, optional: ``pip
install saropt[fast]``), which is several times faster than zlib at its level 1 and compresses better than
Huffman-only coding. Measured on 200 patches of the synthetic 8000 px benchmark scene: SAR 0.22 ms and 42 KB
against 0.63 ms and 51 KB; RGB with SUB 0.90 ms and 97 KB against 1.67 ms and 88 KB.

Filters: speckled SAR has no correlation between neighbouring pixels worth predicting, so its rows are stored
unfiltered (smaller *and* faster than SUB: 42 KB against 51 KB); RGB rows use UP (each byte minus the one
above), which deflate also codes faster than SUB: on the same 200 patches 0.82 ms and 99 KB against 1.11 ms
and 101 KB (ISA-L level 1). Output bytes depend only on the pixels (no timestamps or text chunks), so builds
stay byte-identical. Any PNG decoder reads the files.

RGB patches go to fpng (Rich Geldreich's fast PNG encoder, the optional ``fpng`` package, also in
``saropt[fast]``) when it is installed: it filters and codes in one SIMD pass with Huffman tables built for
image data. On 100 optical patches of the synthetic 8000 px benchmark scene it took 0.28-0.35 ms and 111 KB a
patch against 0.75-1.35 ms and 104 KB with UP + ISA-L (measured in the same runs): 7% larger files for a
2.5-4x faster encode. Grey (SAR) patches stay with ISA-L: fpng writes only RGB and RGBA.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from saropt.errors import InputError

__all__ = ["available", "encode_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: ISA-L compression level (0-3; 1 is the speed/size sweet spot measured above)
LEVEL = 1

try:
    from isal import isal_zlib as _deflate  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _deflate = None

try:
    from fpng import fpng_ext as _fpng  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _fpng = None


def available() -> bool:
    """Whether the fast encoder can run (the optional ``isal`` package is installed)."""
    return _deflate is not None


def fpng_available() -> bool:
    """Whether RGB images go to fpng (the optional ``fpng`` package is installed)."""
    return _fpng is not None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


#: PNG row filter types this encoder writes
FILTERS = {"none": 0, "sub": 1, "up": 2}


def _filtered(img: np.ndarray, row_filter: str) -> bytes:
    """Scanlines with their filter-type byte: none (0), SUB (1: each byte minus the one a pixel before) or UP
    (2: each byte minus the one above; the first row's "above" is zeros, so it is stored as is)."""
    h = img.shape[0]
    rows = img.reshape(h, -1)
    bpp = 1 if img.ndim == 2 else img.shape[2]
    out = np.empty((h, rows.shape[1] + 1), np.uint8)
    out[:, 0] = FILTERS[row_filter]
    if row_filter == "sub":
        out[:, 1 : 1 + bpp] = rows[:, :bpp]
        np.subtract(rows[:, bpp:], rows[:, :-bpp], out=out[:, 1 + bpp :])  # uint8 wraps modulo 256, as PNG
    elif row_filter == "up":
        out[0, 1:] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
    else:
        out[:, 1:] = rows
    return out.tobytes()


def encode_png(img: np.ndarray, row_filter: str | None = None) -> bytes:
    """Encode an 8-bit grey ``(H, W)`` or RGB ``(H, W, 3)`` image as PNG bytes.

    Args:
        img: uint8 image (RGB channel order).
        row_filter: ``"none"``, ``"sub"`` or ``"up"`` (default: fpng for RGB when installed, else ``"up"``;
            ``"none"`` for grey: SAR speckle compresses better unfiltered). Naming a filter always uses ISA-L.

    Returns:
        The PNG file's bytes.

    Raises:
        InputError: for other dtypes or shapes, or an unknown filter.
        MissingDependencyError: when ``isal`` is not installed (check :func:`available` first).
    """
    from saropt.errors import MissingDependencyError

    if _deflate is None:
        raise MissingDependencyError(
            "the fast PNG encoder needs the isal package: pip install 'saropt[fast]'"
        )
    a = np.ascontiguousarray(img)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise InputError(f"encode_png takes uint8 (H, W) or (H, W, 3) images, got {a.dtype} {a.shape}")
    if row_filter is not None and row_filter not in FILTERS:
        raise InputError(f"unknown PNG row filter {row_filter!r}; use one of {', '.join(FILTERS)}")
    if a.ndim == 3 and row_filter is None and _fpng is not None and a.shape[0] and a.shape[1]:
        return bytes(_fpng.encode_ndarray(a))
    h, w = a.shape[:2]
    colour = 0 if a.ndim == 2 else 2
    flt = row_filter or ("up" if a.ndim == 3 else "none")
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    idat = _deflate.compress(_filtered(a, flt), LEVEL)
    return _SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
