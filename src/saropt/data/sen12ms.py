"""SEN12MS reader."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from saropt.data.base import PairDataset, PairRecord, Transform
from saropt.data.decode import raster_georef, read_raster
from saropt.data.layout import list_files, missing_message, natural_key, require_dir
from saropt.data.scaling import Scaling
from saropt.data.sen12 import _PATCH, resolve_seasons, scene_dirs, scene_filter
from saropt.data.splits import SplitFile, select_split, sen12ms_holdout_scenes
from saropt.errors import DatasetNotFoundError, InputError

S1_BANDS: tuple[str, ...] = ("VV", "VH")
S2_BANDS: tuple[str, ...] = (
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B09",
    "B10",
    "B11",
    "B12",
)
LC_BANDS: tuple[str, ...] = ("IGBP", "LCCS_LC", "LCCS_LU", "LCCS_SH")

LAYOUT = (
    "ROOT/ROIs1158_spring/{s1_<k>,s2_<k>,lc_<k>}/ROIs1158_spring_{s1,s2,lc}_<k>_p<j>.tif "
    "(and ROIs1868_summer, ROIs1970_fall, ROIs2017_winter)"
)


def _band_index(names: Sequence[str], all_names: Sequence[str], what: str) -> list[int]:
    """1-based band indexes of band names (``"B4"`` and ``"B04"`` both accepted)."""
    out = []
    for n in [names] if isinstance(names, str) else names:
        key = str(n).upper()
        if key.startswith("B") and len(key) == 2:
            key = f"B0{key[1]}"
        if key not in all_names:
            raise InputError(f"unknown {what} band {n!r}; choose from {', '.join(all_names)}")
        out.append(all_names.index(key) + 1)
    if not out:
        raise InputError(f"select at least one {what} band")
    return out


class SEN12MS(PairDataset):
    """SEN12MS: 180,662 Sentinel-1 / Sentinel-2 / MODIS land-cover triplets, 256x256 at 10 m, 4 seasons.

    Schmitt, Hughes, Qiu, Zhu, "SEN12MS - a curated dataset of georeferenced multi-spectral Sentinel-1/2
    imagery for deep learning and data fusion", ISPRS Annals IV-2/W7 (2019),
    https://mediatum.ub.tum.de/1474000.

    Layout as released (the season tarballs unpacked side by side)::

        ROIs1158_spring/s1_<k>/ROIs1158_spring_s1_<k>_p<j>.tif   VV, VH: float32 sigma0 dB (NaN possible)
        ROIs1158_spring/s2_<k>/ROIs1158_spring_s2_<k>_p<j>.tif   B01..B12 with B8A, B10: uint16 (x 1e4)
        ROIs1158_spring/lc_<k>/ROIs1158_spring_lc_<k>_p<j>.tif   IGBP, LCCS LC/LU/SH: uint16 class codes

    Bands and dtypes: bands are selected by name and only those are read. ``sar`` = selected S1 bands,
    ``clip((dB - s1_range[0]) / (s1_range[1] - s1_range[0]), 0, 1)``, default range [-25, 0] dB (the
    convention of the SEN12MS-CR loaders), NaN -> 0. ``opt`` = selected S2 bands, ``clip(DN / s2_scale, 0,
    1)``, default 10000 (top-of-atmosphere reflectance). ``lc=True`` adds ``"lc"``: int64 ``(len(lc_bands),
    H, W)``, unscaled; ``lc_bands=("IGBP",)`` is what torchgeo's ``SEN12MS`` returns as ``mask``. Each
    int64 band is 0.5 MiB per 256x256 patch that DataLoader workers copy into shared memory, so ask only for
    the bands you train on. Uncompressed GeoTIFFs are read straight from their bytes
    (:mod:`saropt.data.tiff`), others with tifffile or rasterio.

    Split: the official hold-out scenes (:data:`saropt.data.splits.SEN12MS_HOLDOUT_SCENES`): ``"test"`` are
    the 26 hold-out scenes (~10% of the patches), ``"train"`` the rest; ``None``/``"all"`` keeps both.

    ``meta``: ``id`` = ``<season>_<k>_p<j>``, ``scene`` = ``<season>_<k>``, ``season``, ``patch``; ``bounds``
    and ``crs`` when ``georef=True`` (reads every file header when the dataset is opened: ~0.3 ms per pair).

    Args:
        root: folder holding the season folders.
        seasons: season folders to read; default all present.
        s1_bands: Sentinel-1 bands, from ``("VV", "VH")``.
        s2_bands: Sentinel-2 bands, e.g. ``("B04", "B03", "B02")`` (true colour, the default).
        split: ``"train"``, ``"test"`` (official hold-out), ``None``/``"all"``.
        scenes: scene numbers or ids to read; default all.
        lc: also return the land-cover map.
        lc_bands: land-cover bands, from ``("IGBP", "LCCS_LC", "LCCS_LU", "LCCS_SH")``.
        s1_range: dB range mapped to [0, 1].
        s2_scale: digital number mapped to 1.
        georef: record ``bounds``/``crs`` of every pair at open time.
        split_file: a frozen split replacing the official one.
        transforms: callable applied to each sample dict.
        skip_corrupt: skip undecodable pairs with a warning instead of raising.

    Raises:
        DatasetNotFoundError: no season folder, or a pair with a missing file.
        InputError: an unknown band, season or split.
    """

    name: ClassVar[str] = "sen12ms"

    def __init__(
        self,
        root: str | os.PathLike[str],
        seasons: Sequence[str] | str | None = None,
        s1_bands: Sequence[str] = S1_BANDS,
        s2_bands: Sequence[str] = ("B04", "B03", "B02"),
        split: str | None = "train",
        *,
        scenes: Sequence[int | str] | int | str | None = None,
        lc: bool = False,
        lc_bands: Sequence[str] = LC_BANDS,
        s1_range: tuple[float, float] = (-25.0, 0.0),
        s2_scale: float = 10000.0,
        georef: bool = False,
        split_file: str | os.PathLike[str] | SplitFile | None = None,
        transforms: Transform | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        self.root = require_dir(Path(root), "SEN12MS", LAYOUT)
        self.s1_index = _band_index(s1_bands, S1_BANDS, "Sentinel-1")
        self.s2_index = _band_index(s2_bands, S2_BANDS, "Sentinel-2")
        self.lc_index = _band_index(lc_bands, LC_BANDS, "land-cover") if lc else []
        self.sar_bands = tuple(S1_BANDS[i - 1] for i in self.s1_index)
        self.opt_bands = tuple(S2_BANDS[i - 1] for i in self.s2_index)
        self.lc_bands = tuple(LC_BANDS[i - 1] for i in self.lc_index)
        self.sar_scaling = Scaling((float(s1_range[0]),), (float(s1_range[1]),))
        self.opt_scaling = Scaling((0.0,), (float(s2_scale),))
        self.lc = lc
        self.seasons = resolve_seasons(self.root, seasons, "SEN12MS", LAYOUT)
        holdout = sen12ms_holdout_scenes()
        wanted = scene_filter(scenes)
        records: list[PairRecord] = []
        for season in self.seasons:
            for k, s1_dir in scene_dirs(self.root, season, wanted):
                split_name = "test" if f"{season}_{k}" in holdout else "train"
                records.extend(self._scene_records(season, k, s1_dir, split_name, lc))
        if not records:
            raise DatasetNotFoundError(f"SEN12MS: no pairs in {self.root}; expected layout: {LAYOUT}")
        if georef:
            records = [self._with_georef(r) for r in records]
        super().__init__(
            select_split(records, split, split_file, self.name),
            transforms=transforms,
            skip_corrupt=skip_corrupt,
        )

    @staticmethod
    def _with_georef(rec: PairRecord) -> PairRecord:
        from dataclasses import replace

        bounds, crs = raster_georef(rec.sar[0])
        return replace(rec, bounds=bounds, crs=crs)

    @staticmethod
    def _scene_records(season: str, k: int, s1_dir: Path, split: str, lc: bool) -> list[PairRecord]:
        s2_dir = s1_dir.parent / f"s2_{k}"
        lc_dir = s1_dir.parent / f"lc_{k}"
        need = [s2_dir] + ([lc_dir] if lc else [])
        for d in need:
            if not d.is_dir():
                raise DatasetNotFoundError(
                    f"SEN12MS: {d} is missing (its SAR folder {s1_dir} exists); expected layout: {LAYOUT}"
                )
        s1 = list_files(s1_dir, (".tif",))
        s2 = list_files(s2_dir, (".tif",))
        lcf = list_files(lc_dir, (".tif",)) if lc else {}
        recs = []
        missing: list[str] = []
        for s1_stem in sorted(s1, key=natural_key):
            s2_stem = s1_stem.replace("_s1_", "_s2_", 1)
            lc_stem = s1_stem.replace("_s1_", "_lc_", 1)
            if s2_stem not in s2:
                missing.append(f"{s2_dir.name}/{s2_stem}.tif")
                continue
            if lc and lc_stem not in lcf:
                missing.append(f"{lc_dir.name}/{lc_stem}.tif")
                continue
            m = _PATCH.match(s1_stem)
            j = int(m.group(4)) if m else -1
            extra: dict[str, Any] = {"season": season, "patch": j}
            if lc:
                extra["lc_path"] = str(lcf[lc_stem])
            recs.append(
                PairRecord(
                    id=f"{season}_{k}_p{j}" if m else s1_stem,
                    scene=f"{season}_{k}",
                    sar=(str(s1[s1_stem]),),
                    opt=(str(s2[s2_stem]),),
                    split=split,
                    extra=extra,
                )
            )
        orphans = set(s2) - {s.replace("_s1_", "_s2_", 1) for s in s1}
        missing += [f"{s1_dir.name}/{o.replace('_s2_', '_s1_', 1)}.tif" for o in orphans]
        if missing:
            raise DatasetNotFoundError(missing_message("SEN12MS", f"files of {season}/{k}", missing, LAYOUT))
        return recs

    def _read_sar(self, rec: PairRecord) -> np.ndarray:
        return read_raster(rec.sar[0], self.s1_index)

    def _read_opt(self, rec: PairRecord) -> np.ndarray:
        return read_raster(rec.opt[0], self.s2_index)

    def _read_extra(self, rec: PairRecord) -> dict[str, np.ndarray]:
        if not self.lc:
            return {}
        return {"lc": read_raster(rec.extra["lc_path"], self.lc_index)}

    def _extra_meta(self, rec: PairRecord) -> dict[str, object]:
        return {"season": rec.extra["season"], "patch": rec.extra["patch"]}
