"""SEN1-2 reader, and the season/scene folder walk it shares with SEN12MS."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar, Iterable, Sequence

import numpy as np

from saropt.data.base import PairDataset, PairRecord, Transform
from saropt.data.decode import read_image
from saropt.data.layout import list_files, missing_message, natural_key, require_dir
from saropt.data.splits import SplitFile, select_split
from saropt.errors import DatasetNotFoundError, InputError

#: the four season folders of SEN1-2 and SEN12MS
SEASONS: tuple[str, ...] = ("ROIs1158_spring", "ROIs1868_summer", "ROIs1970_fall", "ROIs2017_winter")
_SCENE_DIR = re.compile(r"^s1_(\d+)$")
_PATCH = re.compile(r"^(ROIs\d+_[a-z]+)_(s1|s2|lc)_(\d+)_p(\d+)$")

LAYOUT = (
    "ROOT/ROIs1158_spring/s1_<k>/ROIs1158_spring_s1_<k>_p<j>.png with s2_<k>/ROIs1158_spring_s2_<k>_p<j>.png"
)


def resolve_seasons(root: Path, seasons: Iterable[str] | None, dataset: str, layout: str) -> list[str]:
    """Season folders to read (default: all present); ``"spring"`` and ``"ROIs1158_spring"`` both work.

    Raises:
        InputError: an unknown season name.
        DatasetNotFoundError: a requested season folder is missing, or none is present.
    """
    if seasons is None:
        present = [s for s in SEASONS if (root / s).is_dir()]
        if not present:
            raise DatasetNotFoundError(
                f"{dataset}: no season folder ({', '.join(SEASONS)}) in {root}; expected layout: {layout}"
            )
        return present
    out = []
    for s in [seasons] if isinstance(seasons, str) else seasons:
        match = [full for full in SEASONS if s.lower() in (full.lower(), full.split("_")[1])]
        if not match:
            raise InputError(
                f"unknown season {s!r}; choose from {', '.join(SEASONS)} (or spring, summer, fall, winter)"
            )
        require_dir(root / match[0], dataset, layout)
        out.append(match[0])
    return out


def scene_filter(scenes: Iterable[int | str] | None) -> tuple[set[int], set[str]] | None:
    """Normalise a ``scenes=`` argument: scene numbers (all seasons) and scene ids
    (``"ROIs1158_spring_63"``)."""
    if scenes is None:
        return None
    nums: set[int] = set()
    ids: set[str] = set()
    for s in [scenes] if isinstance(scenes, (int, str)) else scenes:
        if isinstance(s, (int, np.integer)) or (isinstance(s, str) and s.isdigit()):
            nums.add(int(s))
        else:
            ids.add(str(s).replace("/s1_", "_").replace("/", "_"))
    return nums, ids


def scene_dirs(root: Path, season: str, wanted: tuple[set[int], set[str]] | None) -> list[tuple[int, Path]]:
    """``(scene number, s1_<k> folder)`` of a season, filtered by :func:`scene_filter`."""
    out = []
    for entry in os.scandir(root / season):
        m = _SCENE_DIR.match(entry.name)
        if not (m and entry.is_dir()):
            continue
        k = int(m.group(1))
        if wanted is not None and k not in wanted[0] and f"{season}_{k}" not in wanted[1]:
            continue
        out.append((k, Path(entry.path)))
    return sorted(out)


class SEN12(PairDataset):
    """SEN1-2: 282,384 Sentinel-1 / Sentinel-2 RGB pairs, 256x256 at 10 m, from 4 seasons, worldwide.

    Schmitt, Hughes, Zhu, "The SEN1-2 dataset for deep learning in SAR-optical data fusion", ISPRS Annals IV-1
    (2018), https://mediatum.ub.tum.de/1436631.

    Layout as released::

        ROIs1158_spring/s1_<k>/ROIs1158_spring_s1_<k>_p<j>.png    Sentinel-1 VV, 8-bit grey (dB, clipped)
        ROIs1158_spring/s2_<k>/ROIs1158_spring_s2_<k>_p<j>.png    Sentinel-2 B4/B3/B2 true colour, 8-bit RGB
        ROIs1868_summer/..., ROIs1970_fall/..., ROIs2017_winter/...

    ``<k>`` is the scene, ``<j>`` the patch. Pairs are matched by ``(season, k, j)``.

    Bands and dtypes: ``sar`` ``(1, H, W)`` (a 3-channel SAR PNG gives its first channel), ``opt`` ``(3, H,
    W)`` RGB; uint8 / 255 -> float32 in [0, 1].

    ``meta``: ``id`` = ``<season>_<k>_p<j>``, ``scene`` = ``<season>_<k>``, ``season``, ``patch`` (= j). No
    coordinates are released. There is no official split: patches of a scene overlap, so split by scene
    (:func:`saropt.data.splits.make_split` ``(method="scene")``) and pass the frozen file as ``split_file``.

    Args:
        root: folder holding the season folders.
        seasons: season folders to read (``"spring"`` or ``"ROIs1158_spring"``...); default all present.
        scenes: scene numbers (every season) or scene ids ``"ROIs1158_spring_63"`` to read; default all.
        split: split to keep when ``split_file`` is given; ``None``/``"all"``: every pair.
        split_file: a frozen split.
        transforms: callable applied to each sample dict.
        skip_corrupt: skip undecodable pairs with a warning instead of raising.

    Raises:
        DatasetNotFoundError: no season folder, a scene without its ``s2_<k>`` folder, or incomplete pairs.
        InputError: an unknown season name.
    """

    name: ClassVar[str] = "sen1-2"

    def __init__(
        self,
        root: str | os.PathLike[str],
        seasons: Sequence[str] | str | None = None,
        scenes: Sequence[int | str] | int | str | None = None,
        split: str | None = None,
        *,
        split_file: str | os.PathLike[str] | SplitFile | None = None,
        transforms: Transform | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        self.root = require_dir(Path(root), "SEN1-2", LAYOUT)
        self.seasons = resolve_seasons(self.root, seasons, "SEN1-2", LAYOUT)
        wanted = scene_filter(scenes)
        records: list[PairRecord] = []
        for season in self.seasons:
            for k, s1_dir in scene_dirs(self.root, season, wanted):
                records.extend(self._scene_records(season, k, s1_dir))
        if not records:
            raise DatasetNotFoundError(
                f"SEN1-2: no pairs in {self.root} for seasons {self.seasons} and scenes {scenes!r}; "
                f"expected layout: {LAYOUT}"
            )
        super().__init__(
            select_split(records, split, split_file, self.name),
            transforms=transforms,
            skip_corrupt=skip_corrupt,
        )

    @staticmethod
    def _scene_records(season: str, k: int, s1_dir: Path) -> list[PairRecord]:
        s2_dir = s1_dir.parent / f"s2_{k}"
        if not s2_dir.is_dir():
            raise DatasetNotFoundError(
                f"SEN1-2: {s2_dir} is missing (its SAR folder {s1_dir} exists); expected layout: {LAYOUT}"
            )
        s1 = list_files(s1_dir, (".png",))
        s2 = list_files(s2_dir, (".png",))
        s1_keys = {stem.replace("_s1_", "_s2_", 1): stem for stem in s1}
        missing = set(s1_keys) - set(s2)
        if missing:
            raise DatasetNotFoundError(
                missing_message("SEN1-2", f"optical files in {s2_dir}", [f"{m}.png" for m in missing], LAYOUT)
            )
        extra = set(s2) - set(s1_keys)
        if extra:
            raise DatasetNotFoundError(
                missing_message(
                    "SEN1-2",
                    f"SAR files in {s1_dir}",
                    [f"{e.replace('_s2_', '_s1_', 1)}.png" for e in extra],
                    LAYOUT,
                )
            )
        recs = []
        for s2_stem in sorted(s1_keys, key=natural_key):
            m = _PATCH.match(s2_stem)
            j = int(m.group(4)) if m else -1
            recs.append(
                PairRecord(
                    id=f"{season}_{k}_p{j}" if m else s2_stem,
                    scene=f"{season}_{k}",
                    sar=(str(s1[s1_keys[s2_stem]]),),
                    opt=(str(s2[s2_stem]),),
                    extra={"season": season, "patch": j},
                )
            )
        return recs

    def _read_sar(self, rec: PairRecord) -> np.ndarray:
        return read_image(rec.sar[0], channels=1)

    def _read_opt(self, rec: PairRecord) -> np.ndarray:
        return read_image(rec.opt[0], channels=3)

    def _extra_meta(self, rec: PairRecord) -> dict[str, object]:
        return {"season": rec.extra["season"], "patch": rec.extra["patch"]}
