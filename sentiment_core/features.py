"""Encoded arrays for training, cached on disk by source and text settings.

A second run with the same text settings skips reading and tokenizing the
reviews altogether and starts in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data as datamod
from . import short_texts
from .config import Config
from .text import Vocabulary, encode_splits

DEFAULT_CACHE = Path(os.environ.get("SENTIMENT_CACHE", Path.home() / ".cache" / "sentiment_lab"))


ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "x_test_short")


@dataclass(frozen=True)
class Encoded:
    vocab: Vocabulary
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_test_short: np.ndarray  # the test reviews cut to their first and last sentence (short_texts.py)
    source: str
    cached: bool = False


def cache_key(data: str, config: Config) -> str:
    key = json.dumps({"source": datamod.describe_source(data), **config.text_settings,
                      "short_words": short_texts.MAX_WORDS}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def encode_dataset(dataset: datamod.Dataset, config: Config, workers: int | None = None) -> Encoded:
    shorts = [short_texts.shorten(text) for text in dataset.test.texts]
    cropped = np.sort(np.random.default_rng(config.seed).permutation(len(dataset.train))[
        : int(round(config.short_crops * len(dataset.train)))])
    crops = [short_texts.shorten(dataset.train.texts[i]) for i in cropped]
    vocab, (x_train, x_val, x_test, x_test_short, x_crops) = encode_splits(
        dataset.train.texts, [dataset.validation.texts, dataset.test.texts, shorts, crops], config.vocab_size,
        config.maxlen, config.padding, config.truncating, workers)
    # the crops join the training reviews (the vocabulary is the reviews' own); training shuffles them in
    x_train = np.concatenate([x_train, x_crops]) if len(crops) else x_train
    y_train = np.concatenate([dataset.train.labels, dataset.train.labels[cropped]])
    return Encoded(vocab, x_train, y_train, x_val, dataset.validation.labels, x_test,
                   dataset.test.labels, x_test_short, dataset.source)


def prepare(data: str, config: Config, cache_dir: Path | None = DEFAULT_CACHE,
            tfds_dir: str | None = None) -> Encoded:
    """Load, split and encode `data` for `config`, through the cache when one is given."""
    path = Path(cache_dir) / f"{cache_key(data, config)}.npz" if cache_dir else None
    if path and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            vocab = Vocabulary(tuple(json.loads(str(arrays.pop("vocab")))))
            return Encoded(vocab, **arrays, source=data, cached=True)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # a damaged cache entry is rebuilt, never trusted
    dataset = datamod.load(data, config.split, config.validation_fraction, config.seed, tfds_dir)
    encoded = encode_dataset(dataset, config)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, vocab=np.asarray(json.dumps(list(encoded.vocab.words))),
                     **{k: getattr(encoded, k) for k in ARRAYS})
        os.replace(tmp, path)
    return encoded
