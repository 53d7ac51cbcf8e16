"""A fast PNG encoder for 8-bit grey and RGB patches: numpy row filters and ISA-L deflate.

Writing PNGs is a large share of a build's time. OpenCV's libpng path at its fastest useful setting (SUB
filter, Huffman-only coding) costs about 0.6 ms for a 256 px SAR patch and 1.6 ms for an RGB one. This
encoder filters rows with numpy and deflates with Intel's ISA-L (the ``isal`` package, optional: ``pip
install saropt[fast]``), which is several times faster than zlib at its level 1 and compresses better than
Huffman-only coding. Measured on 200 patches of the synthetic 8000 px benchmark scene: SAR 0.22 ms and 42 KB
against 0.63 ms and 51 KB; RGB 0.90 ms and 97 KB against 1.67 ms and 88 KB.

Filters: speckled SAR has no correlation between neighbouring pixels worth predicting, so its rows are stored
unfiltered (smaller *and* faster than SUB: 42 KB against 51 KB); RGB rows use SUB. Output bytes depend only on
the pixels (no timestamps or text chunks), so builds stay byte-identical. Any PNG decoder reads the files.
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


def available() -> bool:
    """Whether the fast encoder can run (the optional ``isal`` package is installed)."""
    return _deflate is not None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _filtered(img: np.ndarray, sub: bool) -> bytes:
    """Scanlines with their filter-type byte: 0 (none) or 1 (SUB: each byte minus the one a pixel before)."""
    h = img.shape[0]
    rows = img.reshape(h, -1)
    bpp = 1 if img.ndim == 2 else img.shape[2]
    out = np.empty((h, rows.shape[1] + 1), np.uint8)
    if sub:
        out[:, 0] = 1
        out[:, 1 : 1 + bpp] = rows[:, :bpp]
        np.subtract(rows[:, bpp:], rows[:, :-bpp], out=out[:, 1 + bpp :])  # uint8 wraps modulo 256, as PNG
    else:
        out[:, 0] = 0
        out[:, 1:] = rows
    return out.tobytes()


def encode_png(img: np.ndarray, sub: bool | None = None) -> bytes:
    """Encode an 8-bit grey ``(H, W)`` or RGB ``(H, W, 3)`` image as PNG bytes.

    Args:
        img: uint8 image (RGB channel order).
        sub: SUB row filter (default: for RGB only; grey SAR speckle compresses better unfiltered).

    Returns:
        The PNG file's bytes.

    Raises:
        InputError: for other dtypes or shapes.
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
    h, w = a.shape[:2]
    colour = 0 if a.ndim == 2 else 2
    use_sub = (a.ndim == 3) if sub is None else bool(sub)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    idat = _deflate.compress(_filtered(a, use_sub), LEVEL)
    return _SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
