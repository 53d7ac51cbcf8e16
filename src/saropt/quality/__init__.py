"""saropt.quality: per-patch quality filters (QXS-SAROPT step G).

Scores: no-data fraction, texture (open sea), mosaicking seamlines, local registration check and perceptual
hashes for near-duplicates. :func:`patch_scores` computes them for one patch pair, :func:`decide` turns them
into flags and reasons, :func:`find_near_duplicates` searches all patches at once.

Names are imported lazily, so ``import saropt.quality.config`` does not load OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FILTERS": "saropt.quality.config",
    "QualityConfig": "saropt.quality.config",
    "patch_scores": "saropt.quality.score",
    "decide": "saropt.quality.score",
    "duplicate_reason": "saropt.quality.score",
    "SCORE_KEYS": "saropt.quality.score",
    "phash": "saropt.quality.duplicates",
    "hamming": "saropt.quality.duplicates",
    "find_near_duplicates": "saropt.quality.duplicates",
    "to_int64": "saropt.quality.duplicates",
    "to_uint64": "saropt.quality.duplicates",
}

__all__ = [
    "FILTERS",
    "SCORE_KEYS",
    "QualityConfig",
    "decide",
    "duplicate_reason",
    "find_near_duplicates",
    "hamming",
    "patch_scores",
    "phash",
    "to_int64",
    "to_uint64",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'saropt.quality' has no attribute {name!r}")
