"""Test-set metrics from probabilities, in NumPy (no scikit-learn needed at inference time)."""

from __future__ import annotations

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = np.asarray(scores)[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> list[dict]:
    """How far "70% positive" is from 70% of reviews being positive: the scored reviews in `bins` equal-width
    bins of their probability of "positive", each with its count, mean probability and share of positives
    (the reliability diagram's points; empty bins have count 0 and no means)."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).astype(np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)  # p == 1.0 goes to the last bin
    table = []
    for k in range(bins):
        inside = which == k
        count = int(inside.sum())
        table.append({"low": k / bins, "high": (k + 1) / bins, "count": count,
                      "mean_probability": float(p[inside].mean()) if count else None,
                      "positive_share": float(y[inside].mean()) if count else None})
    return table


def expected_calibration_error(table: list[dict]) -> float:
    """The reviews' average gap between the probability said and the share of positives seen, bin by bin
    (a reliability table's rows weighted by their counts); 0 is perfectly calibrated."""
    n = sum(row["count"] for row in table)
    if n == 0:
        return float("nan")
    return float(sum(row["count"] * abs(row["mean_probability"] - row["positive_share"])
                     for row in table if row["count"]) / n)


def evaluate(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, log loss, confusion matrix [[TN, FP], [FN, TP]], ROC AUC, expected calibration error
    (`ece`, 10 equal-width bins of the probability of "positive") and its `reliability` table, over the
    scored reviews.

    A NaN probability is a review with no word the model knows (the engine does not score those):
    it is left out of every figure and counted in `no_words`; `n` counts the reviews scored.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    scored = ~np.isnan(p)
    y = np.asarray(labels).astype(int)[scored]
    p = np.clip(p[scored], 1e-7, 1 - 1e-7)
    predicted = (p >= threshold).astype(int)
    table = reliability(y, p)
    confusion = [[int(((y == a) & (predicted == b)).sum()) for b in (0, 1)] for a in (0, 1)]
    return {
        "n": int(len(y)),
        "no_words": int((~scored).sum()),
        "accuracy": float((predicted == y).mean()) if len(y) else float("nan"),
        "loss": float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()) if len(y) else float("nan"),
        "confusion_matrix": confusion,
        "roc_auc": roc_auc(y, p),
        "ece": expected_calibration_error(table),
        "reliability": table,
    }


LONG_WORDS, SHORT_WORDS = 200, 100  # a long review: the model reads at least 200 of its words; short: under 100


def length_slices(labels: np.ndarray, probabilities: np.ndarray, words_read: np.ndarray, threshold: float = 0.5
                  ) -> dict:
    """Accuracy on the long and the short test reviews, by how many words the model reads of each (its
    non-padding ids, so at most its max length). A recurrent cell that forgets shows here: a SimpleRNN
    loses the start of a long review that an LSTM keeps. Reviews with no word it knows (NaN) are left out;
    a slice with no review has accuracy None."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    words = np.asarray(words_read)
    slices = {}
    for name, inside, bound in (("long", words >= LONG_WORDS, {"min_words": LONG_WORDS}),
                                ("short", words < SHORT_WORDS, {"max_words": SHORT_WORDS - 1})):
        scored = inside & ~np.isnan(p)
        n = int(scored.sum())
        accuracy = float(((p[scored] >= threshold).astype(int) == y[scored]).mean()) if n else None
        slices[name] = {**bound, "n": n, "accuracy": accuracy}
    return slices
