"""Train/val/test splits without leakage between overlapping patches.

Patches cut with overlap share pixels with their neighbours; if neighbours land in different splits, the test
set contains pixels the model was trained on. Three methods:

* ``"block"`` (default): the scene is divided into square blocks of ``block_size`` SAR pixels (default 4 patch
  sizes, e.g. 1024 px for 256 px patches, halved down to 2 patch sizes while fewer than 12 blocks hold kept
  patches, so that every scene contributes to every split); a patch belongs to
  the block containing its centre. Blocks (per scene) are shuffled with the seed and filled greedily into the
  splits by patch count. Then the buffer rule: wherever two kept patches of different splits overlap, one of
  them becomes ``"buffer"`` and belongs to no split, taken from the split furthest above its target share
  (a greedy vertex cover, see ``_buffer``). Afterwards no two overlapping patches of one scene sit in different
  splits, and the shares of the remaining patches stay near the targets. The price grows with the overlap and
  shrinks with the block size: at 20% overlap (stride 205 of 256) about 20% of an 8000 px scene's patches
  become buffer with 4-patch blocks (train 70%, val 15%, test 15% of the rest); fewer with larger blocks;
  none without overlap.
* ``"scene"``: whole groups (scene pairs) go to one split each; no two scenes share pixels by assumption, so no
  buffer. With fewer scenes than non-empty splits, some splits stay empty (a WARNING says which; use
  ``"block"`` then). Splitting by scene tests generalisation to new places.
* ``"random"``: every patch draws its split independently. Overlapping patches leak across splits; a WARNING
  says so. Only for comparison with published random splits.

Fractions are met as closely as whole blocks (or scenes) allow; the achieved fractions are logged.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from saropt.errors import InputError
from saropt.io.windows import Window

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
BUFFER = "buffer"
METHODS = ("block", "scene", "random")
#: label of patches that are not kept (rejected by a quality filter)
NOT_KEPT = ""


def _check_inputs(
    groups: Sequence[str],
    windows: Sequence[Window],
    keep: Sequence[bool],
    method: str,
    fractions: Sequence[float],
) -> tuple[float, float, float]:
    if not (len(groups) == len(windows) == len(keep)):
        raise InputError(
            f"groups ({len(groups)}), windows ({len(windows)}) and keep ({len(keep)}) must have the same length"
        )
    if method not in METHODS:
        raise InputError(f"split method must be one of {list(METHODS)}, got {method!r}")
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"split fractions must be three numbers (train, val, test), got {fractions!r}"
        ) from exc
    if (
        len(fr) != 3
        or any(not math.isfinite(f) or f < 0 for f in fr)
        or not math.isclose(sum(fr), 1.0, abs_tol=1e-6)
    ):
        raise InputError(
            f"split fractions must be three non-negative numbers summing to 1, got {fractions!r}"
        )
    return fr  # type: ignore[return-value]


def _greedy_fill(units: list[tuple[object, int]], fractions: tuple[float, float, float]) -> dict[object, int]:
    """Assign units (key, patch count), in the given order, to the split furthest below its target share."""
    total = sum(n for _, n in units)
    targets = [f * total for f in fractions]
    filled = [0.0, 0.0, 0.0]
    out: dict[object, int] = {}
    for key, n in units:
        best, best_need = 0, -math.inf
        for s in range(3):
            if targets[s] <= 0:
                continue
            need = (targets[s] - filled[s]) / targets[s]  # relative deficit
            if need > best_need:
                best, best_need = s, need
        out[key] = best
        filled[best] += n
    return out


def _buffer(
    labels: list[str],
    groups: Sequence[str],
    windows: Sequence[Window],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> None:
    """Turn into ``buffer`` enough patches that no two overlapping patches sit in different splits, in place.

    Every overlap between patches of different splits is a conflict; one side of each must go. Patches are
    buffered one at a time, always from the split that is furthest above its target share (counts over
    ``fractions``), and within it the patch with the most remaining conflicts, until none are left. A greedy
    vertex cover: it keeps more patches than dropping one side of every conflict, and keeps the split shares
    close to the targets on small scenes, where the buffer is a large part of the grid.

    Overlaps are found with a grid hash: a window can only overlap windows whose top-left corner lies in the
    same or a neighbouring cell when cells are as large as the largest window.
    """
    order = {name: i for i, name in enumerate(SPLITS)}
    idx = [i for i, lab in enumerate(labels) if lab in order]
    if not idx:
        return
    cell = max(max(windows[i].width, windows[i].height) for i in idx) or 1
    grid: dict[tuple[str, int, int], list[int]] = defaultdict(list)
    for i in idx:
        w = windows[i]
        grid[(groups[i], w.col_off // cell, w.row_off // cell)].append(i)
    conflicts: dict[int, set[int]] = defaultdict(set)
    for i in idx:
        w = windows[i]
        cx, cy = w.col_off // cell, w.row_off // cell
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for j in grid.get((groups[i], cx + dx, cy + dy), ()):
                    if j > i and labels[j] != labels[i] and w.intersects(windows[j]):
                        conflicts[i].add(j)
                        conflicts[j].add(i)
    if not conflicts:
        return
    counts = Counter(labels[i] for i in idx)
    # Ties are broken by position, not by input order, so the result does not depend on how patches are listed.
    rank = {i: r for r, i in enumerate(sorted(idx, key=lambda i: (str(groups[i]), windows[i])))}
    # Per split, a max-heap of (-conflicts, rank, patch); entries go stale when a patch's conflicts change.
    heaps: dict[str, list[tuple[int, int, int]]] = {name: [] for name in SPLITS}
    for i, nbrs in conflicts.items():
        heapq.heappush(heaps[labels[i]], (-len(nbrs), rank[i], i))
    target = {name: max(f, 1e-9) for name, f in zip(SPLITS, fractions)}

    def valid_top(name: str) -> bool:
        heap = heaps[name]
        while heap:
            neg, _, k = heap[0]
            if labels[k] == name and conflicts.get(k) and -neg == len(conflicts[k]):
                return True
            heapq.heappop(heap)
        return False

    while True:
        live = [name for name in SPLITS if valid_top(name)]
        if not live:
            break
        name = max(live, key=lambda n: (counts[n] / target[n], -order[n]))
        _, _, k = heapq.heappop(heaps[name])
        labels[k] = BUFFER
        counts[name] -= 1
        for j in conflicts.pop(k):
            conflicts[j].discard(k)
            if conflicts[j]:
                heapq.heappush(heaps[labels[j]], (-len(conflicts[j]), rank[j], j))


def assign_splits(
    groups: Sequence[str],
    windows: Sequence[Window],
    keep: Sequence[bool],
    *,
    method: str = "block",
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    block_size: int | None = None,
    seed: int = 0,
    scene_splits: Mapping[str, str] | None = None,
) -> list[str]:
    """Assign every kept patch to ``"train"``, ``"val"``, ``"test"`` or ``"buffer"``.

    Deterministic: the same inputs and seed give the same labels; for ``"block"`` and ``"scene"`` a patch's
    label does not depend on the order of the patches either.

    Convention:
        ``windows`` are SAR pixel windows (x = column, y = row, 0-based, pixel centres at integer coordinates)
        in the scene of the patch's group. A patch's block is the block containing its centre pixel:
        ``(col_off + width // 2) // block_size`` (and likewise for rows).

    Args:
        groups: group (scene pair) id of each patch.
        windows: SAR window of each patch.
        keep: whether each patch is kept (passed every quality filter); others get ``""``.
        method: ``"block"``, ``"scene"`` or ``"random"`` (see the module docstring).
        fractions: train, val, test shares of the kept patches (non-negative, sum 1).
        block_size: block side in SAR pixels for ``"block"``; ``None`` = 4 x the largest patch side, halved
            (down to 2 x) while fewer than 12 blocks hold kept patches.
        seed: seed of the shuffle (blocks, scenes) or of the draws (random).
        scene_splits: ``"scene"`` only: the split of every group, instead of a seeded draw.

    Returns:
        One label per patch: ``"train"``, ``"val"``, ``"test"``, ``"buffer"`` (kept, but overlaps a patch of
        another split; in no split) or ``""`` (not kept).

    Raises:
        InputError: for sequences of different lengths, an unknown method, fractions that are not three
            non-negative numbers summing to 1, a non-positive block size, or a group with kept patches missing
            from ``scene_splits``.
    """
    fr = _check_inputs(groups, windows, keep, method, fractions)
    labels = [NOT_KEPT] * len(groups)
    kept = [i for i, k in enumerate(keep) if k]
    if not kept:
        return labels
    rng = np.random.default_rng(seed)

    if method == "random":
        logger.warning(
            "random split: overlapping patches of one scene land in different splits and leak pixels between "
            "train and test; use method 'block' (spatial blocks with a buffer) or 'scene' for honest results"
        )
        draws = rng.random(len(kept))
        edges = np.cumsum(fr)
        for i, u in zip(kept, draws):
            labels[i] = SPLITS[min(int(np.searchsorted(edges, u, side="right")), 2)]
        _log_result(labels, method)
        return labels

    if method == "scene":
        counts = Counter(str(groups[i]) for i in kept)
        keys = sorted(counts)
        if scene_splits:
            missing = [k for k in keys if k not in scene_splits]
            if missing:
                raise InputError(
                    f"scenes {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} have kept patches but "
                    "no split in the given scene splits"
                )
            assignment: dict[object, int] = {k: SPLITS.index(scene_splits[k]) for k in keys}
        else:
            units = [(keys[p], counts[keys[p]]) for p in rng.permutation(len(keys))]
            assignment = _greedy_fill(units, fr)
        for i in kept:
            labels[i] = SPLITS[assignment[str(groups[i])]]
        wanted = [s for s, f in zip(SPLITS, fr) if f > 0]
        empty = [s for s in wanted if s not in set(labels)]
        if empty:
            logger.warning(
                "scene split: %d scene(s) for %d non-empty splits; %s stay empty. Use method 'block' to split "
                "within scenes",
                len(keys),
                len(wanted),
                ", ".join(empty),
            )
        _log_result(labels, method)
        return labels

    # method == "block"
    if block_size is None:
        block_size = _default_block_size(kept, groups, windows)
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size <= 0:
        raise InputError(f"split block size must be a positive number of SAR pixels, got {block_size!r}")
    block_of: dict[int, tuple[str, int, int]] = {}
    for i in kept:
        w = windows[i]
        # Centre pixel: the pixel containing the continuous centre col_off + (width - 1) / 2.
        cx = w.col_off + w.width // 2
        cy = w.row_off + w.height // 2
        block_of[i] = (str(groups[i]), cx // block_size, cy // block_size)
    block_counts = Counter(block_of.values())
    block_keys = sorted(block_counts)
    block_units: list[tuple[object, int]] = [
        (block_keys[p], block_counts[block_keys[p]]) for p in rng.permutation(len(block_keys))
    ]
    block_assignment = _greedy_fill(block_units, fr)
    for i in kept:
        labels[i] = SPLITS[block_assignment[block_of[i]]]
    _buffer(labels, groups, windows, fr)
    _log_result(labels, method)
    return labels


def _default_block_size(kept: Sequence[int], groups: Sequence[str], windows: Sequence[Window]) -> int:
    """Four patch sizes, halved (down to two patch sizes) while fewer than 12 blocks hold kept patches.

    Larger blocks lose fewer patches to the buffer (about 18% at 4x, 8% at 8x the patch size for 20% overlap);
    smaller blocks let a small scene reach the requested fractions at all.
    """
    patch = max(max(windows[i].width, windows[i].height) for i in kept)
    block = 4 * patch
    while block > 2 * patch:
        n_blocks = len(
            {
                (str(groups[i]), (windows[i].col_off + windows[i].width // 2) // block,
                 (windows[i].row_off + windows[i].height // 2) // block)
                for i in kept
            }
        )
        if n_blocks >= 12:
            break
        block = max(2 * patch, block // 2)
    return block


def _log_result(labels: list[str], method: str) -> None:
    summary = split_summary(labels)
    total = sum(summary[s] for s in SPLITS) + summary[BUFFER]
    if total:
        logger.info(
            "%s split: train %d (%.1f%%), val %d (%.1f%%), test %d (%.1f%%), buffer %d",
            method,
            summary["train"],
            100.0 * summary["train"] / total,
            summary["val"],
            100.0 * summary["val"] / total,
            summary["test"],
            100.0 * summary["test"] / total,
            summary[BUFFER],
        )


def split_summary(splits: Sequence[str]) -> dict[str, int]:
    """Counts per label: ``train``, ``val``, ``test``, ``buffer`` and ``rejected`` (the ``""`` labels).

    Args:
        splits: labels from :func:`assign_splits`.

    Returns:
        A dict with exactly those five keys.

    Raises:
        InputError: for an unknown label.
    """
    counts = Counter(splits)
    unknown = set(counts) - set(SPLITS) - {BUFFER, NOT_KEPT}
    if unknown:
        raise InputError(f"unknown split labels {sorted(unknown)}; expected {list(SPLITS) + [BUFFER, '']}")
    out = {s: counts.get(s, 0) for s in SPLITS}
    out[BUFFER] = counts.get(BUFFER, 0)
    out["rejected"] = counts.get(NOT_KEPT, 0)
    return out
