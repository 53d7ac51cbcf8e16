"""PyTorch readers for SAR-optical pair datasets, transforms, matching pairs, splits and a packed fast format.

Every reader returns ``{"sar": (C, H, W) float, "opt": (C, H, W) float, "meta": dict}`` (see
:mod:`saropt.data.base`). Names are imported lazily (``import saropt.data`` does not import torch)::

    from saropt.data import QXSSaropt, SEN12, SEN12MS, OSDataset, SaroptDataset, GeoTiffPairs
    from saropt.data import MatchingPairs, PackedDataset, PackedStream, pack, get_dataset
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PairDataset": "saropt.data.base",
    "PairRecord": "saropt.data.base",
    "collate_pairs": "saropt.data.base",
    "QXSSaropt": "saropt.data.qxs",
    "SEN12": "saropt.data.sen12",
    "SEN12MS": "saropt.data.sen12ms",
    "OSDataset": "saropt.data.osdataset",
    "SaroptDataset": "saropt.data.saropt_ds",
    "GeoTiffPairs": "saropt.data.geotiff",
    "GeoTiffPair": "saropt.data.geotiff",
    "MatchingPairs": "saropt.data.pairs",
    "PackedDataset": "saropt.data.packed",
    "PackedStream": "saropt.data.packed",
    "pack": "saropt.data.packed",
    "Scaling": "saropt.data.scaling",
    "SplitFile": "saropt.data.splits",
    "make_split": "saropt.data.splits",
    "read_split_file": "saropt.data.splits",
    "DATASETS": "saropt.data.registry",
    "get_dataset": "saropt.data.registry",
    "list_datasets": "saropt.data.registry",
    "dataset_info": "saropt.data.info",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'saropt.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
