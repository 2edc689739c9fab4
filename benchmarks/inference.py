"""Latency and memory of one prediction: our NumPy engine next to Keras, in one run.

    python benchmarks/inference.py                      # the shipped runs
    python benchmarks/inference.py artifacts/runs/demo  # any runs

For a 200-word review, end to end (tokenizing included): p50/p95 of Engine.predict,
of Keras' model.predict and of calling the Keras model directly; then the resident
memory of a fresh process that loads the run and predicts, with and without Keras.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRESH_NUMPY = r"""
import json, sys, psutil
from sentiment_core.runs import load_run
from sentiment_core.inference import Engine
engine = Engine.from_run(load_run(sys.argv[1]))
p = float(engine.predict([sys.argv[2]])[0])
engine.read(sys.argv[2])
heavy = [m for m in ("tensorflow", "keras", "jax") if m in sys.modules]
print(json.dumps({"rss_mb": psutil.Process().memory_info().rss / 2**20, "p": p, "imported": heavy}))
"""

FRESH_KERAS = r"""
import json, sys, psutil
from sentiment_core.runs import load_run
from sentiment_core.explain import keras_model
from sentiment_core.inference import Engine
run = load_run(sys.argv[1])
ids = Engine.from_run(run).encode([sys.argv[2]])
p = float(keras_model(run).predict(ids, verbose=0).mean(axis=-1)[0])  # an ensemble: its members' mean
print(json.dumps({"rss_mb": psutil.Process().memory_info().rss / 2**20, "p": p}))
"""


def review_of(words: int = 200) -> str:
    from sentiment_core.data import load_raw

    train, _ = load_raw("sample")
    long = next(t for t in train.texts if len(t.split()) >= words)
    return " ".join(long.split()[:words])


def timed(fn, repeats: int = 200) -> tuple[float, float]:
    for _ in range(5):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return 1000 * float(np.percentile(samples, 50)), 1000 * float(np.percentile(samples, 95))


def fresh(source: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", source, *args], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from sentiment_core.explain import keras_model
    from sentiment_core.inference import Engine
    from sentiment_core.runs import SHIPPED_DIR, load_run, run_dirs

    paths = [Path(p) for p in sys.argv[1:]] or run_dirs(SHIPPED_DIR)
    text = review_of()
    print(f"review: {len(text.split())} words\n")
    print("| run | NumPy predict p50 / p95, ms | Keras model.predict p50, ms | Keras model(x) p50, ms "
          "| fresh process RSS, NumPy path, MB | fresh process RSS, Keras, MB |")
    print("|---|---|---|---|---|---|")
    for path in sorted(paths):
        run = load_run(path)
        engine = Engine.from_run(run)
        model = keras_model(run)
        ours = timed(lambda e=engine: e.predict([text]))
        ids = engine.encode([text])
        keras_predict = timed(lambda m=model, e=engine: m.predict(e.encode([text]), verbose=0), repeats=50)
        keras_call = timed(lambda m=model, e=engine: np.asarray(m(e.encode([text]), training=False)), repeats=50)
        keras_p = float(model.predict(ids, verbose=0).mean(axis=-1)[0])  # an ensemble predicts its members' mean
        gap = abs(keras_p - float(engine.predict([text])[0]))
        light, heavy = fresh(FRESH_NUMPY, str(path), text), fresh(FRESH_KERAS, str(path), text)
        assert not light["imported"], light
        print(f"| {path.name} | {ours[0]:.2f} / {ours[1]:.2f} | {keras_predict[0]:.1f} | {keras_call[0]:.1f} "
              f"| {light['rss_mb']:.0f} | {heavy['rss_mb']:.0f} |")
        print(f"  (|p_numpy - p_keras| = {gap:.2e})", file=sys.stderr)
    print(json.dumps({"note": "NumPy path imported none of tensorflow/keras/jax"}))


if __name__ == "__main__":
    main()
