"""Our pipeline side by side with the seed notebook's, in one run, on the same machine.

    python benchmarks/pipeline.py --data ../shared/data/imdb            # full IMDB
    python benchmarks/pipeline.py --data sample                          # a quick look

Prints a table of ratios (absolute seconds are noisy on shared 2-core machines):
preprocessing (Tokenizer + pad_sequences vs ours), the cache hit, and seconds per
epoch of the notebook's SimpleRNN(32) model (tf_keras as the notebook runs it vs our
Keras 3 backend), plus LSTM/GRU samples/s. Both pipelines see the same 40k/10k
split of the merged reviews (the notebook's protocol). Each side of each measurement
runs in a fresh process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED_PREP = r"""
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from tf_keras.preprocessing.sequence import pad_sequences
from tf_keras.preprocessing.text import Tokenizer
texts = json.load(open(sys.argv[1], encoding="utf-8"))
t0 = time.perf_counter()
tokenizer = Tokenizer(num_words=10_000)
tokenizer.fit_on_texts(texts["train"])
x = pad_sequences(tokenizer.texts_to_sequences(texts["train"] + texts["test"]), maxlen=100)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

OUR_PREP = r"""
import json, os, sys, time
import numpy as np
import sentiment_core.runner  # noqa: what a training job has loaded (Keras, JAX) when it tokenizes
from sentiment_core.text import encode_splits
texts = json.load(open(sys.argv[1], encoding="utf-8"))
t0 = time.perf_counter()
# As a training job does: this process and one spawned tokenizing process per further core.
_, arrays = encode_splits(texts["train"], [texts["test"]], 10_000, 100, workers=os.cpu_count())
seconds = time.perf_counter() - t0
np.save(sys.argv[2], np.concatenate(arrays))
print(json.dumps({"seconds": seconds}))
"""

SEED_EPOCH = r"""
import json, sys, time, numpy as np, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tf_keras as keras
from tf_keras import layers
d = np.load(sys.argv[1])
x, y = d["x"], d["y"]
model = keras.Sequential([layers.Embedding(10000, 32, input_length=100), layers.SimpleRNN(32),
                          layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
times = []
class T(keras.callbacks.Callback):
    def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
model.fit(x, y, epochs=int(sys.argv[2]), batch_size=32, validation_split=0.2, verbose=0, callbacks=[T()])
one = x[:1]
model.predict(one, verbose=0)
t = []
for _ in range(30):
    t0 = time.perf_counter(); model.predict(one, verbose=0); t.append(time.perf_counter() - t0)
print(json.dumps({"epoch_seconds": times, "predict_ms_p50": 1000 * float(np.median(t))}))
"""

OUR_EPOCH = r"""
import json, sys, time, numpy as np
from sentiment_core.config import PRESETS
from sentiment_core.models import build_model
import keras
d = np.load(sys.argv[1])
x, y = d["x"], d["y"]
results = {"backend": keras.backend.backend()}
seed_like = PRESETS["notebook"].replace(batch_size=32)  # the seed's batch size, for samples/s
models = (("notebook", PRESETS["notebook"]), ("notebook_batch32", seed_like),
          ("lstm", seed_like.replace(cell="lstm")), ("gru", seed_like.replace(cell="gru")))
for name, cfg in models[:2] if sys.argv[3:] == ["notebook"] else models:
    keras.utils.set_random_seed(0)
    model = build_model(cfg)
    times = []
    class T(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
        def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
    epochs = int(sys.argv[2]) if name.startswith("notebook") else 2
    model.fit(x, y, epochs=epochs, batch_size=cfg.batch_size, validation_split=0.2, verbose=0, callbacks=[T()])
    n_train = int(len(x) * 0.8)
    results[name] = {"epoch_seconds": times, "samples_per_second": n_train / min(times)}
print(json.dumps(results))
"""


