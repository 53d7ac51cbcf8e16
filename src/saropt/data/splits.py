"""Train/val/test splits without leakage, and frozen split files.

What each dataset offers:

* **SEN12MS**: the official hold-out scenes (``splits/SEN12MS_holdOutScenes.txt`` of the SEN12MS toolbox,
  26 scenes, about 10% of the patches, chosen to keep the spatial and seasonal distribution). Its
  ``test_list.txt`` (read by torchgeo) lists the patches of these scenes. ``split="test"`` is the
  hold-out, ``"train"`` the rest.
* **SEN1-2**: no official split. Patches of one scene overlap their neighbours, so a random split leaks; split
  whole scenes (``method="scene"``: group = ``<season>_<scene>``).
* **QXS-SAROPT**: no official split and no coordinates: the release is ``<n>.png`` pairs, and the file number
  is the only key (the three cities and the patch positions are not recorded). Patches were cut with 20%
  overlap, so neighbours share pixels and a random split leaks. The only grouping possible is by blocks of
  consecutive file numbers (``method="numbers"``), which keeps neighbours together *if* the numbering follows
  the cutting order; that cannot be verified from the release, so treat QXS-SAROPT test figures as optimistic.
* **OSdataset**: its own ``train``/``test`` folders.
* **saropt datasets**: the ``split`` column written by ``saropt build`` (spatial blocks with a ``buffer`` of
  patches overlapping another split, or whole scenes).
* Anything with windows or bounds: :func:`spatial_block_split` (blocks per scene, overlap buffer).

A split can be frozen into a JSON file (:class:`SplitFile`) listing every pair id per split with a SHA-256 of
the assignment; readers take ``split_file=`` and refuse a file whose hash does not match its content.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from saropt.errors import CorruptFileError, DatasetNotFoundError, InputError

if TYPE_CHECKING:
    from saropt.data.base import PairDataset, PairRecord

#: ``splits/SEN12MS_holdOutScenes.txt`` of the SEN12MS toolbox (schmitt-muc/SEN12MS): ``<season>/s1_<scene>``
SEN12MS_HOLDOUT_SCENES: tuple[str, ...] = (
    "ROIs1158_spring/s1_63",
    "ROIs1158_spring/s1_146",
    "ROIs1158_spring/s1_97",
    "ROIs1158_spring/s1_124",
    "ROIs1158_spring/s1_15",
    "ROIs1158_spring/s1_17",
    "ROIs1868_summer/s1_43",
    "ROIs1868_summer/s1_131",
    "ROIs1868_summer/s1_19",
    "ROIs1868_summer/s1_104",
    "ROIs1868_summer/s1_72",
    "ROIs1868_summer/s1_15",
    "ROIs1868_summer/s1_79",
    "ROIs1970_fall/s1_120",
    "ROIs1970_fall/s1_39",
    "ROIs1970_fall/s1_144",
    "ROIs1970_fall/s1_35",
    "ROIs1970_fall/s1_61",
    "ROIs1970_fall/s1_47",
    "ROIs1970_fall/s1_30",
    "ROIs1970_fall/s1_141",
    "ROIs2017_winter/s1_64",
    "ROIs2017_winter/s1_146",
    "ROIs2017_winter/s1_32",
    "ROIs2017_winter/s1_107",
    "ROIs2017_winter/s1_135",
)

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
#: when two splits overlap, the patch of the lower-priority split goes to ``buffer``
_PRIORITY = {"test": 0, "val": 1, "train": 2}
SPLIT_FILE_FORMAT = "saropt-split"


def sen12ms_holdout_scenes() -> frozenset[str]:
    """The official SEN12MS hold-out scenes as saropt scene ids (``"ROIs1158_spring_63"``)."""
    out = set()
    for s in SEN12MS_HOLDOUT_SCENES:
        season, folder = s.split("/")
        out.add(f"{season}_{folder.split('_')[1]}")
    return frozenset(out)


# ------------------------------------------------------------------------------------------------------------
# Group splits
# ------------------------------------------------------------------------------------------------------------


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    fr = {str(k): float(v) for k, v in fractions.items()}
    if not fr or any(v < 0 for v in fr.values()) or sum(fr.values()) <= 0:
        raise InputError(f"split fractions must be non-negative and not all zero, got {fractions}")
    if "buffer" in fr or "" in fr:
        raise InputError("'buffer' and '' are reserved split names")
    total = sum(fr.values())
    return {k: v / total for k, v in fr.items()}


def group_split(
    groups: Sequence[str],
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> list[str]:
    """Assign whole groups to splits so that pair counts approach ``fractions``.

    Groups are visited in a seeded random order and each goes to the split furthest below its target, so the
    result depends only on the group names, their sizes and ``seed``.

    Args:
        groups: the group of each pair (scene, block...).
        fractions: split name -> fraction of pairs (normalised to sum 1).
        seed: random seed.

    Returns:
        The split of each pair, aligned with ``groups``.

    Raises:
        InputError: invalid fractions.
    """
    fr = _check_fractions(fractions)
    names, inverse, counts = np.unique(
        np.asarray(groups, dtype=object).astype(str), return_inverse=True, return_counts=True
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    total = float(len(groups))
    have = {k: 0 for k in fr}
    assign = np.empty(len(names), dtype=object)
    for g in order:
        best = max(fr, key=lambda k: (fr[k] * total - have[k], -list(fr).index(k)))
        assign[g] = best
        have[best] += int(counts[g])
    return [str(assign[i]) for i in inverse]


def number_block_groups(ids: Sequence[str], block: int = 500) -> list[str]:
    """Groups of consecutive file numbers (QXS-SAROPT): id ``"1234"`` with ``block=500`` -> ``"n2"``.

    Raises:
        InputError: an id has no number, or ``block`` < 1.
    """
    if block < 1:
        raise InputError(f"block must be >= 1, got {block}")
    out = []
    for i in ids:
        digits = "".join(ch for ch in str(i) if ch.isdigit())
        if not digits:
            raise InputError(f"id {i!r} has no file number to group by")
        out.append(f"n{int(digits) // block}")
    return out


def _box(rec: "PairRecord") -> tuple[float, float, float, float] | None:
    if rec.window is not None:
        c, r, w, h = rec.window
        return (float(c), float(r), float(c + w), float(r + h))
    if rec.bounds is not None:
        return tuple(float(v) for v in rec.bounds)  # type: ignore[return-value]
    return None


def spatial_block_split(
    records: Sequence["PairRecord"],
    block_size: float,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    buffer: bool = True,
) -> list[str]:
    """Split by square spatial blocks per scene; patches overlapping another split's patch become ``buffer``.

    Each pair's block is the one holding its footprint's centre (``window`` in pixels when known, else
    ``bounds`` in map units: ``block_size`` is in those units). Blocks are assigned with :func:`group_split`.
    With ``buffer``, a pair whose footprint overlaps a pair of a higher-priority split (test > val > train) in
    the same scene is labelled ``"buffer"``; keep buffer pairs out of training and evaluation.

    Convention:
        ``window``: x = column, y = row, 0-based, pixel centres at integers; a window covers
        ``[col_off, col_off + width)``.

    Raises:
        InputError: ``block_size`` <= 0 or a record has neither window nor bounds.
    """
    if block_size <= 0:
        raise InputError(f"block_size must be positive, got {block_size}")
    boxes = []
    for rec in records:
        b = _box(rec)
        if b is None:
            raise InputError(f"pair {rec.id} has neither window nor bounds; use a scene split instead")
        boxes.append(b)
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx = np.floor((arr[:, 0] + arr[:, 2]) / 2 / block_size).astype(np.int64)
    cy = np.floor((arr[:, 1] + arr[:, 3]) / 2 / block_size).astype(np.int64)
    groups = [f"{r.scene}|{x}|{y}" for r, x, y in zip(records, cx, cy)]
    splits = group_split(groups, fractions, seed)
    if not buffer:
        return splits
    out = list(splits)
    # only pairs in neighbouring blocks can overlap (footprints are smaller than a few blocks in practice;
    # the search radius covers the largest footprint)
    span = int(np.ceil(max(np.max(arr[:, 2] - arr[:, 0]), np.max(arr[:, 3] - arr[:, 1])) / block_size)) + 1
    by_block: dict[tuple[str, int, int], list[int]] = {}
    for i, rec in enumerate(records):
        by_block.setdefault((rec.scene, int(cx[i]), int(cy[i])), []).append(i)
    for i, rec in enumerate(records):
        pi = _PRIORITY.get(splits[i], 3)
        for dx in range(-span, span + 1):
            for dy in range(-span, span + 1):
                for j in by_block.get((rec.scene, int(cx[i]) + dx, int(cy[i]) + dy), ()):
                    if splits[j] == splits[i] or _PRIORITY.get(splits[j], 3) >= pi:
                        continue
                    a, b = arr[i], arr[j]
                    if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                        out[i] = "buffer"
                        break
                if out[i] == "buffer":
                    break
            if out[i] == "buffer":
                break
    return out


# ------------------------------------------------------------------------------------------------------------
# Frozen split files
# ------------------------------------------------------------------------------------------------------------


def _assignment_hash(assignments: Mapping[str, str]) -> str:
    canon = json.dumps(sorted(assignments.items()), separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


@dataclass(frozen=True)
class SplitFile:
    """A frozen split: the split of every pair id, and how it was made.

    Attributes:
        dataset: reader name (``"sen1-2"``...).
        method: ``"scene"``, ``"block"``, ``"numbers"``, ``"official"`` or ``"random"``.
        assignments: pair id -> split name.
        params: what produced it (seed, fractions, block size...).
    """

    dataset: str
    method: str
    assignments: Mapping[str, str]
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """SHA-256 of the sorted ``(id, split)`` list; identical splits have identical hashes."""
        return _assignment_hash(self.assignments)

    def counts(self) -> dict[str, int]:
        """Pairs per split."""
        out: dict[str, int] = {}
        for s in self.assignments.values():
            out[s] = out.get(s, 0) + 1
        return dict(sorted(out.items()))

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON file (to a temporary name, then renamed) and return its path."""
        from saropt.data.layout import natural_key

        per_split: dict[str, list[str]] = {}
        for i, s in self.assignments.items():
            per_split.setdefault(s, []).append(i)
        doc = {
            "format": SPLIT_FILE_FORMAT,
            "version": 1,
            "dataset": self.dataset,
            "method": self.method,
            "params": dict(self.params),
            "counts": self.counts(),
            "sha256": self.sha256,
            "splits": {k: sorted(v, key=natural_key) for k, v in sorted(per_split.items())},
        }
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out)
        return out


