"""How much of the short-text gap is in the short texts themselves: a strong n-gram classifier on the same sets.

    python benchmarks/short_text_ceiling.py --data ../shared/data/imdb [--train-short add|only]

Trains, on the training split's whole reviews, a logistic regression over binary word and word-pair
features scaled by their naive-Bayes log-count ratios (the NBSVM idea, Wang & Manning 2012; no neural
network, no word order beyond pairs) and scores it on the test reviews and on their short texts (first and last
sentence, at most 40 words: sentiment_core/short_texts.py, what `evaluate --short-texts` uses). If this model
loses as much on short texts as our RNNs do, the loss comes from what two sentences say, not from the RNN.
Also counts the short texts that hold none of the 2,000 most polar words (by that same ratio).
`--train-short add` trains on each training review and its short text as well; `only` on the short texts alone:
does a classifier that has read short texts close the gap?
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sentiment_core import data, short_texts, text  # noqa: E402

POLAR = 2_000  # words counted as polar: the strongest log-count ratios among words seen >= 30 times


def features(texts: list[str], index: dict[str, int] | None = None, min_count: int = 3):
    """Binary word and word-pair presence, (n, features) CSR; the index is built from these texts if not given."""
    rows = []
    for review in texts:
        words = text.tokenize(review)
        rows.append(set(words) | {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)})
    if index is None:
        counts = Counter(f for row in rows for f in row)
        index = {f: i for i, f in enumerate(f for f, n in counts.items() if n >= min_count)}
    columns, starts = [], [0]
    for row in rows:
        columns += [index[f] for f in row if f in index]
        starts.append(len(columns))
    x = sp.csr_matrix((np.ones(len(columns), np.float32), columns, starts), shape=(len(rows), len(index)))
    return x, index


def logistic_regression(x, y: np.ndarray, c: float) -> np.ndarray:
    """L2-regularised logistic regression by L-BFGS; the last weight is the bias."""
    n, sign = x.shape[0], np.where(y > 0, 1.0, -1.0)

    def loss_and_gradient(w):
        margin = -sign * (x @ w[:-1] + w[-1])
        loss = np.logaddexp(0, margin).sum() / n + (w[:-1] @ w[:-1]) / (2 * c * n)
        d = -sign / (1 + np.exp(-margin)) / n
        return loss, np.append(x.T @ d + w[:-1] / (c * n), d.sum())

    return minimize(loss_and_gradient, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                    options={"maxiter": 300}).x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--c", type=float, default=0.1, help="inverse L2 strength")
    parser.add_argument("--train-short", choices=("none", "add", "only"), default="none",
                        help="also (add) or only (only) train on the training reviews' short texts")
    args = parser.parse_args()
    started = time.perf_counter()
    train, test = data.load_raw(args.data)
    train_short = [] if args.train_short == "none" else [short_texts.shorten(t) for t in train.texts]
    train_texts = {"none": train.texts, "add": train.texts + train_short, "only": train_short}[args.train_short]
    x_train, index = features(train_texts)
    x_test, _ = features(test.texts, index)
    x_short, _ = features([short_texts.shorten(t) for t in test.texts], index)
    y = np.concatenate([train.labels, train.labels]) if args.train_short == "add" else train.labels
    positive = np.asarray(x_train[y == 1].sum(0)).ravel() + 1
    negative = np.asarray(x_train[y == 0].sum(0)).ravel() + 1
    ratio = np.log(positive / positive.sum()) - np.log(negative / negative.sum())
    w = logistic_regression(x_train.multiply(ratio).tocsr(), y, args.c)
    accuracy = {name: float((((x.multiply(ratio).tocsr() @ w[:-1] + w[-1]) > 0) == test.labels).mean())
                for name, x in (("whole", x_test), ("short", x_short))}
    words = np.array([" " not in f for f in index])
    seen = np.asarray(x_train.sum(0)).ravel()
    candidates = np.flatnonzero(words & (seen >= 30))
    polar = np.zeros(len(index), bool)
    polar[candidates[np.argsort(-np.abs(ratio[candidates]))[:POLAR]]] = True
    without = float((np.asarray(x_short[:, polar].sum(1)).ravel() == 0).mean())
    print(f"{args.data}: {len(train_texts):,} training texts (--train-short {args.train_short}), "
          f"{len(test.texts):,} test reviews, "
          f"{len(index):,} word and pair features ({time.perf_counter() - started:.0f} s)")
    print("| NB-weighted logistic regression, words + pairs | whole reviews | short texts | gap, points |")
    print("|---|---|---|---|")
    print(f"| C = {args.c:g} | {accuracy['whole']:.2%} | {accuracy['short']:.2%} | "
          f"{100 * (accuracy['whole'] - accuracy['short']):.1f} |")
    print(f"short texts with none of the {polar.sum():,} most polar words (of {len(candidates):,} seen 30+ times): "
          f"{without:.1%}")


if __name__ == "__main__":
    main()
