"""Patch grids: square patch windows laid out with a stride (or an overlap) inside a region.

A grid is described by a patch size ``P`` and a stride ``S`` in pixels; the overlap between two neighbouring
patches is ``1 - S / P``. QXS-SAROPT describes its grid as "stride 52 for 20% overlap", which is inconsistent:
stride 52 at 256 px is 79.7% overlap, and 20% overlap is stride 205. saropt accepts either a stride or an
overlap, converts with ``S = round_half_up(P * (1 - overlap))`` and reports the overlap that results.

Convention:
    x = column, y = row, 0-based, pixel centres at integer coordinates; windows are
    :class:`saropt.io.windows.Window` objects in the pixel grid of the image being tiled (the SAR scene).
"""

from __future__ import annotations

import logging
import math

from saropt.errors import InputError
from saropt.io.windows import Window

logger = logging.getLogger(__name__)

#: overlap used when neither a stride nor an overlap is given (QXS-SAROPT's stated 20%)
DEFAULT_OVERLAP = 0.2

LAYOUT_KINDS = ("sar", "opt")


def _round_half_up(value: float) -> int:
    # Python's round() rounds halves to even (round(2.5) == 2); a grid should not depend on that.
    return math.floor(value + 0.5)


def resolve_stride(patch_size: int, stride: int | None = None, overlap: float | None = None) -> int:
    """The stride in pixels from a stride or an overlap fraction (give at most one).

    With neither, the default is 20% overlap, i.e. ``stride = round(patch_size * 0.8)`` (205 for 256 px).
    Rounding is half up (``P * (1 - overlap) = 7.5`` gives 8). A stride larger than the patch size is allowed
    (it leaves gaps between patches) and logged as a warning.

    Args:
        patch_size: patch side in pixels, positive.
        stride: step between patch origins in pixels, positive.
        overlap: overlap fraction between neighbouring patches, in ``[0, 1)``.

    Returns:
        The stride in pixels (at least 1).

    Raises:
        InputError: for a non-positive patch size or stride, an overlap outside ``[0, 1)``, an overlap so
            close to 1 that the stride rounds to 0, or when both ``stride`` and ``overlap`` are given.
    """
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size <= 0:
        raise InputError(f"patch size must be a positive integer number of pixels, got {patch_size!r}")
    if stride is not None and overlap is not None:
        raise InputError(
            f"give either a stride ({stride}) or an overlap ({overlap}), not both: "
            f"stride = round(patch_size * (1 - overlap))"
        )
    if stride is not None:
        if isinstance(stride, bool) or not isinstance(stride, int) or stride <= 0:
            raise InputError(f"stride must be a positive integer number of pixels, got {stride!r}")
        if stride > patch_size:
            logger.warning(
                "stride %d is larger than the patch size %d: the grid leaves %d-pixel gaps between patches",
                stride,
                patch_size,
                stride - patch_size,
            )
        return stride
    if overlap is None:
        overlap = DEFAULT_OVERLAP
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0.0 <= float(overlap) < 1.0:
        raise InputError(f"overlap must be a fraction in [0, 1), got {overlap!r} (0.2 means 20% overlap)")
    result = _round_half_up(patch_size * (1.0 - float(overlap)))
    if result <= 0:
        raise InputError(
            f"overlap {overlap} leaves a stride of 0 pixels at patch size {patch_size}; use a smaller overlap"
        )
    return result


def overlap_of(patch_size: int, stride: int) -> float:
    """The overlap fraction ``1 - stride / patch_size`` of a grid (negative when the stride leaves gaps).

    Args:
        patch_size: patch side in pixels, positive.
        stride: stride in pixels, positive.

    Returns:
        The overlap fraction, e.g. 0.19921875 for patch 256 / stride 205, -0.25 for patch 256 / stride 320.

    Raises:
        InputError: for a non-positive patch size or stride.
    """
    if patch_size <= 0 or stride <= 0:
        raise InputError(f"patch size and stride must be positive, got {patch_size} and {stride}")
    return 1.0 - stride / patch_size


def format_overlap(overlap: float) -> str:
    """Overlap as written in layout names: 2 decimals, trailing zeros stripped ("0.2", "0", "0.25", "-0.5")."""
    text = f"{round(float(overlap), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def layout_dirname(kind: str, patch_size: int, overlap: float) -> str:
    """The QXS-SAROPT-style folder name of a patch set, e.g. ``"sar_256_oc_0.2"``.

    The overlap is rounded to 2 decimals with trailing zeros stripped, so patch 256 / stride 205 (overlap
    0.1992) gives ``"sar_256_oc_0.2"`` and patch 256 / stride 192 gives ``"opt_256_oc_0.25"``.

    Args:
        kind: ``"sar"`` or ``"opt"``.
        patch_size: patch side in pixels.
        overlap: overlap fraction (see :func:`overlap_of`).

    Returns:
        The folder name.

    Raises:
        InputError: for an unknown kind or a non-positive patch size.
    """
    if kind not in LAYOUT_KINDS:
        raise InputError(f"layout kind must be one of {LAYOUT_KINDS}, got {kind!r}")
    if patch_size <= 0:
        raise InputError(f"patch size must be positive, got {patch_size}")
    return f"{kind}_{patch_size}_oc_{format_overlap(overlap)}"


def grid_count(length: int, patch_size: int, stride: int) -> int:
    """Number of patches along one axis: ``floor((length - patch_size) / stride) + 1``, or 0 if too short."""
    if patch_size <= 0 or stride <= 0:
        raise InputError(f"patch size and stride must be positive, got {patch_size} and {stride}")
    if length < patch_size:
        return 0
    return (length - patch_size) // stride + 1


def patch_grid(region: Window, patch_size: int, stride: int) -> list[Window]:
    """Square patch windows covering a region, row-major (top row first, left to right).

    The first patch starts at the region's top-left pixel; patches step by ``stride`` and every patch lies
    fully inside the region. When the last patch of a row or column does not reach the region's edge it is
    *not* shifted back to the edge: shifting would change the overlap of that one patch and make the grid
    depend on the region size. The uncovered margin is at most ``stride - 1`` pixels (right and bottom).

    Convention:
        Windows are in the same pixel grid as ``region`` (x = column, y = row, 0-based, pixel centres at
        integer coordinates).

    Args:
        region: the region to tile (a scene window or a sub-region's bounding box).
        patch_size: patch side in pixels, positive.
        stride: stride in pixels, positive.

    Returns:
        ``grid_count(height) * grid_count(width)`` windows; an empty list when the region is smaller than a
        patch in either direction.

    Raises:
        InputError: for a non-positive patch size or stride.
    """
    n_cols = grid_count(region.width, patch_size, stride)
    n_rows = grid_count(region.height, patch_size, stride)
    return [
        Window(region.col_off + j * stride, region.row_off + i * stride, patch_size, patch_size)
        for i in range(n_rows)
        for j in range(n_cols)
    ]
