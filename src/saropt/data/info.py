"""Validate a dataset folder and describe it: pairs per split, bands, dtypes, shapes, value ranges.

:func:`dataset_info` opens a dataset with its reader (which checks the layout and that every pair is complete)
and then decodes every pair (or the first ``limit``), so a truncated download shows up before a week of
training rather than in its middle.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from saropt.errors import CorruptFileError


@dataclass
class ArrayStats:
    """What the decoded arrays of one kind (``sar``, ``opt``, ``lc``) look like (raw values, before scaling).

    Attributes:
        bands: band names.
        dtype: dtype(s) seen.
        shapes: distinct ``(C, H, W)`` shapes seen, with counts.
        min: per-band minimum (NaN ignored).
        max: per-band maximum.
        nan_fraction: fraction of NaN values (float data).
    """

    bands: list[str] = field(default_factory=list)
    dtype: list[str] = field(default_factory=list)
    shapes: dict[str, int] = field(default_factory=dict)
    min: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)
    nan_fraction: float = 0.0
    _nan: int = 0
    _n: int = 0

    def update(self, arr: np.ndarray) -> None:
        key = "x".join(str(s) for s in arr.shape)
        self.shapes[key] = self.shapes.get(key, 0) + 1
        if str(arr.dtype) not in self.dtype:
            self.dtype.append(str(arr.dtype))
        flat = arr.reshape(arr.shape[0], -1)
        if np.issubdtype(arr.dtype, np.floating):
            nan = np.isnan(flat)
            self._nan += int(nan.sum())
            with np.errstate(all="ignore"):
                lo = np.where(nan.all(1), np.nan, np.nanmin(np.where(nan, np.inf, flat), 1))
                hi = np.where(nan.all(1), np.nan, np.nanmax(np.where(nan, -np.inf, flat), 1))
        else:
            lo, hi = flat.min(1), flat.max(1)
        self._n += flat.size
        if not self.min or len(self.min) != len(lo):
            self.min, self.max = [float(v) for v in lo], [float(v) for v in hi]
        else:
            self.min = [float(np.fmin(a, b)) for a, b in zip(self.min, lo)]
            self.max = [float(np.fmax(a, b)) for a, b in zip(self.max, hi)]
        self.nan_fraction = self._nan / max(1, self._n)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_nan")
        d.pop("_n")
        return d


@dataclass
class DatasetInfo:
    """The result of :func:`dataset_info`.

    Attributes:
        format: reader name.
        root: dataset folder.
        pairs: pairs listed (complete pairs found by the reader).
        checked: pairs decoded.
        splits: split name -> pairs (``"unsplit"`` when the dataset has no split, ``"rejected"`` for pairs
            rejected by saropt's quality filters).
        arrays: per array kind (``sar``, ``opt``...) its :class:`ArrayStats`.
        corrupt: ``{"id", "error"}`` of every pair that could not be decoded.
        seconds: time taken.
    """

    format: str
    root: str
    pairs: int
    checked: int
    splits: dict[str, int]
    arrays: dict[str, ArrayStats]
    corrupt: list[dict[str, str]]
    seconds: float

    @property
    def ok(self) -> bool:
        """No corrupt pair."""
        return not self.corrupt

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (what ``saropt data info --json`` prints)."""
        return {
            "format": self.format,
            "root": self.root,
            "pairs": self.pairs,
            "checked": self.checked,
            "splits": self.splits,
            "arrays": {k: v.to_dict() for k, v in self.arrays.items()},
            "corrupt": self.corrupt,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
        }


def dataset_info(
    fmt: str,
    root: str | os.PathLike[str],
    *,
    skip_corrupt: bool = False,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **reader_kwargs: Any,
) -> DatasetInfo:
    """Validate a dataset folder and describe it.

    Every split is opened (``split=None``; saropt datasets also list rejected pairs). Every pair is decoded,
    or the first ``limit``.

    Args:
        fmt: reader name (``qxs-saropt``, ``sen1-2``, ``sen12ms``, ``osdataset``, ``saropt``, ``geotiff``,
            ``packed``).
        root: dataset folder.
        skip_corrupt: record undecodable pairs in ``corrupt`` and go on instead of raising.
        limit: decode only the first ``limit`` pairs (the listing is still complete).
        progress: called as ``progress(done, total)``.
        **reader_kwargs: passed to the reader (e.g. ``size=256`` for OSdataset).

    Returns:
        The description.

    Raises:
        DatasetNotFoundError: the folder is missing or incomplete (message names what and the layout).
        CorruptFileError: a file cannot be decoded and ``skip_corrupt`` is false.
        InputError: unknown format or reader arguments.
    """
    from saropt.data.registry import get_dataset, resolve_name

    t0 = time.perf_counter()
    name = resolve_name(fmt)
    kwargs = dict(reader_kwargs)
    if name in ("saropt", "sen12ms", "osdataset", "qxs-saropt", "sen1-2", "packed"):
        kwargs.setdefault("split", None)
    if name == "saropt":
        kwargs.setdefault("keep_only", False)
    ds = get_dataset(name, root, **kwargs)
    splits: dict[str, int] = {}
    for rec in ds.records:
        if rec.extra.get("keep") is False:
            key = "rejected"
        else:
            key = rec.split or "unsplit"
        splits[key] = splits.get(key, 0) + 1
    arrays: dict[str, ArrayStats] = {
        "sar": ArrayStats(bands=list(ds.sar_bands)),
        "opt": ArrayStats(bands=list(ds.opt_bands)),
    }
    corrupt: list[dict[str, str]] = []
    n = len(ds) if limit is None else min(len(ds), max(0, int(limit)))
    ds.skip_corrupt = False
    for i in range(n):
        try:
            raw = ds.load_raw(i)
        except CorruptFileError as exc:
            if not skip_corrupt:
                raise
            corrupt.append({"id": ds.records[i].id, "error": str(exc)})
            continue
        for key, arr in raw.items():
            if key != "meta" and isinstance(arr, np.ndarray):
                arrays.setdefault(key, ArrayStats()).update(arr)
        if progress is not None:
            progress(i + 1, n)
    return DatasetInfo(
        name, str(root), len(ds), n, dict(sorted(splits.items())), arrays, corrupt, time.perf_counter() - t0
    )
