"""Opening the dataset splits a matching run trains and evaluates on (any reader of :mod:`saropt.data`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from saropt.errors import ConfigError, DatasetNotFoundError


def open_split(data: str | Path, split: str | None, data_format: str = "saropt") -> Any:
    """One split of a dataset through the :mod:`saropt.data` reader registry.

    Args:
        data: dataset folder.
        split: split name (``"train"``, ``"val"``, ``"test"``...), or ``None``/``"all"`` for every pair.
        data_format: reader name (``"saropt"`` for ``saropt build`` output).

    Returns:
        The reader (a map-style dataset of ``{"sar", "opt", "meta"}`` samples).

    Raises:
        ConfigError: no data folder given.
        DatasetNotFoundError: the folder is missing.
        InputError: unknown split or format.
    """
    from saropt.data.registry import get_dataset

    if not str(data):
        raise ConfigError("no dataset given: pass --data DIR (a folder built by 'saropt build')")
    p = Path(data)
    if not p.exists():
        raise DatasetNotFoundError(f"dataset folder not found: {p}")
    return get_dataset(data_format, p, split=None if split in (None, "", "all") else split)
