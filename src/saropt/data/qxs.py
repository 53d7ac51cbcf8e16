"""QXS-SAROPT reader."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from saropt.data.base import PairDataset, PairRecord, Transform
from saropt.data.decode import read_image
from saropt.data.layout import find_patch_dirs, list_files, missing_message, natural_key
from saropt.data.splits import SplitFile, select_split
from saropt.errors import DatasetNotFoundError

LAYOUT = "ROOT/QXSLAB_SAROPT/sar_256_oc_0.2/<n>.png with opt_256_oc_0.2/<n>.png (same file name per pair)"


class QXSSaropt(PairDataset):
    """QXS-SAROPT: 20,000 GaoFen-3 / Google Earth pairs, 256x256 px at 1 m (San Diego, Shanghai, Qingdao).

    Huang et al., "The QXS-SAROPT dataset for deep learning in SAR-optical data fusion",
    arXiv:2103.08259 (2021).

    Layout as released (``root`` may be ``QXSLAB_SAROPT`` itself or the folder holding it)::

        QXSLAB_SAROPT/sar_256_oc_0.2/<n>.png    SAR, 8-bit, one channel or three identical channels
        QXSLAB_SAROPT/opt_256_oc_0.2/<n>.png    optical, 8-bit RGB

    Pairs are matched by file name. Other ``sar_<P>_oc_<o>`` / ``opt_<P>_oc_<o>`` folder pairs (e.g. a saropt
    dataset without its index) are read the same way; pass ``patch_dirs`` to choose one when several exist.

    Bands and dtypes: ``sar`` is ``(1, H, W)`` (a 3-channel SAR PNG gives its first channel; channels that
    differ are averaged by luminance), ``opt`` is ``(3, H, W)`` RGB (``opt_gray=True`` gives ``(1, H, W)``
    luminance); both uint8 / 255 -> float32 in [0, 1].

    Splits: none are released, and the release has no coordinates: the file number is the only key. ``meta``
    has ``id`` = the file stem, ``scene`` = ``""`` (unknown), ``number`` = the file number. Freeze a
    leakage-aware split with :func:`saropt.data.splits.make_split` ``(method="numbers")`` and pass it as
    ``split_file``; see :mod:`saropt.data.splits` for why this is the only grouping possible.

    Args:
        root: dataset folder.
        split: split to keep when ``split_file`` is given; ``None``/``"all"``: every pair.
        split_file: a frozen split (path or :class:`~saropt.data.splits.SplitFile`).
        patch_dirs: ``(sar_dir, opt_dir)`` folder names instead of discovery.
        opt_gray: return the optical image as one luminance channel.
        transforms: callable applied to each sample dict.
        skip_corrupt: skip undecodable pairs with a warning instead of raising.

    Raises:
        DatasetNotFoundError: no ``sar_*_oc_*`` / ``opt_*_oc_*`` folders, or pairs with a missing half.
    """

    name: ClassVar[str] = "qxs-saropt"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | None = None,
        *,
        split_file: str | os.PathLike[str] | SplitFile | None = None,
        patch_dirs: tuple[str, str] | None = None,
        opt_gray: bool = False,
        transforms: Transform | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        self.root = Path(root)
        self.opt_gray = opt_gray
        if opt_gray:
            self.opt_bands = ("gray",)
        base = self.root
        dirs = find_patch_dirs(base, patch_dirs)
        if not dirs and (self.root / "QXSLAB_SAROPT").is_dir():
            base = self.root / "QXSLAB_SAROPT"
            dirs = find_patch_dirs(base, patch_dirs)
        if not dirs:
            raise DatasetNotFoundError(
                f"QXS-SAROPT: no sar_*_oc_* / opt_*_oc_* folders in {self.root}; expected layout: {LAYOUT}"
            )
        if len(dirs) > 1 and patch_dirs is None:
            names = ", ".join(f"({s.name}, {o.name})" for s, o in dirs)
            raise DatasetNotFoundError(
                f"QXS-SAROPT: several patch folder pairs in {base}: {names}; "
                "pass patch_dirs=(sar_dir, opt_dir)"
            )
        sar_dir, opt_dir = dirs[0]
        records = self._pair_records(sar_dir, opt_dir)
        super().__init__(
            select_split(records, split, split_file, self.name),
            transforms=transforms,
            skip_corrupt=skip_corrupt,
        )

    @staticmethod
    def _pair_records(sar_dir: Path, opt_dir: Path) -> list[PairRecord]:
        sar = list_files(sar_dir, (".png",))
        opt = list_files(opt_dir, (".png",))
        if not sar:
            raise DatasetNotFoundError(f"QXS-SAROPT: no PNG files in {sar_dir}; expected layout: {LAYOUT}")
        only_sar = set(sar) - set(opt)
        only_opt = set(opt) - set(sar)
        if only_sar:
            raise DatasetNotFoundError(
                missing_message(
                    "QXS-SAROPT", f"optical files in {opt_dir}", [f"{s}.png" for s in only_sar], LAYOUT
                )
            )
        if only_opt:
            raise DatasetNotFoundError(
                missing_message(
                    "QXS-SAROPT", f"SAR files in {sar_dir}", [f"{s}.png" for s in only_opt], LAYOUT
                )
            )
        recs = []
        for stem in sorted(sar, key=natural_key):
            digits = "".join(ch for ch in stem if ch.isdigit())
            recs.append(
                PairRecord(
                    id=stem,
                    scene="",
                    sar=(str(sar[stem]),),
                    opt=(str(opt[stem]),),
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
