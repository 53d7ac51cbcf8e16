"""A generic reader of SAR-optical GeoTIFF pairs (folders, a CSV, or an explicit list)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from saropt.data.base import PairDataset, PairRecord, Transform
from saropt.data.decode import raster_georef, read_raster
from saropt.data.layout import list_files, missing_message, natural_key, require_dir
from saropt.data.scaling import Scaling
from saropt.errors import DatasetNotFoundError, InputError

LAYOUT = "SAR_DIR/<name>.tif with OPT_DIR/<name>.tif, or a CSV with sar_path,opt_path columns"


@dataclass(frozen=True)
class GeoTiffPair:
    """One pair: its SAR file(s) and optical file(s); several files per side are stacked in order.

    Attributes:
        id: unique id.
        sar: SAR file paths.
        opt: optical file paths.
        scene: scene/group name (``""`` when unknown).
    """

    id: str
    sar: tuple[str, ...]
    opt: tuple[str, ...]
    scene: str = ""


def _band_name(path: str, i: int, n_files: int) -> str:
    stem = Path(path).stem
    return stem.rsplit("_", 1)[-1] if n_files > 1 and "_" in stem else f"band{i + 1}"


class GeoTiffPairs(PairDataset):
    """SAR-optical pairs stored as GeoTIFF: one multi-band file per side, or one file per band.

    Use :meth:`from_folders` (same file name in a SAR and an optical folder, e.g. the ``geotiff/{sar,opt}``
    folders of a saropt dataset), :meth:`from_csv` (``sar_path``, ``opt_path`` columns; ``;`` separates
    several files of one side) or pass :class:`GeoTiffPair` objects (e.g. BigEarthNet's per-band files).

    Bands and dtypes: every band of every file is read (or the 1-based ``sar_bands``/``opt_bands`` of each
    file) and stacked. Files of one side with a different size (e.g. a 60 m Sentinel-2 band beside 10 m bands)
    are resampled bilinearly onto the first file's grid. Scaling: ``clip((v - lo) / (hi - lo), 0, 1)`` with
    ``sar_range``/``opt_range``; by default 8-bit -> /255, 16-bit -> /65535, float -> unchanged (NaN -> 0).
    For Sentinel-1 dB use ``sar_range=(-25, 0)``; for Sentinel-2 reflectance ``opt_range=(0, 10000)``.

    ``meta``: ``id``, ``scene``, ``bounds`` and ``crs`` of the first SAR file when ``georef`` (default).

    Args:
        pairs: the pairs.
        sar_bands: 1-based bands read from each SAR file (default all).
        opt_bands: 1-based bands read from each optical file (default all).
        sar_range: raw ``(low, high)`` mapped to [0, 1] (default from the dtype).
        opt_range: raw ``(low, high)`` mapped to [0, 1] (default from the dtype).
        georef: record bounds/CRS (opens each SAR file once at construction).
        transforms: callable applied to each sample dict.
        skip_corrupt: skip undecodable pairs with a warning instead of raising.

    Raises:
        DatasetNotFoundError: no pairs, or a listed file is missing.
    """

    name: ClassVar[str] = "geotiff"

    def __init__(
        self,
        pairs: Sequence[GeoTiffPair],
        *,
        sar_bands: Sequence[int] | None = None,
        opt_bands: Sequence[int] | None = None,
        sar_range: tuple[float, float] | None = None,
        opt_range: tuple[float, float] | None = None,
        georef: bool = True,
        transforms: Transform | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        if not pairs:
            raise DatasetNotFoundError(f"GeoTIFF pairs: no pairs given; expected layout: {LAYOUT}")
        missing = [f for p in pairs for f in p.sar + p.opt if not os.path.exists(f)]
        if missing:
            raise DatasetNotFoundError(missing_message("GeoTIFF pairs", "files", missing, LAYOUT))
        self.sar_index = list(sar_bands) if sar_bands is not None else None
        self.opt_index = list(opt_bands) if opt_bands is not None else None
        records = [
            PairRecord(id=p.id, scene=p.scene, sar=tuple(map(str, p.sar)), opt=tuple(map(str, p.opt)))
            for p in pairs
        ]
        if georef:
            recs = []
            for r in records:
                bounds, crs = raster_georef(r.sar[0])
                recs.append(replace(r, bounds=bounds, crs=crs))
            records = recs
        super().__init__(records, transforms=transforms, skip_corrupt=skip_corrupt)
        first = records[0]
        sar0 = self._read_side(first.sar, self.sar_index)
        opt0 = self._read_side(first.opt, self.opt_index)
        self.sar_scaling = (
            Scaling((sar_range[0],), (sar_range[1],)) if sar_range else Scaling.for_dtype(sar0.dtype)
        )
        self.opt_scaling = (
            Scaling((opt_range[0],), (opt_range[1],)) if opt_range else Scaling.for_dtype(opt0.dtype)
        )
        self.sar_bands = self._names(first.sar, sar0.shape[0], self.sar_index)
        self.opt_bands = self._names(first.opt, opt0.shape[0], self.opt_index)

    @staticmethod
    def _names(files: Sequence[str], n: int, bands: Sequence[int] | None = None) -> tuple[str, ...]:
        """Band names: the file's band descriptions, else the per-band file suffix (``..._VV.tif``)."""
        if len(files) == n and n > 1:
            return tuple(_band_name(f, i, len(files)) for i, f in enumerate(files))
        if len(files) == 1:
            import rasterio

            with rasterio.open(files[0]) as src:
                desc = src.descriptions
            picked = [desc[b - 1] for b in bands] if bands is not None else list(desc)
            if len(picked) == n and all(picked):
                return tuple(str(d) for d in picked)
        return tuple(f"band{i + 1}" for i in range(n))

    @classmethod
    def from_folders(
        cls,
        sar_dir: str | os.PathLike[str],
        opt_dir: str | os.PathLike[str],
        **kwargs: Any,
    ) -> "GeoTiffPairs":
        """Pairs of ``.tif`` files with the same name in two folders.

        Raises:
            DatasetNotFoundError: a folder is missing, empty, or a file has no partner.
        """
        sdir = require_dir(Path(sar_dir), "GeoTIFF pairs", LAYOUT)
        odir = require_dir(Path(opt_dir), "GeoTIFF pairs", LAYOUT)
        sar = list_files(sdir, (".tif", ".tiff"))
        opt = list_files(odir, (".tif", ".tiff"))
        if not sar:
            raise DatasetNotFoundError(f"GeoTIFF pairs: no .tif files in {sdir}; expected layout: {LAYOUT}")
        lonely = sorted(set(sar) ^ set(opt))
        if lonely:
            raise DatasetNotFoundError(missing_message("GeoTIFF pairs", "partners", lonely, LAYOUT))
        pairs = [GeoTiffPair(k, (str(sar[k]),), (str(opt[k]),)) for k in sorted(sar, key=natural_key)]
        return cls(pairs, **kwargs)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        sar_col: str = "sar_path",
        opt_col: str = "opt_path",
        **kwargs: Any,
    ) -> "GeoTiffPairs":
        """Pairs listed in a CSV (paths relative to the CSV's folder; ``;`` separates several files).

        Optional columns ``id`` and ``scene`` name the pairs.

        Raises:
            DatasetNotFoundError: the CSV is missing.
            InputError: a required column is missing.
        """
        p = Path(path)
        if not p.is_file():
            raise DatasetNotFoundError(f"GeoTIFF pairs: CSV {p} does not exist; expected layout: {LAYOUT}")
        with p.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        if rows and (sar_col not in rows[0] or opt_col not in rows[0]):
            raise InputError(f"{p} needs columns {sar_col!r} and {opt_col!r}; it has {', '.join(rows[0])}")

        def files(cell: str) -> tuple[str, ...]:
            return tuple(str(p.parent / f.strip()) for f in cell.split(";") if f.strip())

        pairs = [
            GeoTiffPair(
                r.get("id") or Path(files(r[sar_col])[0]).stem,
                files(r[sar_col]),
                files(r[opt_col]),
                r.get("scene") or "",
            )
            for r in rows
        ]
        return cls(pairs, **kwargs)

    @staticmethod
    def _read_side(files: Sequence[str], bands: Sequence[int] | None) -> np.ndarray:
        arrays = []
        shape: tuple[int, int] | None = None
        for f in files:
            a = read_raster(f, bands, out_shape=shape)
            if shape is None:
                shape = (int(a.shape[1]), int(a.shape[2]))
            arrays.append(a)
        if len(arrays) == 1:
            return arrays[0]
        dtype = np.result_type(*[a.dtype for a in arrays])
        return np.concatenate([a.astype(dtype, copy=False) for a in arrays])

    def _read_sar(self, rec: PairRecord) -> np.ndarray:
        return self._read_side(rec.sar, self.sar_index)

    def _read_opt(self, rec: PairRecord) -> np.ndarray:
        return self._read_side(rec.opt, self.opt_index)
