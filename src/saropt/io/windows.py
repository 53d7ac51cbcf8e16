"""Pixel windows: rectangular, integer-aligned regions of a raster.

Convention:
    x = column, y = row, 0-based; pixel centres at integer coordinates. A window covers the pixels with
    ``col_off <= col < col_off + width`` and ``row_off <= row < row_off + height``. In continuous pixel
    coordinates it spans ``[col_off - 0.5, col_off + width - 0.5]`` in x. This is rasterio's ``Window`` with the
    same field names; use :meth:`Window.to_rasterio` to pass one to rasterio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from saropt.errors import InputError


@dataclass(frozen=True, order=True)
class Window:
    """An integer pixel window ``(col_off, row_off, width, height)``.

    Convention:
        x = column, y = row, 0-based, pixel centres at integer coordinates.
    """

    col_off: int
    row_off: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width < 0 or self.height < 0:
            raise InputError(f"window size must be non-negative, got {self.width}x{self.height}")

    @property
    def col_end(self) -> int:
        """Exclusive end column."""
        return self.col_off + self.width

    @property
    def row_end(self) -> int:
        """Exclusive end row."""
        return self.row_off + self.height

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``, the numpy shape of a single-band read."""
        return (self.height, self.width)

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        """Centre ``(x, y)`` in continuous pixel coordinates (pixel centres at integers)."""
        return (self.col_off + (self.width - 1) / 2.0, self.row_off + (self.height - 1) / 2.0)

    def intersection(self, other: "Window") -> "Window | None":
        """The overlap of two windows, or ``None`` when they do not overlap."""
        c0 = max(self.col_off, other.col_off)
        r0 = max(self.row_off, other.row_off)
        c1 = min(self.col_end, other.col_end)
        r1 = min(self.row_end, other.row_end)
        if c1 <= c0 or r1 <= r0:
            return None
        return Window(c0, r0, c1 - c0, r1 - r0)

    def intersects(self, other: "Window") -> bool:
        return self.intersection(other) is not None

    def contains(self, other: "Window") -> bool:
        return (
            other.col_off >= self.col_off
            and other.row_off >= self.row_off
            and other.col_end <= self.col_end
            and other.row_end <= self.row_end
        )

    def union(self, other: "Window") -> "Window":
        """The smallest window covering both."""
        c0 = min(self.col_off, other.col_off)
        r0 = min(self.row_off, other.row_off)
        c1 = max(self.col_end, other.col_end)
        r1 = max(self.row_end, other.row_end)
        return Window(c0, r0, c1 - c0, r1 - r0)

    def pad(self, n: int) -> "Window":
        """Grow the window by ``n`` pixels on every side (may extend outside a raster)."""
        return Window(self.col_off - n, self.row_off - n, self.width + 2 * n, self.height + 2 * n)

    def clip(self, width: int, height: int) -> "Window | None":
        """Clip to a raster of the given size; ``None`` if nothing is left."""
        return self.intersection(Window(0, 0, width, height))

    def to_rasterio(self):  # type: ignore[no-untyped-def]
        """The equivalent ``rasterio.windows.Window``."""
        from rasterio.windows import Window as RioWindow

        return RioWindow(self.col_off, self.row_off, self.width, self.height)

    def to_slices(self) -> tuple[slice, slice]:
        """``(row_slice, col_slice)`` for indexing a ``(H, W)`` array that starts at pixel (0, 0)."""
        return (slice(self.row_off, self.row_end), slice(self.col_off, self.col_end))

    def to_dict(self) -> dict[str, int]:
        return {"col_off": self.col_off, "row_off": self.row_off, "width": self.width, "height": self.height}

    def iter_blocks(self, block: int) -> Iterator["Window"]:
        """Split into row-major blocks of at most ``block x block`` pixels."""
        if block <= 0:
            raise InputError(f"block size must be positive, got {block}")
        for r in range(self.row_off, self.row_end, block):
            for c in range(self.col_off, self.col_end, block):
                yield Window(c, r, min(block, self.col_end - c), min(block, self.row_end - r))
