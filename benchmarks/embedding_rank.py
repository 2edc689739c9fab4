"""How far a run's embedding tables can be cut (Config.embedding_rank) before validation notices.

    python benchmarks/embedding_rank.py --model RUN --data ../shared/data/imdb [--ranks 32 16 8 4]

RUN should hold whole tables (trained with --embedding-rank 0): each rank is cut from them. Prints, on
the run's own validation reviews (rebuilt from its config; the test split is not read), accuracy, log
loss and the mean change of the probability against the whole tables, with the bytes the tables take.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sentiment_core import data, runs
from sentiment_core.inference import Engine
from sentiment_core.weights import dequantize_tables, quantize_tables


def table_bytes(weights: dict[str, np.ndarray]) -> int:
    return sum(v.nbytes for k, v in weights.items() if k.startswith("embedding"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a run folder with whole embedding tables")
    parser.add_argument("--data", required=True, help="the data the run was trained on")
    parser.add_argument("--ranks", type=int, nargs="+", default=[32, 16, 8, 4])
    args = parser.parse_args()

    run = runs.load_run(args.model)
    config = run.config
    if any(name.endswith("/basis") for name in run.weights):
        raise SystemExit(f"{args.model} was saved at rank {config.embedding_rank}; give a run with whole tables")
    validation = data.load(args.data, config.split, config.validation_fraction, config.seed).validation
    labels = np.asarray(validation.labels)
    whole = dequantize_tables(run.weights)
    ids = Engine(config, run.vocab, whole).encode(list(validation.texts))

    def score(weights: dict[str, np.ndarray]) -> tuple[np.ndarray, float, float]:
        p = Engine(config, run.vocab, weights).predict_ids(ids).astype(np.float64)
        q = np.clip(p, 1e-7, 1 - 1e-7)
        log_loss = -np.mean(labels * np.log(q) + (1 - labels) * np.log(1 - q))
        return p, float(np.mean((p > 0.5) == labels)), float(log_loss)

    base, base_accuracy, base_loss = score(whole)
    print(f"{args.model}: {config.members} member(s), tables {config.embedding_dim}-d, "
          f"{len(labels)} validation reviews")
    print(f"{'rank':>6} {'table MB':>9} {'accuracy':>9} {'log loss':>9} {'mean |dp|':>10} {'cut s':>6}")
    print(f"{'whole':>6} {table_bytes(run.weights) / 1e6:9.2f} {base_accuracy:9.2%} {base_loss:9.4f} "
          f"{0:10.4f} {0:6.1f}")
    for rank in args.ranks:
        t0 = time.perf_counter()
        stored = quantize_tables(whole, rank)
        seconds = time.perf_counter() - t0
        p, accuracy, loss = score(dequantize_tables(stored))
        print(f"{rank:>6} {table_bytes(stored) / 1e6:9.2f} {accuracy:9.2%} {loss:9.4f} "
              f"{np.abs(p - base).mean():10.4f} {seconds:6.1f}")


if __name__ == "__main__":
    main()
