"""The common base of every SAR-optical pair reader.

Every reader is a map-style ``torch.utils.data.Dataset`` over a list of :class:`PairRecord` (one per pair,
known without decoding any image) and returns one sample shape::

    {"sar": FloatTensor (C_sar, H, W), "opt": FloatTensor (C_opt, H, W), "meta": dict, ...extra tensors}

``meta`` always holds ``id`` (str), ``scene`` (str), ``index`` (int, position in this dataset) and ``split``
(str, ``""`` when the dataset has none), plus ``window`` ``(col_off, row_off, width, height)``, ``bounds``
``(minx, miny, maxx, maxy)`` and ``crs`` when the dataset knows them (keys are left out, never ``None``, so
the default ``DataLoader`` collate works). Values are scaled by the reader's documented :class:`Scaling`
(8-bit PNG -> [0, 1]). ``transforms`` is any callable taking and returning the sample dict
(:mod:`saropt.data.transforms`).

Convention:
    ``window`` is in the source scene's pixel grid: x = column, y = row, 0-based, pixel centres at integers.
    ``bounds`` are map coordinates in ``crs``.
"""

from __future__ import annotations

import copy
import logging
import os
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from saropt.data.scaling import UINT8, Scaling
from saropt.errors import CorruptFileError, InputError

logger = logging.getLogger(__name__)

Sample = dict[str, Any]
Transform = Callable[[Sample], Sample]

try:  # torch is required for the readers; keep the module importable for type checks without it
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # pragma: no cover - depends on the environment
    _TorchDataset = object  # type: ignore[assignment,misc]


@dataclass(frozen=True)
class PairRecord:
    """One SAR-optical pair as listed by a reader, before anything is decoded.

    Attributes:
        id: unique id within the dataset (file stem or patch id).
        scene: the scene (or group) the pair comes from; ``""`` when unknown.
        sar: SAR file path(s): one file, or one file per band.
        opt: optical file path(s).
        split: the split the dataset assigns (``"train"``, ``"test"``...), ``""`` when it has none.
        window: ``(col_off, row_off, width, height)`` in the source scene's pixel grid, when known.
        bounds: ``(minx, miny, maxx, maxy)`` in ``crs``, when known.
        crs: CRS as a string (``"EPSG:32633"``), when known.
        extra: reader-specific fields (e.g. ``season``, the land-cover file).

    Convention:
        ``window``: x = column, y = row, 0-based, pixel centres at integer coordinates.
    """

    id: str
    scene: str
    sar: tuple[str, ...]
    opt: tuple[str, ...]
    split: str = ""
    window: tuple[int, int, int, int] | None = None
    bounds: tuple[float, float, float, float] | None = None
    crs: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def files(self) -> tuple[str, ...]:
        """Every file this pair reads."""
        more = tuple(v for k, v in self.extra.items() if k.endswith("_path") and isinstance(v, str))
        return self.sar + self.opt + more


