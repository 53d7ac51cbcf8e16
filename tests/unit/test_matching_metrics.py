"""Matching metrics against hand-computed examples (no scikit-learn)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pytest

from saropt.errors import InputError
from saropt.matching.metrics import (
    binary_figures,
    calibrate_threshold,
    classification_figures,
    fpr_at_recall,
    localisation_figures,
    retrieval_figures,
    retrieval_ranks,
    roc_auc,
)

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
