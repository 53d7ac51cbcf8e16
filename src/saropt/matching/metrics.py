"""Figures for SAR-optical patch matching, in plain numpy (no scikit-learn).

Scores are *similarities*: higher means "more likely the same place". A pair is predicted a match when its
score is strictly greater than the threshold. For the Bridge Neural Network the score is ``1 - d`` (``d`` its
normalised embedding distance), so the paper's rule "match when d < 0.5" is "score > 0.5".

Localisation figures use pixel offsets.

Convention:
    Offsets are ``(x, y)`` = (column, row) in pixels of the native (unresized) patch grid, pixel centres at
    integer coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saropt.errors import InputError


def _as_binary(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise InputError(f"scores and labels differ in length: {s.size} vs {y.size}")
    if s.size == 0:
        raise InputError("no scored pairs: the evaluation set is empty")
    if not np.all(np.isfinite(s)):
        raise InputError("scores contain NaN or infinity; check the model or the input patches")
    yb = y.astype(bool)
    if not np.array_equal(yb.astype(y.dtype), y):
        raise InputError("labels must be 0/1 (1 = matching pair)")
    return s, yb


@dataclass(frozen=True)
class BinaryFigures:
    """Thresholded classification figures of one scorer on one set of pairs."""

    threshold: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    tn: int
    fn: int

    def as_dict(self) -> dict[str, float]:
        return {
            "threshold": self.threshold,
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


def binary_figures(scores: np.ndarray, labels: np.ndarray, threshold: float) -> BinaryFigures:
    """Accuracy, precision, recall and F1 of ``score > threshold`` against ``labels``.

    Args:
        scores: ``(N,)`` similarities, higher = match.
        labels: ``(N,)`` 0/1, 1 = matching pair.
        threshold: predict a match when ``score > threshold``.

    Returns:
        The figures; precision is 0 when nothing is predicted a match, recall 0 when there is no positive.

    Raises:
        InputError: on empty or mismatched inputs or non-finite scores.
    """
    s, y = _as_binary(scores, labels)
    pred = s > threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    tn = int(np.sum(~pred & ~y))
    fn = int(np.sum(~pred & y))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return BinaryFigures(
        threshold=float(threshold),
        accuracy=(tp + tn) / s.size,
        precision=precision,
        recall=recall,
        f1=f1,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
    )


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative.

    Ties count one half (the Mann-Whitney U statistic with mid-ranks).

    Raises:
        InputError: when one class is absent, or on bad inputs.
    """
    s, y = _as_binary(scores, labels)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise InputError("ROC-AUC needs both matching and non-matching pairs")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # mid-ranks for ties (1-based)
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mid, counts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def fpr_at_recall(scores: np.ndarray, labels: np.ndarray, recall: float = 0.95) -> float:
    """False-positive rate at the highest threshold that reaches ``recall`` (FPR95 for 0.95).

    The threshold is the score of the ``ceil(recall * P)``-th best positive; every negative scoring at least
    as high counts as a false positive (ties go against the method).

    Raises:
        InputError: when one class is absent, or ``recall`` is outside (0, 1].
    """
    if not 0.0 < recall <= 1.0:
        raise InputError(f"recall must be in (0, 1], got {recall}")
    s, y = _as_binary(scores, labels)
    pos = np.sort(s[y])[::-1]
    neg = s[~y]
    if pos.size == 0 or neg.size == 0:
        raise InputError("FPR at a recall needs both matching and non-matching pairs")
    k = int(np.ceil(recall * pos.size - 1e-9))
    t = pos[max(k, 1) - 1]
    return float(np.mean(neg >= t))


