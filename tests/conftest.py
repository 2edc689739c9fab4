"""Shared fixtures for the engine's tests.

Everything a test writes lands under one temporary folder: the environment below is
set before `sentiment_core` is imported, so neither ~/.cache nor artifacts/ is touched.
Models are tiny (vocabulary 2000, 40 words, 8 units, one epoch on the bundled sample).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="sentiment-tests-"))
os.environ["SENTIMENT_RUNS_DIR"] = str(_TMP / "runs")
os.environ["SENTIMENT_CACHE"] = str(_TMP / "cache")
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from sentiment_core import features, runs  # noqa: E402
from sentiment_core.config import Config  # noqa: E402

assert Path(runs.RUNS_DIR).is_relative_to(_TMP), runs.RUNS_DIR
assert Path(features.DEFAULT_CACHE).is_relative_to(_TMP), features.DEFAULT_CACHE

TINY = dict(vocab_size=2000, maxlen=40, embedding_dim=8, units=8, epochs=1, batch_size=64, optimizer="adam",
            learning_rate=5e-3, early_stopping=False)

# Every model shape the engine builds, as changes to `tiny`: each cell, pooling last/max/mean, stacked,
# bidirectional, unmasked, post-padded, bigram tables cut to a rank. Ensembles: ENSEMBLE.
MODEL_SHAPES: dict[str, dict] = {
    "simple_rnn": dict(cell="simple_rnn"),
    "lstm": dict(cell="lstm"),
    "gru": dict(cell="gru"),
    "stacked_max_pool_lstm": dict(cell="lstm", layers=2, pooling="max"),
    "bidirectional_gru": dict(cell="gru", bidirectional=True),
    "mean_pool_simple_rnn": dict(cell="simple_rnn", pooling="mean"),
    "no_mask_gru": dict(cell="gru", mask=False),
    "no_mask_mean_lstm": dict(cell="lstm", mask=False, pooling="mean"),
    "post_lstm": dict(cell="lstm", padding="post", truncating="post"),
    "bi_stacked_post_max_lstm": dict(cell="lstm", layers=2, bidirectional=True, padding="post", pooling="max"),
    "bigram_rank_gru": dict(cell="gru", bigram_buckets=300, embedding_rank=3),
    # The lean loop both ways, with zero output for masked steps (as Bidirectional asks).
    "bi_stacked_post_simple_rnn": dict(cell="simple_rnn", layers=2, bidirectional=True, padding="post"),
}

ENSEMBLE = dict(members=3, bidirectional=True, pooling="max", bigram_buckets=500, word_dropout=0.2)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_TMP, ignore_errors=True)


def tiny(**changes) -> Config:
    return Config(**{**TINY, **changes})


@pytest.fixture(scope="session")
def tiny_config():
    """Factory: a Config small enough to train in a couple of seconds."""
    return tiny


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return _TMP / "cache"


@pytest.fixture(scope="session")
def sample_halves():
    from sentiment_core import data

    return data.load_raw("sample")


@pytest.fixture(scope="session")
def trained(tmp_path_factory, cache_dir, worker_id):
    """Factory: `trained(cell="lstm", layers=2)` is the run of `tiny(...)`, trained once per test run.

    Under pytest-xdist the workers share one folder (their base temp's parent, new for each run): a shape one
    worker trained, the other loads, and a file lock makes it wait while the first trains. Every shape is
    wanted by several files (test_inference, test_no_words, test_lab...), which land on either worker.
    """
    from filelock import FileLock

    from sentiment_core.runner import train_and_save

    shared = worker_id != "master"
    folder = tmp_path_factory.getbasetemp().parent / "trained" if shared else tmp_path_factory.mktemp("trained")
    folder.mkdir(exist_ok=True)
    done: dict[tuple, runs.Run] = {}

    def get(**changes) -> runs.Run:
        key = tuple(sorted(changes.items()))
        if key not in done:
            path = folder / ("run-" + hashlib.sha1(repr(key).encode()).hexdigest()[:12])
            with FileLock(str(path) + ".lock"):
                done[key] = runs.load_run(path) if path.exists() else train_and_save(
                    tiny(**changes), "sample", path, cache_dir=cache_dir, grad_probe=False)
        return done[key]

    return get


@pytest.fixture(scope="session")
def gru_run(trained) -> runs.Run:
    return trained(cell="gru")