def read_split_file(path: str | os.PathLike[str]) -> SplitFile:
    """Read a split file and check its hash.

    Raises:
        DatasetNotFoundError: the file does not exist.
        CorruptFileError: it is not a saropt split file, or its content does not match its ``sha256``.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(f"split file {p} does not exist")
    try:
        doc = json.loads(p.read_text())
        if doc.get("format") != SPLIT_FILE_FORMAT:
            raise ValueError("not a saropt split file")
        assignments = {str(i): str(s) for s, ids in doc["splits"].items() for i in ids}
        sf = SplitFile(str(doc["dataset"]), str(doc["method"]), assignments, dict(doc.get("params", {})))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptFileError(f"{p} is not a readable saropt split file ({exc}); regenerate it") from None
    if sf.sha256 != doc.get("sha256"):
        raise CorruptFileError(
            f"{p}: content does not match its sha256 (edited or truncated); "
            "regenerate it or restore the original"
        )
    return sf


def make_split(
    dataset: "PairDataset",
    method: str = "scene",
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    block_size: float | None = None,
    number_block: int = 500,
) -> SplitFile:
    """Make a frozen split of a dataset.

    Args:
        dataset: any reader (all its pairs are assigned).
        method: ``"official"`` (the split the dataset itself assigns), ``"scene"`` (whole scenes),
            ``"block"`` (:func:`spatial_block_split`, needs ``block_size``), ``"numbers"`` (blocks of
            ``number_block`` consecutive file numbers, for QXS-SAROPT) or ``"random"`` (leaks when patches
            overlap; for comparison only).
        fractions: split name -> fraction (not used by ``"official"``).
        seed: random seed.
        block_size: block side for ``"block"`` (pixels when windows are known, else map units).
        number_block: file numbers per group for ``"numbers"``.

    Returns:
        The split file (write it with :meth:`SplitFile.write`).

    Raises:
        InputError: unknown method, missing ``block_size``, or the dataset has no official split.
    """
    recs = dataset.records
    ids = [r.id for r in recs]
    params: dict[str, Any] = {"seed": seed, "fractions": dict(fractions)}
    if method == "official":
        splits = [r.split for r in recs]
        if not any(splits):
            raise InputError(
                f"{dataset.name} has no official split; use method='scene', 'block' or 'numbers'"
            )
        params = {}
    elif method == "scene":
        if not any(r.scene for r in recs):
            raise InputError(f"{dataset.name} records no scenes; use method='numbers' or 'block'")
        splits = group_split([r.scene for r in recs], fractions, seed)
    elif method == "block":
        if block_size is None:
            raise InputError("method='block' needs block_size")
        params["block_size"] = block_size
        splits = spatial_block_split(recs, block_size, fractions, seed)
    elif method == "numbers":
        params["number_block"] = number_block
        splits = group_split(number_block_groups(ids, number_block), fractions, seed)
    elif method == "random":
        splits = group_split(ids, fractions, seed)
    else:
        raise InputError(f"unknown split method {method!r}; choose official, scene, block, numbers or random")
    if len(set(ids)) != len(ids):
        raise InputError(f"{dataset.name}: pair ids are not unique; cannot freeze a split")
    return SplitFile(dataset.name, method, dict(zip(ids, splits)), params)


def select_split(
    records: Sequence["PairRecord"],
    split: str | None,
    split_file: str | os.PathLike[str] | SplitFile | None = None,
    dataset: str = "dataset",
) -> list["PairRecord"]:
    """The records of one split (``None``/``"all"``: all), optionally re-labelled by a split file.

    Raises:
        InputError: the split does not exist in this dataset, or the split file does not cover every pair.
    """
    recs = list(records)
    if split_file is not None:
        sf = split_file if isinstance(split_file, SplitFile) else read_split_file(split_file)
        missing = [r.id for r in recs if r.id not in sf.assignments]
        if missing:
            raise InputError(
                f"split file ({sf.dataset}, {len(sf.assignments)} ids) does not list {len(missing)} of the "
                f"{len(recs)} pairs (e.g. {missing[0]!r}); it was made for another dataset or version"
            )
        recs = [replace(r, split=sf.assignments[r.id]) for r in recs]
    if split is None or split == "all":
        return recs
    available = sorted({r.split for r in recs if r.split})
    if split not in available:
        hint = (
            f"available: {', '.join(available)}"
            if available
            else "this dataset has no split; pass split=None"
        )
        raise InputError(f"{dataset}: no pairs in split {split!r} ({hint}, or 'all')")
    return [r for r in recs if r.split == split]