class PairDataset(_TorchDataset, metaclass=ABCMeta):  # type: ignore[misc,valid-type]
    """Base class of the SAR-optical pair readers.

    Subclasses list their pairs as :class:`PairRecord` objects and implement :meth:`_read_sar` and
    :meth:`_read_opt` (raw, channel-first numpy arrays); this class does scaling, tensors, ``meta``,
    transforms, corrupt-file handling, subsetting and plotting.

    Args:
        records: the pairs.
        transforms: callable applied to each sample dict.
        skip_corrupt: when a file cannot be decoded, log a warning and return the next readable pair instead
            of raising :class:`~saropt.errors.CorruptFileError`.
    """

    #: registry name (``saropt data info FORMAT``)
    name: ClassVar[str] = "pairs"
    #: names of the SAR / optical channels returned
    sar_bands: tuple[str, ...] = ("SAR",)
    opt_bands: tuple[str, ...] = ("R", "G", "B")
    #: raw -> float maps
    sar_scaling: Scaling = UINT8
    opt_scaling: Scaling = UINT8

    def __init__(
        self,
        records: Sequence[PairRecord],
        *,
        transforms: Transform | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        self.records: list[PairRecord] = list(records)
        self.transforms = transforms
        self.skip_corrupt = skip_corrupt
        self.corrupt: set[str] = set()

    # -- subclass hooks --------------------------------------------------------------------------------------
    @abstractmethod
    def _read_sar(self, rec: PairRecord) -> np.ndarray:
        """The raw ``(C, H, W)`` SAR array of a pair."""

    @abstractmethod
    def _read_opt(self, rec: PairRecord) -> np.ndarray:
        """The raw ``(C, H, W)`` optical array of a pair."""

    def _read_extra(self, rec: PairRecord) -> dict[str, np.ndarray]:
        """Extra raw arrays (e.g. a land-cover map); none by default."""
        return {}

    def _extra_meta(self, rec: PairRecord) -> dict[str, Any]:
        """Reader-specific meta entries (never ``None`` values)."""
        return {}

    # -- the Dataset protocol --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        """The sample at ``index``: ``{"sar", "opt", "meta", ...}`` (see the module docstring)."""
        raw = self.load_raw(index)
        sample = self.to_tensors(raw)
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} pairs)"

    # -- raw access ------------------------------------------------------------------------------------------
    def meta(self, index: int) -> dict[str, Any]:
        """The ``meta`` dict of a pair without decoding it."""
        index = self._check_index(index)
        rec = self.records[index]
        m: dict[str, Any] = {"id": rec.id, "scene": rec.scene, "index": index, "split": rec.split}
        if rec.window is not None:
            m["window"] = tuple(int(v) for v in rec.window)
        if rec.bounds is not None:
            m["bounds"] = tuple(float(v) for v in rec.bounds)
        if rec.crs:
            m["crs"] = rec.crs
        m.update(self._extra_meta(rec))
        return m

    def load_raw(self, index: int) -> Sample:
        """Decode one pair without scaling: ``{"sar": ndarray, "opt": ndarray, ..., "meta": dict}``.

        Arrays are channel-first in the files' native dtype. With ``skip_corrupt`` a corrupt pair is replaced
        by the next readable one (its own ``meta`` is returned).

        Raises:
            CorruptFileError: a file cannot be decoded (and ``skip_corrupt`` is false).
            DatasetNotFoundError: a file listed when the dataset was opened has disappeared.
        """
        index = self._check_index(index)
        tries = 0
        while True:
            rec = self.records[index]
            try:
                raw: Sample = {"sar": self._read_sar(rec), "opt": self._read_opt(rec)}
                raw.update(self._read_extra(rec))
                if raw["sar"].shape[-2:] != raw["opt"].shape[-2:]:
                    raise CorruptFileError(
                        f"pair {rec.id}: SAR is {raw['sar'].shape[-2:]} "
                        f"but optical is {raw['opt'].shape[-2:]} "
                        f"({rec.sar[0]}, {rec.opt[0]})"
                    )
            except CorruptFileError as exc:
                if not self.skip_corrupt:
                    raise
                if rec.id not in self.corrupt:
                    logger.warning("skipping corrupt pair %s: %s", rec.id, exc)
                    self.corrupt.add(rec.id)
                tries += 1
                if tries >= len(self.records):
                    raise CorruptFileError("every pair of this dataset is corrupt") from exc
                index = (index + 1) % len(self.records)
                continue
            raw["meta"] = self.meta(index)
            return raw

    def load_cross(self, sar_index: int, opt_index: int) -> Sample:
        """Raw SAR of one pair with the raw optical image of another (for negatives); extras follow the SAR.

        Returns:
            ``{"sar", "opt", ..., "meta"}`` with the SAR pair's ``meta`` (arrays unscaled).

        Raises:
            CorruptFileError: a file cannot be decoded (``skip_corrupt`` does not apply here).
            InputError: the two images differ in size.
        """
        a = self.records[self._check_index(sar_index)]
        b = self.records[self._check_index(opt_index)]
        raw: Sample = {"sar": self._read_sar(a), "opt": self._read_opt(b)}
        raw.update(self._read_extra(a))
        if raw["sar"].shape[-2:] != raw["opt"].shape[-2:]:
            raise InputError(f"pairs {a.id} and {b.id} differ in size; crop or resize to one size first")
        raw["meta"] = self.meta(sar_index)
        return raw

    def scalings(self) -> dict[str, Scaling]:
        """The raw -> float map of every array key (``sar``, ``opt``; extra integer maps are not scaled)."""
        return {"sar": self.sar_scaling, "opt": self.opt_scaling}

    def to_tensors(self, raw: Sample) -> Sample:
        """Scale raw arrays and wrap them as tensors (integer extras become int64 tensors, unscaled)."""
        import torch

        scal = self.scalings()
        out: Sample = {}
        for key, val in raw.items():
            if key == "meta":
                out[key] = val
            elif key in scal:
                out[key] = torch.from_numpy(scal[key].apply(val))
            elif isinstance(val, np.ndarray):
                if np.issubdtype(val.dtype, np.integer):
                    out[key] = torch.from_numpy(val.astype(np.int64))
                else:
                    out[key] = torch.from_numpy(np.ascontiguousarray(val, dtype=np.float32))
            else:
                out[key] = val
        return out

    # -- views -----------------------------------------------------------------------------------------------
    def select(self, indices: Iterable[int]) -> "PairDataset":
        """A dataset of the same kind over a subset of the pairs (``meta["index"]`` renumbered)."""
        idx = [self._check_index(int(i)) for i in indices]
        view = copy.copy(self)
        view.records = [self.records[i] for i in idx]
        view.corrupt = set()
        return view

    def split_indices(self) -> dict[str, list[int]]:
        """Indices of the pairs in each split the dataset assigns (``""`` for pairs without one)."""
        out: dict[str, list[int]] = {}
        for i, rec in enumerate(self.records):
            out.setdefault(rec.split, []).append(i)
        return out

    def plot(
        self,
        path: str | os.PathLike[str],
        indices: Sequence[int] | None = None,
        ncols: int = 4,
        title: str | None = None,
    ) -> None:
        """Write a PNG grid of pairs (SAR beside optical, id above) to ``path``.

        Args:
            path: output PNG (written to a temporary name, then renamed).
            indices: which pairs (default: up to 8 spread evenly over the dataset).
            ncols: pairs per row.
            title: figure title (default: the class name and size).
        """
        from saropt.data.plot import plot_samples

        if indices is None:
            n = min(8, len(self))
            indices = sorted({int(round(v)) for v in np.linspace(0, len(self) - 1, n)}) if n else []
        samples = [self[i] for i in indices]
        plot_samples(samples, path, ncols=ncols, title=title or f"{type(self).__name__}: {len(self)} pairs")

    def _check_index(self, index: int) -> int:
        n = len(self.records)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} pairs")
        return index % n


def collate_pairs(batch: Sequence[Sample]) -> Sample:
    """Collate samples into a batch: tensors stacked, ``meta`` kept as a list of dicts.

    Use as ``DataLoader(ds, batch_size=..., collate_fn=collate_pairs)`` when meta fields differ between
    samples or should stay Python objects. Tensors must have equal shapes (crop first).

    Raises:
        InputError: the batch is empty or samples have different keys.
    """
    import torch

    if not batch:
        raise InputError("cannot collate an empty batch")
    keys = batch[0].keys()
    out: Sample = {}
    for key in keys:
        vals = [s[key] for s in batch]
        if key == "meta":
            out[key] = vals
        elif isinstance(vals[0], torch.Tensor):
            out[key] = torch.stack(vals)
        elif isinstance(vals[0], (int, float)):
            out[key] = torch.tensor(vals)
        else:
            out[key] = vals
    return out
