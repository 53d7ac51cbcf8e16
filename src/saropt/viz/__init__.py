"""Pictures for checking registrations and datasets (checkerboard overviews, tie points, patch mosaics).

Everything lives in :mod:`saropt.viz.overview`; names are re-exported lazily so ``import saropt.viz`` does not
import OpenCV until a function is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "to_rgb",
    "checkerboard",
    "residual_colour",
    "draw_tiepoints",
    "draw_windows",
    "overview_image",
    "patch_mosaic",
    "save_png",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("saropt.viz.overview"), name)
    raise AttributeError(f"module 'saropt.viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
