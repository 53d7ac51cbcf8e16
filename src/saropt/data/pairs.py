"""Positive and negative SAR-optical pairs for matching models (Bridge Neural Network style evaluation).

:class:`MatchingPairs` wraps any reader: item ``i < len(dataset)`` is the positive pair ``i``; the remaining
``round(negative_ratio * len(dataset))`` items are negatives: the SAR image of an anchor with the optical
image of another pair. Negatives are

* random (``hard=False``): any other pair, redrawn when its footprint overlaps the anchor's (same scene);
* hard (``hard=True``): a spatial neighbour from the same scene that does not overlap the anchor (or whose
  centre is at least ``min_offset`` away), drawn among the ``hard_k`` nearest. Neighbours come from ``window``
  (pixels) or ``bounds`` (map units). Datasets without coordinates (QXS-SAROPT, SEN1-2, OSdataset) fall back
  to *ordinal* neighbours: pairs of the same scene whose position in the dataset's natural order (file or
  patch number) differs by ``ordinal_gap[0]..ordinal_gap[1]``, which approximates spatial adjacency when
  numbering follows the cutting order (``meta["negative"] = "ordinal"``).

Anchors and partners depend only on ``(seed, epoch)``: call :meth:`MatchingPairs.set_epoch` each epoch for
fresh negatives, the same ones on every run.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
from torch.utils.data import Dataset

from saropt.data.base import PairDataset, Sample
from saropt.errors import InputError

logger = logging.getLogger(__name__)


class MatchingPairs(Dataset):  # type: ignore[type-arg]
    """Labelled SAR-optical pairs: ``{"sar", "opt", "label", "meta"}``, label 1 positive / 0 negative.

    A map-style dataset (``torch.utils.data.Dataset`` protocol: ``__len__``/``__getitem__``).

    Args:
        dataset: any :class:`~saropt.data.base.PairDataset` (all pairs of one size).
        negative_ratio: negatives per positive (1.0 = the 1:1 ratio of the BNN evaluation; 0 = positives
        only). hard: hard negatives (spatial neighbours from the same scene) instead of random ones.
        seed: random seed; with :meth:`set_epoch` it fixes every anchor and partner.
        min_offset: hard negatives: minimum centre distance (pixels, or map units with bounds); default: the
            footprints must not overlap.
        hard_k: hard negatives are drawn among this many nearest candidates.
        ordinal_gap: ``(min, max)`` order distance for ordinal hard negatives.
        transforms: applied to each assembled pair sample (default: the dataset's own ``transforms``).

    ``meta``: ``id`` (``"<sar id>|<opt id>"`` for negatives), ``sar_id``, ``opt_id``, ``scene``, ``index``,
    ``sar_index``, ``opt_index``, ``negative`` (``""`` for positives, ``"random"``, ``"hard"``,
    ``"ordinal"``),
    ``offset`` (centre distance of a negative; 0 for positives, -1 when unknown).

    Raises:
        InputError: negative ratio < 0, or fewer than 2 pairs for negatives.
    """

    def __init__(
        self,
        dataset: PairDataset,
        *,
        negative_ratio: float = 1.0,
        hard: bool = False,
        seed: int = 0,
        min_offset: float | None = None,
        hard_k: int = 8,
        ordinal_gap: tuple[int, int] = (2, 8),
        transforms: Callable[[Sample], Sample] | None = None,
    ) -> None:
        if negative_ratio < 0:
            raise InputError(f"negative_ratio must be >= 0, got {negative_ratio}")
        if hard_k < 1 or ordinal_gap[0] < 1 or ordinal_gap[1] < ordinal_gap[0]:
            raise InputError(f"bad hard_k {hard_k} or ordinal_gap {ordinal_gap}")
        self.dataset = dataset
        self.negative_ratio = float(negative_ratio)
        self.hard = hard
        self.seed = int(seed)
        self.min_offset = min_offset
        self.hard_k = int(hard_k)
        self.ordinal_gap = (int(ordinal_gap[0]), int(ordinal_gap[1]))
        self.transforms = transforms if transforms is not None else getattr(dataset, "transforms", None)
        self.n_pos = len(dataset)
        self.n_neg = int(round(self.negative_ratio * self.n_pos))
        if self.n_neg and self.n_pos < 2:
            raise InputError("negatives need at least 2 pairs in the dataset")
        self._boxes, self._scenes = self._geometry()
        self.epoch = 0
        self._plan: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    # -- planning --------------------------------------------------------------------------------------------
    def _geometry(self) -> tuple[np.ndarray | None, np.ndarray]:
        recs = self.dataset.records
        scenes = np.asarray([r.scene for r in recs], dtype=object)
        boxes = np.full((len(recs), 4), np.nan)
        for i, r in enumerate(recs):
            if r.window is not None:
                c, rr, w, h = r.window
                boxes[i] = (c, rr, c + w, rr + h)
            elif r.bounds is not None:
                boxes[i] = r.bounds
        return (boxes if np.isfinite(boxes).all() else None), scenes

    def set_epoch(self, epoch: int) -> None:
        """Choose the negatives of ``epoch`` (deterministic in ``(seed, epoch)``)."""
        self.epoch = int(epoch)
        self._plan = None

    def _overlaps(self, a: int, b: np.ndarray) -> np.ndarray:
        if self._boxes is None:
            return np.zeros(len(b), bool)
        A, B = self._boxes[a], self._boxes[b]
        same = self._scenes[b] == self._scenes[a]
        inter = (B[:, 0] < A[2]) & (A[0] < B[:, 2]) & (B[:, 1] < A[3]) & (A[1] < B[:, 3])
        return same & inter

    def plan(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(anchor, partner, kind, offset)`` arrays of this epoch's negatives.

        ``kind``: 0 random, 1 hard (spatial), 2 ordinal. ``offset``: centre distance (-1 unknown).
        """
        if self._plan is not None:
            return self._plan
        rng = np.random.default_rng([self.seed, self.epoch])
        n, m = self.n_pos, self.n_neg
        anchors = (
            np.concatenate([rng.permutation(n) for _ in range(-(-m // n))])[:m] if m else np.zeros(0, int)
        )
        partners = np.empty(m, dtype=np.int64)
        kinds = np.zeros(m, dtype=np.int8)
        if self.hard and m:
            self._plan_hard(rng, anchors, partners, kinds)
        else:
            self._plan_random(rng, anchors, partners, np.ones(m, bool))
        offsets = np.full(m, -1.0)
        if self._boxes is not None and m:
            ca = (self._boxes[anchors, :2] + self._boxes[anchors, 2:]) / 2
            cp = (self._boxes[partners, :2] + self._boxes[partners, 2:]) / 2
            same = self._scenes[anchors] == self._scenes[partners]
            offsets = np.where(same, np.hypot(*(ca - cp).T), -1.0)
        self._plan = (anchors, partners, kinds, offsets)
        return self._plan

    def _plan_random(
        self, rng: np.random.Generator, anchors: np.ndarray, partners: np.ndarray, todo: np.ndarray
    ) -> None:
        n = self.n_pos
        idx = np.flatnonzero(todo)
        draw = rng.integers(0, n - 1, size=len(idx))
        draw += draw >= anchors[idx]  # never the anchor itself
        partners[idx] = draw
        for t in idx:  # redraw partners overlapping their anchor
            for _ in range(20):
                if not self._overlaps(int(anchors[t]), partners[t : t + 1])[0]:
                    break
                p = int(rng.integers(0, n - 1))
                partners[t] = p + (p >= anchors[t])

    def _plan_hard(
        self, rng: np.random.Generator, anchors: np.ndarray, partners: np.ndarray, kinds: np.ndarray
    ) -> None:
        by_scene: dict[Any, np.ndarray] = {}
        for s in np.unique(self._scenes):
            by_scene[s] = np.flatnonzero(self._scenes == s)
        fallback = np.zeros(len(anchors), bool)
        if self._boxes is not None:
            from scipy.spatial import cKDTree

            centres = (self._boxes[:, :2] + self._boxes[:, 2:]) / 2
            trees = {s: cKDTree(centres[ix]) for s, ix in by_scene.items()}
            for t, a in enumerate(anchors):
                s = self._scenes[a]
                ix = by_scene[s]
                k = min(len(ix), self.hard_k + 64)
                _, nn = trees[s].query(centres[a], k=k)
                cand = ix[np.atleast_1d(nn)]
                cand = cand[cand != a]
                if self.min_offset is not None:
                    cand = cand[np.hypot(*(centres[cand] - centres[a]).T) >= self.min_offset]
                else:
                    cand = cand[~self._overlaps(int(a), cand)]
                if len(cand):
                    partners[t] = cand[rng.integers(0, min(len(cand), self.hard_k))]
                    kinds[t] = 1
                else:
                    fallback[t] = True
        else:
            pos = np.empty(self.n_pos, dtype=np.int64)
            for ix in by_scene.values():
                pos[ix] = np.arange(len(ix))
            lo, hi = self.ordinal_gap
            for t, a in enumerate(anchors):
                ix = by_scene[self._scenes[a]]
                p = pos[a]
                cand = np.concatenate([ix[max(0, p - hi) : max(0, p - lo + 1)], ix[p + lo : p + hi + 1]])
                if len(cand):
                    partners[t] = cand[rng.integers(0, len(cand))]
                    kinds[t] = 2
                else:
                    fallback[t] = True
        if fallback.any():
            logger.info(
                "%d hard negatives had no same-scene candidate; random negatives used", int(fallback.sum())
            )
            self._plan_random(rng, anchors, partners, fallback)

    # -- Dataset protocol ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n_pos + self.n_neg

    def __getitem__(self, index: int) -> Sample:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} pairs")
        index %= n
        ds = self.dataset
        if index < self.n_pos:
            a = b = index
            kind, offset = "", 0.0
        else:
            anchors, partners, kinds, offsets = self.plan()
            q = index - self.n_pos
            a, b = int(anchors[q]), int(partners[q])
            kind, offset = ("random", "hard", "ordinal")[int(kinds[q])], float(offsets[q])
        raw = ds.load_raw(a) if a == b else ds.load_cross(a, b)
        sample = ds.to_tensors(raw)
        ra, rb = ds.records[a], ds.records[b]
        sample["meta"] = {
            "id": ra.id if a == b else f"{ra.id}|{rb.id}",
            "sar_id": ra.id,
            "opt_id": rb.id,
            "scene": ra.scene,
            "index": index,
            "sar_index": a,
            "opt_index": b,
            "negative": kind,
            "offset": offset,
        }
        sample["label"] = 1 if a == b else 0
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def labels(self) -> np.ndarray:
        """The label of every item (1 for the first ``len(dataset)``, then 0)."""
        return np.concatenate([np.ones(self.n_pos, np.int64), np.zeros(self.n_neg, np.int64)])
