"""Readers by name, imported lazily (``saropt data info FORMAT``; :func:`get_dataset`)."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from saropt.errors import InputError

if TYPE_CHECKING:
    from saropt.data.base import PairDataset

#: format name -> "module:Class"
DATASETS: dict[str, str] = {
    "qxs-saropt": "saropt.data.qxs:QXSSaropt",
    "sen1-2": "saropt.data.sen12:SEN12",
    "sen12ms": "saropt.data.sen12ms:SEN12MS",
    "osdataset": "saropt.data.osdataset:OSDataset",
    "saropt": "saropt.data.saropt_ds:SaroptDataset",
    "geotiff": "saropt.data.geotiff:GeoTiffPairs",
    "packed": "saropt.data.packed:PackedDataset",
}
_ALIASES = {
    "qxs": "qxs-saropt",
    "sen12": "sen1-2",
    "sen1_2": "sen1-2",
    "os": "osdataset",
    "os-dataset": "osdataset",
}


def list_datasets() -> list[str]:
    """Registered format names."""
    return sorted(DATASETS)


def resolve_name(fmt: str) -> str:
    """The canonical format name (aliases such as ``qxs`` accepted).

    Raises:
        InputError: unknown format.
    """
    key = fmt.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise InputError(f"unknown dataset format {fmt!r}; choose one of {', '.join(list_datasets())}")
    return key


def dataset_class(fmt: str) -> type["PairDataset"]:
    """The reader class of a format (imports its module)."""
    module, _, attr = DATASETS[resolve_name(fmt)].partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def get_dataset(fmt: str, root: str | os.PathLike[str], **kwargs: Any) -> "PairDataset":
    """Open a dataset by format name.

    ``geotiff`` takes ``root`` as a CSV file (``sar_path``/``opt_path``) or a folder holding ``sar/`` and
    ``opt/``; the other formats take their dataset folder.

    Args:
        fmt: one of :func:`list_datasets` (or an alias: ``qxs``, ``sen12``, ``os``).
        root: the dataset folder.
        **kwargs: reader arguments (``split=...``, ``seasons=...``).

    Returns:
        The reader.

    Raises:
        InputError: unknown format or arguments.
        DatasetNotFoundError: the folder is missing or incomplete.
    """
    import inspect

    cls = dataset_class(fmt)
    try:
        inspect.signature(cls).bind(root, **kwargs) if resolve_name(fmt) != "geotiff" else inspect.signature(
            cls
        ).bind([], **kwargs)
    except TypeError as exc:
        raise InputError(f"{fmt}: bad reader arguments {sorted(kwargs)} ({exc})") from None
    if resolve_name(fmt) == "geotiff":
        from pathlib import Path

        p = Path(root)
        if p.is_file():
            return cls.from_csv(p, **kwargs)  # type: ignore[attr-defined,no-any-return]
        return cls.from_folders(p / "sar", p / "opt", **kwargs)  # type: ignore[attr-defined,no-any-return]
    return cls(root, **kwargs)  # type: ignore[call-arg]
