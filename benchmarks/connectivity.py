"""Connectivity (sentiment_core/connectivity.py): its latency for one 200-word review, and what each run forgets.

    python benchmarks/connectivity.py                                   # the shipped runs, the bundled sample
    python benchmarks/connectivity.py --data ../shared/data/imdb --reviews 200 artifacts/runs/demo

1. p50/p95 of connectivity() for a 200-word review (tokenizing and the forward pass included), next to
   Engine.predict (the forward pass alone), for each run.
2. Mean ‖∂ logit / ∂ word‖ at distances 1, 10 and 50 from the last word read, over the first --reviews test
   reviews that the run reads at least --min-words words of; raw, and relative to distance 1 (ratio of means).
Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sentiment_core import connectivity, data, runs  # noqa: E402
from sentiment_core.inference import Engine  # noqa: E402

DISTANCES = (1, 10, 50)


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", default=[str(runs.SHIPPED_DIR / n) for n in ("notebook", "best")])
    parser.add_argument("--data", default="sample", help="where the test reviews come from (default sample)")
    parser.add_argument("--reviews", type=int, default=200)
    parser.add_argument("--min-words", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    _, test = data.load_raw(args.data)
    review = " ".join((" ".join(test.texts[:50])).split()[:200])  # 200 words of real reviews
    for path in args.runs:
        engine = Engine.from_run(runs.load_run(path))
        read_p50, read_p95 = timed(lambda: engine.predict([review]), args.repeats)  # noqa: B023
        p50, p95 = timed(lambda: connectivity.connectivity(engine, review), args.repeats)  # noqa: B023
        t0 = time.perf_counter()
        curve, count = connectivity.forgetting_curve(engine, test.texts, args.min_words, args.reviews)
        seconds = time.perf_counter() - t0
        print(json.dumps({
            "run": Path(path).name, "words_read": len(engine.tokens(review)),
            "connectivity_ms": {"p50": round(p50 * 1e3, 1), "p95": round(p95 * 1e3, 1)},
            "predict_ms": {"p50": round(read_p50 * 1e3, 1), "p95": round(read_p95 * 1e3, 1)},
            "reviews": count, "data": args.data, "batch_seconds": round(seconds, 1),
            "mean_connectivity": {d: float(f"{curve[d - 1]:.4g}") for d in DISTANCES if d <= len(curve)},
            "relative_to_distance_1": {d: float(f"{curve[d - 1] / curve[0]:.3g}") for d in DISTANCES
                                       if d <= len(curve)}}))


if __name__ == "__main__":
    main()
