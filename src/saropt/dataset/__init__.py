"""saropt.dataset: build registered SAR-optical patch-pair datasets (``saropt build``) and read their index.

Main entry points (imported lazily, so ``import saropt.dataset`` stays cheap):

- :func:`load_config` / :func:`config_from_dict` -> :class:`BuildConfig` (YAML + overrides, validated);
- :func:`build_dataset` (resumable, parallel, byte-identical for any number of workers) -> :class:`BuildResult`;
- :func:`read_index` (``index.parquet`` as a DataFrame; columns in :mod:`saropt.dataset.index`),
  :func:`inspect_dataset` (``saropt inspect``'s summary);
- :func:`run_demo` (the synthetic pair with known truth behind ``saropt demo``).

Example:
    >>> from saropt.dataset import load_config, build_dataset, read_index  # doctest: +SKIP
    >>> cfg = load_config("configs/build/example.yaml", overrides=["patch_size=128"])  # doctest: +SKIP
    >>> result = build_dataset(cfg, "out/ds", workers=2)  # doctest: +SKIP
    >>> df = read_index("out/ds"); df[df.keep & (df.split == "train")]  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BuildConfig": "saropt.dataset.config",
    "SceneSpec": "saropt.dataset.config",
    "load_config": "saropt.dataset.config",
    "config_from_dict": "saropt.dataset.config",
    "build_dataset": "saropt.dataset.build",
    "BuildResult": "saropt.dataset.build",
    "resolve_plan": "saropt.dataset.plan",
    "BuildPlan": "saropt.dataset.plan",
    "read_index": "saropt.dataset.index",
    "INDEX_BASE_COLUMNS": "saropt.dataset.index",
    "inspect_dataset": "saropt.dataset.summary",
    "run_demo": "saropt.dataset.demo",
}
_ALIASES = {"INDEX_BASE_COLUMNS": "BASE_COLUMNS"}

__all__ = [
    "INDEX_BASE_COLUMNS",
    "BuildConfig",
    "BuildPlan",
    "BuildResult",
    "SceneSpec",
    "build_dataset",
    "config_from_dict",
    "inspect_dataset",
    "load_config",
    "read_index",
    "resolve_plan",
    "run_demo",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), _ALIASES.get(name, name))
    raise AttributeError(f"module 'saropt.dataset' has no attribute {name!r}")
