"""Matching metrics against hand-computed examples (no scikit-learn)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pytest

from saropt.errors import InputError
from saropt.matching.bootstrap import (
    localisation_figure_fn,
    pair_figure_fn,
    paired_bootstrap,
    retrieval_figure_fn,
    verdict,
)
from saropt.matching.metrics import (
    binary_figures,
    calibrate_threshold,
    classification_figures,
    fpr_at_recall,
    localisation_figures,
    retrieval_figures,
    retrieval_ranks,
    retrieval_scene_figures,
    roc_auc,
    scene_offsets,
    shared_scene_offsets,
)
from saropt.matching.protocols import ProtocolSettings

SCORES = np.array([0.9, 0.8, 0.3, 0.6, 0.1])
LABELS = np.array([1, 1, 1, 0, 0])


def test_binary_figures_hand_computed() -> None:
    f = binary_figures(SCORES, LABELS, 0.5)  # predictions 1 1 0 1 0
    assert (f.tp, f.fp, f.tn, f.fn) == (2, 1, 1, 1)
    assert f.accuracy == pytest.approx(3 / 5)
    assert f.precision == pytest.approx(2 / 3)
    assert f.recall == pytest.approx(2 / 3)
    assert f.f1 == pytest.approx(2 / 3)


def test_threshold_is_strict() -> None:
    f = binary_figures(np.array([0.5, 0.5]), np.array([1, 0]), 0.5)
    assert (f.tp, f.fp) == (0, 0) and f.precision == 0.0 and f.f1 == 0.0


def test_roc_auc_hand_computed_and_ties() -> None:
    # positives 0.9 0.8 0.3 vs negatives 0.6 0.1: 5 of 6 ordered pairs correct
    assert roc_auc(SCORES, LABELS) == pytest.approx(5 / 6)
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)
    assert roc_auc(np.array([0.2, 0.3, 0.3, 0.9]), np.array([0, 0, 1, 1])) == pytest.approx((1 + 0.5 + 2) / 4)


def test_fpr_at_95_recall() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.65, 0.5, 0.61, 0.1])
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    # 95% of 4 positives -> all 4 -> threshold 0.6 -> negatives >= 0.6: 0.65, 0.61
    assert fpr_at_recall(scores, labels, 0.95) == pytest.approx(0.5)
    assert fpr_at_recall(scores, labels, 0.5) == pytest.approx(0.0)  # threshold 0.8


def test_calibrate_threshold_picks_the_separating_midpoint() -> None:
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    assert calibrate_threshold(s, y) == pytest.approx(0.5)
    # inverted-but-shifted scores: best threshold still found on the data
    s2 = np.array([0.80, 0.82, 0.84, 0.86, 0.88, 0.90])
    assert calibrate_threshold(s2, y) == pytest.approx(0.85)
    assert binary_figures(s2, y, calibrate_threshold(s2, y)).accuracy == 1.0


def test_classification_figures_keys() -> None:
    f = classification_figures(SCORES, LABELS, 0.5)
    assert set(f) == {"threshold", "accuracy", "precision", "recall", "f1", "roc_auc", "fpr95"}


def test_localisation_figures_hand_computed() -> None:
    pred = np.array([[0, 0], [1, 1], [3, 0], [0, 5]])
    f = localisation_figures(pred, np.zeros((4, 2)))  # errors 0, 1.414, 3, 5
    assert f["cmr_1px"] == 0.25 and f["cmr_2px"] == 0.5 and f["cmr_3px"] == 0.75
    assert f["rmse_px"] == pytest.approx(math.sqrt((0 + 2 + 9 + 25) / 4))
    assert f["median_px"] == pytest.approx((math.sqrt(2) + 3) / 2)


def test_retrieval_ranks_ties_count_against() -> None:
    m = np.array([[0.9, 0.1, 0.2], [0.5, 0.4, 0.6], [0.3, 0.3, 0.3]])
    ranks = retrieval_ranks(m)
    assert ranks.tolist() == [1, 3, 3]
    f = retrieval_figures(ranks, ks=(1, 5, 10))
    assert f["recall_at_1"] == pytest.approx(1 / 3) and f["recall_at_5"] == 1.0
    assert retrieval_ranks(np.array([[0.1, 0.9, 0.5]]), np.array([2])).tolist() == [2]


def test_retrieval_scene_figures_split_misses_by_scene() -> None:
    ranks = np.array([1, 2, 3, 2])
    top_same = np.array([False, True, False, True])  # query 0's flag does not count: it is no miss
    f = retrieval_scene_figures(ranks, top_same, np.array([1, 1, 2, 1]))
    assert f == {"misses": 3, "misses_same_scene": 2, "recall_at_1_other_scenes": 0.75}
    with pytest.raises(InputError, match="one rank, flag"):
        retrieval_scene_figures(ranks, top_same[:3], ranks)


@pytest.mark.parametrize(
    "call",
    [
        lambda: binary_figures(np.array([0.1, 0.2]), np.array([1]), 0.5),
        lambda: roc_auc(np.array([0.1, 0.2]), np.array([1, 1])),
        lambda: binary_figures(np.array([]), np.array([]), 0.5),
        lambda: roc_auc(np.array([np.nan, 0.2]), np.array([1, 0])),
        lambda: binary_figures(np.array([0.1, 0.2]), np.array([2, 0]), 0.5),
        lambda: fpr_at_recall(SCORES, LABELS, 1.5),
        lambda: retrieval_ranks(np.zeros((2, 3))),
    ],
)
def test_bad_inputs_raise_input_error(call: Callable[[], object]) -> None:
    with pytest.raises(InputError):
        call()


def test_paired_bootstrap_interval_matches_the_binomial_width() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([1, 0], 200)
    good = np.where(rng.random(400) < 0.8, y, 1 - y).astype(float)  # 80% accurate at threshold 0.5
    fn = pair_figure_fn({"a": good}, y, {"a": 0.5})
    cmp_ = paired_bootstrap(fn, 400, "a", ["accuracy"], resamples=2000, seed=1, strata=y)
    lo, hi = cmp_.ci["a"]["accuracy"]
    acc = float(np.mean((good > 0.5) == y))
    half = 1.96 * np.sqrt(acc * (1 - acc) / 400)  # normal approximation of the binomial: 0.039
    assert lo < acc < hi
    assert hi - lo == pytest.approx(2 * half, rel=0.2)
    assert cmp_.diff == {}


def test_paired_bootstrap_tells_ahead_level_and_behind() -> None:
    rng = np.random.default_rng(2)
    y = np.repeat([1, 0], 300)
    strong = y + rng.normal(0, 0.4, y.size)  # AUC ~0.96
    weak = y + rng.normal(0, 1.5, y.size)  # AUC ~0.68
    same = strong.copy()
    scores = {"p": strong, "weak": weak, "same": same}
    fn = pair_figure_fn(scores, y, {k: 0.5 for k in scores})
    cmp_ = paired_bootstrap(fn, y.size, "p", ["accuracy", "roc_auc"], resamples=300, strata=y)
    d, lo, hi = cmp_.diff["weak"]["roc_auc"]
    assert d > 0.2 and lo > 0 and verdict("hard", "roc_auc", lo, hi) == "ahead"
    # paired: a method scored identically to the primary differs by exactly 0 in every resample
    assert cmp_.diff["same"]["accuracy"] == (0.0, 0.0, 0.0)
    assert verdict("hard", "accuracy", 0.0, 0.0) == "level"
    # lower is better for RMSE: a negative difference puts the primary ahead
    assert verdict("localisation", "rmse_px", -2.0, -0.5) == "ahead"
    assert verdict("localisation", "cmr_3px", -0.2, -0.1) == "behind"


def test_paired_bootstrap_keeps_strata_and_checks_inputs() -> None:
    y = np.array([1] * 5 + [0] * 95)
    seen = []

    def fn(idx: np.ndarray) -> dict[str, dict[str, float]]:
        seen.append(int(y[idx].sum()))
        return {"a": {"accuracy": 1.0}}

    paired_bootstrap(fn, y.size, "a", ["accuracy"], resamples=50, strata=y)
    assert set(seen) == {5}  # every resample keeps the 5 positives' count
    with pytest.raises(InputError):
        paired_bootstrap(fn, y.size, "b", ["accuracy"], resamples=50)
    with pytest.raises(InputError):
        paired_bootstrap(fn, 0, "a", ["accuracy"])
    with pytest.raises(InputError):
        ProtocolSettings(bootstrap=5)


def test_localisation_and_retrieval_figures_on_resamples() -> None:
    true = np.zeros((4, 2))
    pred = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [5.0, 0.0]])
    fn = localisation_figure_fn({"a": pred}, true)
    full_loc = localisation_figures(pred, true)
    assert fn(np.arange(4))["a"] == {"cmr_3px": full_loc["cmr_3px"], "rmse_px": full_loc["rmse_px"]}
    assert fn(np.array([1, 1]))["a"] == {"cmr_3px": 1.0, "rmse_px": 3.0}
    ranks = np.array([1, 2, 6, 1])
    rf = retrieval_figure_fn({"a": ranks})
    full = retrieval_figures(ranks)
    assert rf(np.arange(4))["a"] == {"recall_at_1": full["recall_at_1"], "recall_at_5": full["recall_at_5"]}


def test_scene_offsets_are_per_scene_medians() -> None:
    true = np.zeros((5, 2))
    pred = np.array([[2, 0], [2, 1], [9, -9], [0, 0], [1, 0]], dtype=float)
    off = scene_offsets(pred, true, np.array(["a", "a", "a", "b", "b"]))
    assert off == {"a": (2.0, 0.0, 3), "b": (0.5, 0.0, 2)}  # the gross error of one template does not count
    with pytest.raises(InputError, match="3 scenes for 5 templates"):
        scene_offsets(pred, true, np.array(["a", "a", "b"]))


def test_shared_scene_offsets_need_every_method_off_the_same_way() -> None:
    a = {"s1": (2.0, 1.0, 9), "s2": (2.0, 0.0, 9), "s3": (0.5, 0.0, 9), "s4": (3.0, 0.0, 2)}
    b = {"s1": (3.0, 1.0, 9), "s2": (-2.0, 0.0, 9), "s3": (0.0, 0.0, 9), "s4": (3.0, 0.0, 2)}
    assert shared_scene_offsets({"a": a, "b": b}) == {"s1": (2.5, 1.0)}  # s2 disagrees, s3 is near 0
    assert shared_scene_offsets({"a": a, "b": b}, min_templates=2)["s4"] == (3.0, 0.0)  # s4: too few templates
    assert shared_scene_offsets({"a": a}) == {}  # one method cannot tell its own bias from the truth's
