"""Latency of one edit in the review editor (the 'Edit a review' page), per shipped run.

    python benchmarks/editor_latency.py [--words 200] [--edits 30] [--runs best notebook]

An edit is what the page computes after a click: the edited version's probability and per-word attributions
(counterfactual.score: Engine.occlusion_scored, the review and each word hidden in turn, in one batch); the
original's are cached. The edits cycle through change, delete and insert at random positions of a review of
`--words` words taken from the bundled sample. Prints p50/p95 of wall-clock and CPU time per edit, and of the
edited review's probability alone (Engine.predict) for scale: on a busy machine both grow alike.

OpenBLAS threads its small matrix products; on a loaded machine that costs several times the CPU (measured
here: 5.3 s against 0.58 s of CPU per edit with `best`). Compare with OPENBLAS_NUM_THREADS=1 in the environment.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sentiment_core import counterfactual as cf  # noqa: E402
from sentiment_core import data, runs  # noqa: E402
from sentiment_core.inference import Engine  # noqa: E402


def review(words: int) -> str:
    _, test = data.load_raw("sample")
    long = next(t for t in test.texts if len(t.split()) >= words * 1.3)
    return " ".join(long.split()[:words])


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(engine: Engine, text: str, edits: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = random.Random(seed)
    words = cf.words_of(engine, text)
    cf.score(engine, words)  # warm up
    found: dict[str, list] = {"edit wall": [], "edit cpu": [], "probability only wall": [],
                              "probability only cpu": []}
    for k in range(edits):
        action = ("change", "delete", "insert")[k % 3]
        position = rng.randrange(len(words))
        edited = cf.apply(words, cf.Edit(action, position, rng.choice(["terrible", "not", "great", "film"])))
        wall, cpu = timed(lambda e=edited: cf.score(engine, e))
        found["edit wall"].append(wall)
        found["edit cpu"].append(cpu)
        wall, cpu = timed(lambda e=edited: engine.predict([cf.text_of(e)]))
        found["probability only wall"].append(wall)
        found["probability only cpu"].append(cpu)
    return {k: np.asarray(v) * 1e3 for k, v in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--runs", nargs="+", default=["best", "notebook"])
    args = parser.parse_args()
    text = review(args.words)
    for name in args.runs:
        engine = Engine.from_run(runs.load_run(runs.SHIPPED_DIR / name))
        words = len(cf.words_of(engine, text))
        result = measure(engine, text, args.edits)
        parts = ", ".join(f"{k} p50 {np.percentile(v, 50):.1f} / p95 {np.percentile(v, 95):.1f} ms"
                          for k, v in result.items())
        print(f"{name} ({words} words read, {args.edits} edits): {parts}", flush=True)


if __name__ == "__main__":
    main()
