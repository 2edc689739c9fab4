"""On a GPU: which recurrent layers take the cuDNN kernel, how fast they train, and whether the
NumPy engine still matches Keras there.

    KERAS_BACKEND=jax python benchmarks/gpu_check.py [SAMPLES]   # also: torch, tensorflow; SAMPLES=0: parity only
    GPU_CHECK_ONLY='post-padded|unmasked' KERAS_BACKEND=torch python benchmarks/gpu_check.py 2048   # some variants

For each variant it builds our model (sentiment_core.models.build_model), trains two epochs on
random token ids and reports the path every recurrent layer took: "backend kernel" when the
backend's own fused implementation ran (cuDNN on a GPU with TensorFlow or torch; JAX has
jax.experimental.rnn for LSTM and a scan for unmasked GRU), else Keras' generic loop. It then loads the shipped
runs into Keras on the GPU and compares their probabilities with the NumPy engine's.
Prints one JSON object per line.
"""

# ruff: noqa: I001  (sentiment_core must come before keras: it sets the default backend)
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import sentiment_core  # noqa: E402, F401  (sets the default backend)
import keras  # noqa: E402
from keras.src import backend as keras_backend  # noqa: E402

from sentiment_core.config import Config  # noqa: E402
from sentiment_core.models import build_model  # noqa: E402

from epoch_timer import epoch_seconds  # noqa: E402  (benchmarks/, next to this script)

PATHS: list[str] = []


def _record(name: str):
    """Wrap backend.lstm / backend.gru: the layers call them first and fall back on NotImplementedError."""
    original = getattr(keras_backend, name)

    def wrapped(*args, **kwargs):
        try:
            out = original(*args, **kwargs)
        except NotImplementedError as e:
            PATHS.append(f"{name}: generic loop ({str(e)[:60] or 'not supported'})")
            raise
        except Exception as e:  # an error inside the fused kernel, e.g. cuDNN's right-padding assertion
            PATHS.append(f"{name}: cudnn raised {type(e).__name__}: {str(e)[:120]}")
            raise
        PATHS.append(f"{name}: backend kernel")
        return out

    setattr(keras_backend, name, wrapped)


def device_name() -> str:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        return str(jax.devices()[0])
    if backend == "torch":
        import torch
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import tensorflow as tf
    return str(tf.config.list_logical_devices("GPU") or "cpu")


def speed(config: Config, samples: int = 8192) -> dict:
    rng = np.random.default_rng(0)
    lengths = rng.integers(config.maxlen // 4, config.maxlen + 1, samples)
    x = rng.integers(2, config.vocab_size, (samples, config.maxlen)).astype("int32")
    for row, n in zip(x, lengths, strict=True):
        (row[: config.maxlen - n] if config.padding == "pre" else row[n:])[:] = 0
    y = rng.integers(0, 2, samples).astype("float32")
    PATHS.clear()
    keras.utils.set_random_seed(0)
    model = build_model(config)
    try:
        times = epoch_seconds(model, 2, x=x, y=y, batch_size=config.batch_size)
    except Exception as e:  # report, do not hide: this is what a user on this backend would hit
        return {"error": f"{type(e).__name__}: {str(e)[:300]}", "paths": sorted(set(PATHS))}
    return {"paths": sorted(set(PATHS)), "samples_per_s": round(samples / times[-1]),
            "first_epoch_s": round(times[0], 2)}


VARIANTS = {
    "notebook SimpleRNN(32), maxlen 100": Config(vocab_size=10_000, maxlen=100, cell="simple_rnn", batch_size=32),
    "LSTM(32) masked, pre-padded (our default)": Config(cell="lstm", maxlen=200, batch_size=64),
    "LSTM(32) masked, post-padded": Config(cell="lstm", maxlen=200, batch_size=64, padding="post"),
    "LSTM(32) unmasked, pre-padded": Config(cell="lstm", maxlen=200, batch_size=64, mask=False),
    "GRU(32) masked, pre-padded": Config(cell="gru", maxlen=200, batch_size=64),
    "GRU(32) masked, post-padded": Config(cell="gru", maxlen=200, batch_size=64, padding="post"),
    "GRU(32) unmasked, pre-padded": Config(cell="gru", maxlen=200, batch_size=64, mask=False),
    "best preset shape: BiGRU(32)+bigrams, max pool, maxlen 400": Config(
        vocab_size=20_000, maxlen=400, cell="gru", bigram_buckets=30_000, bidirectional=True, pooling="max",
        dropout=0.5, word_dropout=0.3, optimizer="adam", batch_size=64),
    "best preset shape, post-padded": Config(
        vocab_size=20_000, maxlen=400, cell="gru", bigram_buckets=30_000, bidirectional=True, pooling="max",
        dropout=0.5, word_dropout=0.3, optimizer="adam", batch_size=64, padding="post"),
}


def parity() -> None:
    from sentiment_core.data import load_raw
    from sentiment_core.explain import keras_model
    from sentiment_core.inference import Engine
    from sentiment_core.runs import SHIPPED_DIR, load_run
    from sentiment_core.text import encode

    _, test = load_raw("sample")
    texts = list(test.texts[:256])
    for path in sorted(p for p in SHIPPED_DIR.iterdir() if p.is_dir()):
        run = load_run(path)
        c = run.config
        ids = encode(texts, run.vocab, c.maxlen, c.padding, c.truncating)
        numpy_p = Engine(c, run.vocab, run.weights).predict_ids(ids)
        model = keras_model(run)
        PATHS.clear()
        # An ensemble's Keras model gives one probability per member; its prediction is their mean.
        keras_p = np.asarray(model.predict(ids, batch_size=128, verbose=0)).reshape(len(ids), -1).mean(axis=1)
        print(json.dumps({"parity": path.name, "reviews": len(texts),
                          "max_abs_diff": float(np.abs(keras_p - numpy_p).max()),
                          "paths": sorted(set(PATHS))}), flush=True)


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
    _record("lstm")
    _record("gru")
    print(json.dumps({"backend": keras.backend.backend(), "keras": keras.__version__, "device": device_name(),
                      "matmul_precision": os.environ.get("JAX_DEFAULT_MATMUL_PRECISION", "default")}), flush=True)
    only = os.environ.get("GPU_CHECK_ONLY", "")  # e.g. "post-padded|unmasked"
    chosen = {n: c for n, c in VARIANTS.items() if not only or any(part in n for part in only.split("|"))}
    for name, config in chosen.items() if samples else ():
        print(json.dumps({"variant": name, **speed(config, samples)}), flush=True)
    parity()


if __name__ == "__main__":
    main()
