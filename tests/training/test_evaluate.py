"""Evaluation figures on arrays small enough to check by hand: Gini, calibration error, top decile, baselines."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from training.evaluate import (
    classification_metrics,
    expected_calibration_error,
    normalized_gini,
    rate_baseline,
    regression_metrics,
    top_decile,
)

Y = np.array([0.0, 0.0, 1.0, 1.0])


# ------------------------------------------------------------------------------------------ normalized Gini


@pytest.mark.parametrize(
    "y, pred",
    [
        (Y, np.array([0.1, 0.2, 0.8, 0.9])),
        (np.array([0.0, 10.0, 20.0, 30.0, 0.0]), np.array([1.0, 2.0, 3.0, 4.0, 0.5])),
        (Y, np.array([0.2, 0.2, 0.7, 0.7])),  # ties inside a class change nothing
    ],
    ids=["binary", "amounts", "ties within a class"],
)
def test_a_perfect_ranking_scores_one(y, pred):
    assert normalized_gini(y, pred) == pytest.approx(1.0)


def test_only_the_ranking_counts_not_the_scale():
    pred = np.array([0.3, 0.1, 0.9, 0.4])
    assert normalized_gini(Y, pred) == pytest.approx(normalized_gini(Y, 100 * pred**3 + 7))


def test_gini_without_any_positive_is_undefined():
    assert math.isnan(normalized_gini(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4])))


def test_reversed_and_random_rankings_score_minus_one_and_zero():
    # Reversed: y by falling score is 0, 0, 1, 1; cumulative share 0, 0, 1/2, 1 -> mean 3/8, perfect 7/8,
    # Gini (3/8 - 5/8) / (7/8 - 5/8) = -1.
    assert normalized_gini(Y, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(-1.0)
    # Half right: 1, 0, 1, 0 by falling score; cumulative 1/2, 1/2, 1, 1 -> mean 6/8, Gini (6/8 - 5/8) / (2/8).
    assert normalized_gini(Y, np.array([0.8, 0.1, 0.9, 0.3])) == pytest.approx(0.5)
    every_order = [normalized_gini(Y, np.array(p, dtype=float)) for p in itertools.permutations(range(4))]
    assert np.mean(every_order) == pytest.approx(0.0)


# ------------------------------------------------------------------------------------------ calibration


def test_perfectly_calibrated_bins_have_no_calibration_error():
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    p = np.array([0.25] * 4 + [0.75] * 4)  # 1 in 4 and 3 in 4 happened
    assert expected_calibration_error(y, p) == pytest.approx(0.0)


def test_calibration_error_weights_each_bin_by_its_rows():
    y = np.array([1, 0, 0, 0, 1, 0, 1, 0])
    p = np.array([0.25] * 4 + [0.9] * 4)  # second half: 0.9 promised, 0.5 happened
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.0 + 0.5 * 0.4)


def test_calibration_error_compares_means_within_a_bin_and_keeps_one_in_the_last_bin():
    # 0.2 and 0.28 share the bin [0.2, 0.3): mean 0.24 against a rate of 1/2.
    assert expected_calibration_error(np.array([0, 1]), np.array([0.2, 0.28])) == pytest.approx(0.26)
    assert expected_calibration_error(np.array([1, 1]), np.array([1.0, 0.95])) == pytest.approx(0.025)


# ------------------------------------------------------------------------------------------ top decile and summaries


def test_top_decile_lift_and_capture():
    y = np.array([0, 0, 0, 1, 0, 0, 0, 0, 1, 0])  # base rate 0.2; the top 10% is one row
    score = np.linspace(0, 1, 10)
    score[3] = 2.0
    assert top_decile(y, score) == pytest.approx((5.0, 0.5))
    lift, capture = top_decile(np.zeros(10, dtype=int), score)
    assert math.isnan(lift) and math.isnan(capture)


def test_classification_metrics_on_a_hand_sized_set():
    figures = classification_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert figures["roc_auc"] == pytest.approx(0.75)  # 3 of the 4 positive-negative pairs in order
    assert figures["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert figures["positive_rate"] == 0.5 and figures["rows"] == 4.0
    assert figures["mean_prediction"] == pytest.approx(0.4125)


def test_classification_metrics_with_one_class_leave_the_ranking_figures_undefined():
    figures = classification_metrics([0, 0, 0], [0.0, 0.5, 1.0])  # probabilities clipped, log loss finite
    assert math.isnan(figures["roc_auc"]) and math.isnan(figures["pr_auc"])
    assert math.isfinite(figures["log_loss"])


def test_regression_metrics_on_a_hand_sized_set():
    figures = regression_metrics([0.0, 10.0, 20.0, 30.0], [5.0, 10.0, 15.0, 50.0])
    assert figures["mae"] == pytest.approx((5 + 0 + 5 + 20) / 4)
    assert figures["rmse"] == pytest.approx(math.sqrt((25 + 0 + 25 + 400) / 4))
    assert figures["spearman"] == pytest.approx(1.0)
    assert figures["normalized_gini"] == pytest.approx(1.0)
    assert figures["top_decile_capture"] == pytest.approx(30 / 60)  # one row: the 50 forecast, worth 30
    assert figures["pred_actual_ratio"] == pytest.approx(80 / 60)


# ------------------------------------------------------------------------------------------ baselines


def test_rate_baseline_shrinks_each_group_to_the_overall_rate():
    train = pd.DataFrame({"stage": ["a", "a", "b"]})
    target = pd.Series([1, 1, 0])
    test = pd.DataFrame({"stage": ["a", "b", "unseen"]})
    prior = 2 / 3
    expected = [(2 + 20 * prior) / (2 + 20), (0 + 20 * prior) / (1 + 20), prior]
    np.testing.assert_allclose(rate_baseline(train, target, test, ["stage"]), expected)
