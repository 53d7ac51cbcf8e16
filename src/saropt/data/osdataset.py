"""OSdataset reader."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from saropt.data.base import PairDataset, PairRecord, Transform
from saropt.data.decode import read_image
from saropt.data.layout import missing_message, natural_key, require_dir
from saropt.data.splits import SplitFile, select_split
from saropt.errors import DatasetNotFoundError, InputError

LAYOUT = "ROOT/[256|512/]{train,test}/{opt<n>.png, sar<n>.png} (same number per pair)"
_FILE = re.compile(r"^(opt|sar)(.*)$", re.IGNORECASE)
SPLITS = ("train", "val", "test")


class OSDataset(PairDataset):
    """OSdataset: GaoFen-3 / Google Earth pairs at 1 m: 2,673 of 512x512 px and 10,692 of 256x256 px.

    Xiang, Tao, Wang, You, Han, "Automatic registration of optical and SAR images via improved phase
    congruency model", IEEE JSTARS 13 (2020) (the "OS dataset").

    Layout as released: one folder per split holding both modalities, named by number::

        [256/ or 512/]train/opt<n>.png, train/sar<n>.png
        [256/ or 512/]test/opt<n>.png,  test/sar<n>.png

    ``root`` may be the folder holding ``train``/``test``, or one holding size folders (``256``, ``512``;
    choose with ``size`` when both exist: the sizes cannot be batched together).

    Bands and dtypes: ``sar`` ``(1, H, W)``; ``opt`` ``(3, H, W)`` (a grey optical PNG is repeated to three
    channels; ``opt_gray=True`` gives one luminance channel); uint8 / 255 -> float32 in [0, 1].

    ``meta``: ``id`` = ``<split>/<n>``, ``scene`` = ``""`` (not released), ``split``, ``number``.

    Args:
        root: dataset folder.
        split: ``"train"``, ``"test"`` (``"val"`` when present), ``None``/``"all"``.
        size: ``256`` or ``512`` to choose a size folder.
        opt_gray: return the optical image as one luminance channel.
        split_file: a frozen split replacing the folders' split.
        transforms: callable applied to each sample dict.
        skip_corrupt: skip undecodable pairs with a warning instead of raising.

    Raises:
        DatasetNotFoundError: no split folder, or a pair with a missing half.
        InputError: both sizes present and ``size`` not given, or an unknown split.
    """

    name: ClassVar[str] = "osdataset"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | None = "train",
        *,
        size: int | None = None,
        opt_gray: bool = False,
        split_file: str | os.PathLike[str] | SplitFile | None = None,
        transforms: Transform | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        self.root = require_dir(Path(root), "OSdataset", LAYOUT)
        self.opt_gray = opt_gray
        if opt_gray:
            self.opt_bands = ("gray",)
        base = self._base(self.root, size)
        split_dirs = [(s, base / s) for s in SPLITS if (base / s).is_dir()]
        if not split_dirs:
            raise DatasetNotFoundError(
                f"OSdataset: no train/ or test/ folder in {base}; expected layout: {LAYOUT}"
            )
        records: list[PairRecord] = []
        for name, folder in split_dirs:
            records.extend(self._split_records(name, folder))
        if not records:
            raise DatasetNotFoundError(
                f"OSdataset: no opt*/sar* PNG pairs under {base}; expected layout: {LAYOUT}"
            )
        super().__init__(
            select_split(records, split, split_file, self.name),
            transforms=transforms,
            skip_corrupt=skip_corrupt,
        )

    @staticmethod
    def _base(root: Path, size: int | None) -> Path:
        sizes = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.isdigit())
        if size is not None:
            cand = root / str(int(size))
            if cand.is_dir():
                return cand
            if any((root / s).is_dir() for s in SPLITS) and not sizes:
                return root  # a single-size copy
            raise DatasetNotFoundError(
                f"OSdataset: no {size}/ folder in {root} (found: {sizes or 'none'}); "
                f"expected layout: {LAYOUT}"
            )
        if any((root / s).is_dir() for s in SPLITS):
            return root
        if len(sizes) == 1:
            return root / sizes[0]
        if len(sizes) > 1:
            raise InputError(f"OSdataset: {root} holds sizes {', '.join(sizes)}; choose one with size=...")
        return root

    @staticmethod
    def _split_records(split: str, folder: Path) -> list[PairRecord]:
        sar: dict[str, str] = {}
        opt: dict[str, str] = {}
        for e in os.scandir(folder):
            if not (e.is_file() and e.name.lower().endswith((".png", ".jpg", ".tif"))):
                continue
            m = _FILE.match(os.path.splitext(e.name)[0])
            if m:
                (sar if m.group(1).lower() == "sar" else opt)[m.group(2)] = e.path
        only_sar, only_opt = set(sar) - set(opt), set(opt) - set(sar)
        if only_sar or only_opt:
            names = [f"opt{k}" for k in only_sar] + [f"sar{k}" for k in only_opt]
            raise DatasetNotFoundError(missing_message("OSdataset", f"files in {folder}", names, LAYOUT))
        recs = []
        for key in sorted(sar, key=natural_key):
            digits = "".join(ch for ch in key if ch.isdigit())
            recs.append(
                PairRecord(
                    id=f"{split}/{key}",
                    scene="",
                    sar=(sar[key],),
                    opt=(opt[key],),
                    split=split,
                    extra={"number": int(digits) if digits else -1},
                )
            )
        return recs

    def _read_sar(self, rec: PairRecord) -> np.ndarray:
        return read_image(rec.sar[0], channels=1)

    def _read_opt(self, rec: PairRecord) -> np.ndarray:
        return read_image(rec.opt[0], channels=1 if self.opt_gray else 3)

    def _extra_meta(self, rec: PairRecord) -> dict[str, object]:
        return {"number": rec.extra["number"]}