def calibrate_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold that maximises accuracy of ``score > threshold`` on a calibration set.

    Candidates are midpoints between consecutive distinct scores (plus one below the smallest and one above
    the largest); among equally accurate candidates the middle one is returned, so the result does not hug a
    single sample.

    Args:
        scores: ``(N,)`` similarities of a held-out (validation) set.
        labels: ``(N,)`` 0/1.

    Returns:
        The calibrated threshold.
    """
    s, y = _as_binary(scores, labels)
    u = np.unique(s)
    cands = np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2.0, [u[-1] + 1.0]])
    # accuracy of every candidate at once: sort scores, count positives/negatives above each cut
    order = np.argsort(s)
    ss, yy = s[order], y[order]
    idx = np.searchsorted(ss, cands, side="right")  # number of samples with score <= cand
    neg_cum = np.concatenate([[0], np.cumsum(~yy)])
    pos_cum = np.concatenate([[0], np.cumsum(yy)])
    tn = neg_cum[idx]
    tp = pos_cum[-1] - pos_cum[idx]
    acc = (tn + tp) / s.size
    best = np.flatnonzero(acc == acc.max())
    return float(cands[best[len(best) // 2]])


def classification_figures(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """All pair-classification figures of the paper's protocol in one dict.

    Returns:
        ``accuracy, precision, recall, f1`` at ``threshold``, ``roc_auc``, ``fpr95`` and ``threshold``.
    """
    out = binary_figures(scores, labels, threshold).as_dict()
    out["roc_auc"] = roc_auc(scores, labels)
    out["fpr95"] = fpr_at_recall(scores, labels, 0.95)
    return out


def localisation_figures(pred_xy: np.ndarray, true_xy: np.ndarray) -> dict[str, float]:
    """Correct-match rates within 1, 2 and 3 px, RMSE and median error of predicted template positions.

    Args:
        pred_xy: ``(N, 2)`` predicted offsets ``(x, y)``.
        true_xy: ``(N, 2)`` true offsets ``(x, y)``.

    Returns:
        ``cmr_1px, cmr_2px, cmr_3px`` (fraction of templates whose Euclidean error is <= 1, 2, 3 px),
        ``rmse_px`` (root mean square Euclidean error over all templates) and ``median_px``.

    Convention:
        ``(x, y)`` = (column, row) pixel offsets in the native patch grid.
    """
    p = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
    t = np.asarray(true_xy, dtype=np.float64).reshape(-1, 2)
    if p.shape != t.shape or p.size == 0:
        raise InputError(
            f"predicted and true positions must be equal non-empty (N, 2) arrays: {p.shape} {t.shape}"
        )
    err = np.hypot(*(p - t).T)
    return {
        "cmr_1px": float(np.mean(err <= 1.0)),
        "cmr_2px": float(np.mean(err <= 2.0)),
        "cmr_3px": float(np.mean(err <= 3.0)),
        "rmse_px": float(np.sqrt(np.mean(err**2))),
        "median_px": float(np.median(err)),
    }


SCENE_MIN_TEMPLATES = 3
"""Scenes with fewer localisation templates are left out of per-scene summaries (a median of 1-2 is noise)."""


def scene_offsets(
    pred_xy: np.ndarray, true_xy: np.ndarray, scenes: np.ndarray
) -> dict[str, tuple[float, float, int]]:
    """Median localisation error of each scene: where a method puts a scene's templates, against the truth.

    A whole scene whose truth is off by ``o`` shifts every prediction of a good method by ``o``; noise and
    gross errors of single templates do not move the median much.

    Args:
        pred_xy: ``(N, 2)`` predicted offsets ``(x, y)``.
        true_xy: ``(N, 2)`` true offsets.
        scenes: ``(N,)`` scene of each template.

    Returns:
        ``{scene: (dx, dy, templates)}``, the component-wise median of ``pred - true``.
    """
    err = np.asarray(pred_xy, np.float64).reshape(-1, 2) - np.asarray(true_xy, np.float64).reshape(-1, 2)
    sc = np.asarray(scenes).astype(str)
    if sc.shape[0] != err.shape[0]:
        raise InputError(f"{sc.shape[0]} scenes for {err.shape[0]} templates")
    out = {}
    for s in sorted(set(sc.tolist())):
        e = err[sc == s]
        dx, dy = np.median(e, axis=0)
        out[s] = (float(dx), float(dy), int(e.shape[0]))
    return out


def shared_scene_offsets(
    offsets: dict[str, dict[str, tuple[float, float, int]]],
    min_px: float = 1.0,
    agree_px: float = 1.5,
    min_templates: int = SCENE_MIN_TEMPLATES,
) -> dict[str, tuple[float, float]]:
    """Scenes where every method is off by the same amount: the truth, not the methods, is likely off there.

    Args:
        offsets: ``{method: scene_offsets(...)}`` for two or more methods.
        min_px: every method's median error in the scene is at least this long.
        agree_px: and all methods' median errors lie within this distance of each other.
        min_templates: scenes with fewer templates are left out.

    Returns:
        ``{scene: (dx, dy)}``, the mean of the methods' median errors; empty for fewer than two methods.
    """
    if len(offsets) < 2:
        return {}
    scenes = set.intersection(*(set(o) for o in offsets.values()))
    out = {}
    for s in sorted(scenes):
        if min(o[s][2] for o in offsets.values()) < min_templates:
            continue
        v = np.array([o[s][:2] for o in offsets.values()], np.float64)
        far = np.hypot(v[:, 0], v[:, 1]).min() >= min_px
        spread = np.hypot(*(v[:, None, :] - v[None, :, :]).transpose(2, 0, 1)).max()
        if far and spread <= agree_px:
            m = v.mean(axis=0)
            out[s] = (float(m[0]), float(m[1]))
    return out


def retrieval_ranks(scores: np.ndarray, true_col: np.ndarray | None = None) -> np.ndarray:
    """Rank of the true candidate in each row of a query x candidate score matrix.

    The rank is ``1 +`` the number of *other* candidates scoring at least as high: ties count against the
    method, so a constant scorer gets the worst rank, not the best.

    Args:
        scores: ``(Q, N)`` similarities of query ``q`` (a SAR patch) with candidate ``n`` (optical patches).
        true_col: ``(Q,)`` column of each query's true candidate; default: the diagonal of a square matrix.

    Returns:
        ``(Q,)`` int ranks in ``1..N``.

    Raises:
        InputError: on an empty or non-2-D matrix, or a missing ``true_col`` for a non-square one.
    """
    m = np.asarray(scores, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise InputError(
            f"retrieval needs a non-empty (queries, candidates) score matrix, got shape {m.shape}"
        )
    if true_col is None:
        if m.shape[0] != m.shape[1]:
            raise InputError("true_col is required when the score matrix is not square")
        true_col = np.arange(m.shape[0])
    tc = np.asarray(true_col, dtype=np.int64).ravel()
    if tc.shape[0] != m.shape[0] or tc.min() < 0 or tc.max() >= m.shape[1]:
        raise InputError("true_col must give one valid column per query")
    true = m[np.arange(m.shape[0]), tc]
    ge = (m >= true[:, None]).sum(axis=1) - 1  # minus the true candidate itself
    return (1 + ge).astype(np.int64)


def retrieval_figures(ranks: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k from true-candidate ranks: the fraction of queries whose true candidate is in the top k."""
    r = np.asarray(ranks).ravel()
    if r.size == 0:
        raise InputError("no retrieval queries")
    out = {f"recall_at_{k}": float(np.mean(r <= k)) for k in ks}
    out["mean_rank"] = float(np.mean(r))
    return out


