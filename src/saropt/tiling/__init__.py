"""saropt.tiling: patch grids (stride / overlap) and named sub-regions of a SAR scene."""

from __future__ import annotations

from saropt.tiling.grid import layout_dirname, overlap_of, patch_grid, resolve_stride
from saropt.tiling.subregions import Subregion, parse_subregions, windows_in_subregion

__all__ = [
    "Subregion",
    "layout_dirname",
    "overlap_of",
    "parse_subregions",
    "patch_grid",
    "resolve_stride",
    "windows_in_subregion",
]