def run_script(source: str, *args: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", source, *args], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def preprocessing(texts_train: list[str], texts_test: list[str], out: Path, repeats: int) -> dict:
    """Each tokenizer in a fresh process of its own, as each runs for real: the seed's in a notebook
    kernel with tf_keras loaded, ours in a training job with Keras and JAX loaded (neither inherits the
    other's heap). Each side `repeats` times, alternating; the median counts (the first of a series of
    memory-heavy processes here often runs 20-30% slower). Writes our encoded reviews to `out`."""
    texts = out.with_suffix(".json")
    texts.write_text(json.dumps({"train": texts_train, "test": texts_test}), encoding="utf-8")
    seed, ours = [], []
    for _ in range(repeats):
        seed.append(run_script(SEED_PREP, str(texts))["seconds"])
        ours.append(run_script(OUR_PREP, str(texts), str(out))["seconds"])
    return {"seed_seconds": float(np.median(seed)), "ours_seconds": float(np.median(ours)),
            "seed_runs": seed, "ours_runs": ours, "ours_x": np.load(out)}


def cache_hit(data: str) -> float:
    from sentiment_core.config import PRESETS
    from sentiment_core.features import prepare

    with tempfile.TemporaryDirectory() as cache:
        prepare(data, PRESETS["notebook"], Path(cache))
        t0 = time.perf_counter()
        encoded = prepare(data, PRESETS["notebook"], Path(cache))
        assert encoded.cached
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per model (the last is timed)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh processes per tokenizer and per epoch timing (the median counts)")
    args = parser.parse_args()

    from sentiment_core import data as datamod

    train, test = datamod.load_raw(args.data)
    split = datamod.make_splits(train, test, split="notebook", validation_fraction=0.0001, seed=42)
    train_texts = split.train.texts + split.validation.texts
    train_labels = np.concatenate([split.train.labels, split.validation.labels])
    all_texts = train_texts + split.test.texts

    with tempfile.TemporaryDirectory() as tmp:
        prep = preprocessing(train_texts, split.test.texts, Path(tmp) / "ours_x.npy", args.repeats)
        hit = cache_hit(args.data)
        rows = [("preprocess 50k reviews (fit + encode + pad), s, median of runs", prep["seed_seconds"],
                 prep["ours_seconds"]),
                ("second run, same text settings (cache), s", prep["seed_seconds"], hit)]
        path = Path(tmp) / "xy.npz"
        np.savez(path, x=prep["ours_x"][: len(train_texts)], y=train_labels)
        # Each side's epochs `repeats` times in fresh processes, alternating; the first of ours also
        # times LSTM and GRU. A run's figure is its best epoch (the first compiles); the median run counts.
        seed_runs, our_runs = [], []
        for repeat in range(args.repeats):
            seed_runs.append(run_script(SEED_EPOCH, str(path), str(args.epochs)))
            our_runs.append(run_script(OUR_EPOCH, str(path), str(args.epochs), *(["notebook"] if repeat else [])))
        seed, ours = seed_runs[0], our_runs[0]
        ours_tf = run_script(OUR_EPOCH, str(path), "2", env={"KERAS_BACKEND": "tensorflow"})
    seed_epochs = [min(r["epoch_seconds"]) for r in seed_runs]
    our_epochs = {name: [min(r[name]["epoch_seconds"]) for r in our_runs] for name in ("notebook", "notebook_batch32")}
    rows.append(("notebook preset epoch (batch 64), s (best epoch, median of runs)", float(np.median(seed_epochs)),
                 float(np.median(our_epochs["notebook"]))))
    rows.append(("the same at the seed's batch 32, s", float(np.median(seed_epochs)),
                 float(np.median(our_epochs["notebook_batch32"]))))
    n_train = int(len(train_texts) * 0.8)
    print(f"\nIMDB source: {args.data}; {len(all_texts)} reviews; {n_train} trained per epoch; "
          f"our backend: {ours['backend']}\n")
    print("| measurement | seed notebook | ours | speed-up |\n|---|---|---|---|")
    for name, seed_value, our_value in rows:
        print(f"| {name} | {seed_value:.2f} | {our_value:.3f} | {seed_value / our_value:.1f}x |")
    print(f"| seed model.predict, one review, ms (p50) | {seed['predict_ms_p50']:.1f} | see inference.py | |")
    print("\n| model (maxlen 100, batch 32) | samples/s, ours (JAX) | samples/s, Keras 3 on TensorFlow |")
    print("|---|---|---|")
    for name in ("notebook_batch32", "lstm", "gru"):
        label = {"notebook_batch32": "SimpleRNN (notebook)", "lstm": "LSTM", "gru": "GRU"}[name]
        print(f"| {label} | {ours[name]['samples_per_second']:.0f} | {ours_tf[name]['samples_per_second']:.0f} |")
    print(f"\ntokenizing runs, s: seed {[round(t, 2) for t in prep['seed_runs']]}, "
          f"ours {[round(t, 3) for t in prep['ours_runs']]}")
    print(f"epoch runs (best epoch), s: seed {[round(t, 2) for t in seed_epochs]}, ours (batch 64) "
          f"{[round(t, 3) for t in our_epochs['notebook']]}, ours (batch 32) "
          f"{[round(t, 3) for t in our_epochs['notebook_batch32']]}")
    print("\nraw:", json.dumps({"seed": seed, "ours": ours, "ours_tensorflow_backend": ours_tf}))


if __name__ == "__main__":
    main()
