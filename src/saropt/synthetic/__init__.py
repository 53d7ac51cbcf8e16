"""Synthetic SAR/optical scene pairs with known truth: saropt's embedded default data.

``make_scene_pair`` writes a physically motivated SAR image, an optical image of the same procedural world
on a grid related by a known affine, noisy tie points, land-cover rasters and ``truth.json``. Submodules:
``world`` (classes, objects as vector geometry, drawing them on a grid), ``landcover`` (the procedural
generator, ``build_world``), ``optical`` and ``sar`` (renderers), ``texture`` (ground-anchored noise),
``scene`` (the pair and its files). Imports are lazy so ``import saropt.synthetic`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SyntheticPair", "make_scene_pair", "truth_matrix", "LandCover", "build_world"]

_LAZY = {
    "SyntheticPair": "saropt.synthetic.scene",
    "make_scene_pair": "saropt.synthetic.scene",
    "truth_matrix": "saropt.synthetic.scene",
    "LandCover": "saropt.synthetic.world",
    "build_world": "saropt.synthetic.landcover",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'saropt.synthetic' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
