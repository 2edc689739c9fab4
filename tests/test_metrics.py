"""Test-set metrics: calibration (expected calibration error and its reliability table)."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment_core.metrics import evaluate, expected_calibration_error, reliability


def test_a_calibrated_model_has_no_calibration_error():
    # "5% positive" for 20 reviews of which 1 is positive, "75%" for 4 of which 3 are
    p = np.array([0.05] * 20 + [0.75] * 4)
    y = np.array([1] + [0] * 19 + [1, 1, 1, 0])
    table = reliability(y, p)
    assert [row["count"] for row in table] == [20, 0, 0, 0, 0, 0, 0, 4, 0, 0]
    assert table[0]["mean_probability"] == pytest.approx(0.05) and table[0]["positive_share"] == pytest.approx(0.05)
    assert table[1]["mean_probability"] is None and table[1]["positive_share"] is None
    assert expected_calibration_error(table) == pytest.approx(0.0)


def test_overconfidence_is_the_count_weighted_gap():
    # 10 reviews said 95% positive, half of them positive (gap 0.45); 10 said 5%, none positive (gap 0.05)
    p = np.array([0.95] * 10 + [0.05] * 10)
    y = np.array([1, 0] * 5 + [0] * 10)
    assert expected_calibration_error(reliability(y, p)) == pytest.approx((10 * 0.45 + 10 * 0.05) / 20)


def test_bins_are_equal_width_and_hold_their_edges():
    table = reliability(np.array([0, 1, 1, 0]), np.array([0.0, 0.1, 1.0, 0.0999]))
    assert [(row["low"], row["high"]) for row in table][:2] == [(0.0, 0.1), (0.1, 0.2)]
    assert table[0]["count"] == 2 and table[1]["count"] == 1 and table[9]["count"] == 1  # 1.0 in the last


def test_evaluate_reports_ece_over_the_scored_reviews_only():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p ** 2).astype(int)  # positives rarer than said: overconfident
    p_with_gaps = p.copy()
    p_with_gaps[::50] = np.nan  # reviews with no known word are not scored
    result = evaluate(y, p_with_gaps)
    scored = ~np.isnan(p_with_gaps)
    assert sum(row["count"] for row in result["reliability"]) == result["n"] == scored.sum()
    # the same figure, computed another way: np.digitize bins and a weighted mean of the gaps
    q, t = p[scored], y[scored]
    bins = np.clip(np.digitize(q, np.linspace(0, 1, 11)[1:-1]), 0, 9)
    gaps = [abs(q[bins == k].mean() - t[bins == k].mean()) * (bins == k).sum() for k in range(10) if (bins == k).any()]
    assert result["ece"] == pytest.approx(sum(gaps) / len(q))
    assert result["ece"] > 0.05  # p² against p is far from calibrated


def test_no_scored_review_has_no_calibration_error_figure():
    result = evaluate(np.array([1, 0]), np.array([np.nan, np.nan]))
    assert result["n"] == 0 and np.isnan(result["ece"])
    assert all(row["count"] == 0 for row in result["reliability"])