def retrieval_scene_figures(
    ranks: np.ndarray, top_same_scene: np.ndarray, ranks_other_scenes: np.ndarray
) -> dict[str, float | int]:
    """Where retrieval misses come from: the query's own scene (neighbours) or other scenes.

    Args:
        ranks: ``(Q,)`` true-candidate ranks among all candidates.
        top_same_scene: ``(Q,)`` bool, the best-scoring wrong candidate is another patch of the query's scene.
        ranks_other_scenes: ``(Q,)`` ranks once the query's other same-scene candidates are left out.

    Returns:
        ``misses`` (queries with rank > 1), ``misses_same_scene`` (those whose top candidate is of the query's
        scene) and ``recall_at_1_other_scenes`` (recall@1 among the true candidate and other scenes' patches).
    """
    r = np.asarray(ranks).ravel()
    top = np.asarray(top_same_scene, dtype=bool).ravel()
    other = np.asarray(ranks_other_scenes).ravel()
    if r.size == 0 or top.shape != r.shape or other.shape != r.shape:
        raise InputError("retrieval scene figures need one rank, flag and other-scene rank per query")
    miss = r > 1
    return {
        "misses": int(miss.sum()),
        "misses_same_scene": int((miss & top).sum()),
        "recall_at_1_other_scenes": float(np.mean(other <= 1)),
    }
