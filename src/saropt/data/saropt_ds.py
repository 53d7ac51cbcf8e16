"""Reader of datasets built by ``saropt build`` (``index.parquet`` + PNG patches)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from saropt.data.base import PairDataset, PairRecord, Transform
from saropt.data.decode import read_image
from saropt.data.splits import SplitFile, select_split
from saropt.errors import CorruptFileError, DatasetNotFoundError, InputError

LAYOUT = (
    "ROOT/index.parquet with ROOT/sar_<P>_oc_<o>/<n>.png and ROOT/opt_<P>_oc_<o>/<n>.png "
    "(saropt build output)"
)
REQUIRED_COLUMNS = (
    "patch_id",
    "sar_path",
    "opt_path",
    "scene_id",
    "col_off",
    "row_off",
    "width",
    "height",
    "keep",
    "split",
)


def _read_index(root: Path) -> Any:
    try:
        from saropt.dataset.index import read_index
    except ImportError:  # pragma: no cover - the dataset package ships with saropt
        import pandas as pd

        path = root / "index.parquet"
        if not path.is_file():
            raise DatasetNotFoundError(
                f"{root} is not a saropt dataset: no index.parquet; expected layout: {LAYOUT}"
            )
        return pd.read_parquet(path)
    return read_index(root)


def _opt_float(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


_CRS_CACHE: dict[str, str] = {}


def _short_crs(crs: Any) -> str | None:
    """``"EPSG:32633"`` for a WKT CRS with an EPSG code, else the string as stored (cached per value)."""
    if not isinstance(crs, str) or not crs:
        return None
    if crs not in _CRS_CACHE:
        try:
            from rasterio.crs import CRS

            _CRS_CACHE[crs] = CRS.from_user_input(crs).to_string()
        except Exception:  # an unparsable CRS string is still informative as it is
            _CRS_CACHE[crs] = crs
    return _CRS_CACHE[crs]


class SaroptDataset(PairDataset):
    """A dataset built by ``saropt build``: the kept (optionally also rejected) pairs of ``index.parquet``.

    Layout::

        ROOT/index.parquet                     one row per pair: patch_id, sar_path, opt_path, scene_id,
                                               subregion, window, bounds, crs, quality scores, keep, split
        ROOT/sar_<P>_oc_<o>/<n>.png            kept SAR patches, 8-bit grey
        ROOT/opt_<P>_oc_<o>/<n>.png            kept optical patches, 8-bit RGB
        ROOT/rejected/{sar,opt}_<P>_oc_<o>/<n>.png   rejected pairs (``keep_only=False``)

    Bands and dtypes: ``sar`` ``(1, H, W)``, ``opt`` ``(3, H, W)``; uint8 / 255 -> float32 in [0, 1].

    ``meta``: ``id`` = ``str(patch_id)``, ``scene`` = ``scene_id``, ``subregion``, ``window`` (the patch in
    the SAR scene), ``bounds`` and ``crs`` when the scene is georeferenced, ``split``, ``keep``.

    Args:
        root: the dataset folder.
        split: ``"train"``, ``"val"``, ``"test"``, ``"buffer"`` (pairs overlapping another split), or
            ``None``/``"all"`` for every kept pair.
        keep_only: only pairs that passed the quality filters (``keep`` is true); ``False`` adds rejected
            pairs whose PNGs were written (their split is ``""``).
        split_file: a frozen split replacing the index's ``split`` column.
        transforms: callable applied to each sample dict.
        skip_corrupt: skip undecodable pairs with a warning instead of raising.

    Raises:
        DatasetNotFoundError: no ``index.parquet``, or PNG files it lists are missing.
        CorruptFileError: the index lacks required columns.
        InputError: an unknown split.

    Convention:
        ``window`` = ``(col_off, row_off, width, height)`` in the SAR scene: x = column, y = row, 0-based,
        pixel centres at integer coordinates.
    """

    name: ClassVar[str] = "saropt"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | None = "train",
        keep_only: bool = True,
        transforms: Transform | None = None,
        *,
        split_file: str | os.PathLike[str] | SplitFile | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"saropt dataset {self.root} does not exist; expected layout: {LAYOUT}"
            )
        if not (self.root / "index.parquet").is_file():
            raise DatasetNotFoundError(
                f"{self.root} is not a saropt dataset: no index.parquet (an unfinished build completes when "
                f"saropt build is run again); expected layout: {LAYOUT}"
            )
        df = _read_index(self.root)
        missing_cols = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if missing_cols:
            raise CorruptFileError(
                f"{self.root / 'index.parquet'} lacks columns {', '.join(missing_cols)}; "
                "rebuild with saropt build"
            )
        df = df[df["sar_path"].notna() & df["opt_path"].notna()]
        if keep_only:
            df = df[df["keep"].astype(bool)]
        if split not in (None, "all") and split_file is None:
            available = sorted({str(s) for s in df["split"].dropna().unique() if str(s)})
            if split not in available:
                raise InputError(
                    f"saropt dataset {self.root}: no pairs in split {split!r} "
                    f"(available: {', '.join(available) or 'none'}, or 'all')"
                )
        records = [self._record(row) for row in df.sort_values("patch_id").itertuples(index=False)]
        missing = [p for r in records for p in (r.sar[0], r.opt[0]) if not os.path.exists(p)]
        if missing:
            from saropt.data.layout import missing_message

            raise DatasetNotFoundError(
                missing_message(
                    "saropt dataset",
                    "files listed in index.parquet",
                    [os.path.relpath(p, self.root) for p in missing],
                    LAYOUT,
                )
            )
        super().__init__(
            select_split(records, split, split_file, self.name),
            transforms=transforms,
            skip_corrupt=skip_corrupt,
        )

    def _record(self, row: Any) -> PairRecord:
        bounds = None
        vals = [_opt_float(getattr(row, k, None)) for k in ("minx", "miny", "maxx", "maxy")]
        if all(v is not None for v in vals):
            bounds = tuple(vals)  # type: ignore[assignment]
        crs = _short_crs(getattr(row, "crs", None))
        split = getattr(row, "split", "")
        return PairRecord(
            id=str(int(row.patch_id)),
            scene=str(row.scene_id),
            sar=(str(self.root / row.sar_path),),
            opt=(str(self.root / row.opt_path),),
            split=str(split) if isinstance(split, str) else "",
            window=(int(row.col_off), int(row.row_off), int(row.width), int(row.height)),
            bounds=bounds,  # type: ignore[arg-type]
            crs=crs,
            extra={"subregion": str(getattr(row, "subregion", "") or ""), "keep": bool(row.keep)},
        )

    def _read_sar(self, rec: PairRecord) -> np.ndarray:
        return read_image(rec.sar[0], channels=1)

    def _read_opt(self, rec: PairRecord) -> np.ndarray:
        return read_image(rec.opt[0], channels=3)

    def _extra_meta(self, rec: PairRecord) -> dict[str, object]:
        return {"subregion": rec.extra["subregion"], "keep": rec.extra["keep"]}
