"""The stored-weight format (sentiment_core/weights.py), which saved runs and both readers depend on."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from sentiment_core import runs
from sentiment_core.weights import (
    BASIS,
    BIGRAM_HASH,
    BIGRAMS,
    EMBEDDING,
    HEAD_BIAS,
    HEAD_KERNEL,
    RNN_PARTS,
    SCALE,
    bigram_ids,
    dequantize_tables,
    quantize_tables,
    rnn_key,
)


def test_numpy_and_keras_bigram_ids_agree():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 200_000, size=(16, 40)).astype(np.int32)  # up to the largest vocabulary allowed
    ids[:3, :10] = 0  # padding, as a review shorter than maxlen has
    for buckets in (7, 300, 1_000_000):
        keras_ids = np.asarray(ops.convert_to_numpy(bigram_ids(ops.convert_to_tensor(ids), buckets, ops)))
        numpy_ids = bigram_ids(ids.astype(np.int64), buckets, np)
        np.testing.assert_array_equal(keras_ids, numpy_ids)
    first = bigram_ids(ids.astype(np.int64), 1_000_000, np)[:, 0]
    np.testing.assert_array_equal(first, ids[:, 0] % 1_000_000)  # the first word's previous word is padding
    assert bigram_ids(np.array([[3, 5]]), 1_000_000, np)[0, 1] == 3 * BIGRAM_HASH + 5


def test_embedding_tables_are_stored_as_int8_steps_within_half_a_step():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(50, 8)).astype(np.float32)
    table[3] = 0.0
    kernel = rng.normal(size=(8, 24)).astype(np.float32)
    stored = quantize_tables({"embedding": table, "rnn_1/forward/kernel": kernel})
    assert stored["embedding"].dtype == np.int8 and stored["embedding/scale"].shape == (50, 1)
    assert stored["rnn_1/forward/kernel"] is kernel  # only embeddings are rounded
    back = dequantize_tables(stored)
    assert back.keys() == {"embedding", "rnn_1/forward/kernel"}
    assert (np.abs(back["embedding"] - table) <= stored["embedding/scale"] / 2 + 1e-7).all()
    assert (back["embedding"][3] == 0).all() and np.abs(stored["embedding"]).max() == 127
    np.testing.assert_array_equal(quantize_tables(back)["embedding"], stored["embedding"])  # stable
    members = quantize_tables({"embedding": np.stack([table, 3 * table])})  # an ensemble: a scale per member and row
    assert members["embedding/scale"].shape == (2, 50, 1)
    nonzero = np.arange(50) != 3  # an all-zero row keeps scale 1
    np.testing.assert_allclose(members["embedding/scale"][1][nonzero], 3 * members["embedding/scale"][0][nonzero],
                               rtol=1e-3)  # float16 scales


def test_embedding_tables_cut_to_a_rank_keep_their_strongest_directions():
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(2, 300, 3)) @ rng.normal(size=(2, 3, 16))  # two members, rank 3 each
    tables = (signal + 0.01 * rng.normal(size=signal.shape)).astype(np.float32)
    stored = quantize_tables({"embedding": tables, "embedding/bigrams": tables[:, :100]}, rank=3)
    assert stored["embedding"].shape == (2, 300, 3) and stored["embedding"].dtype == np.int8
    assert stored["embedding/basis"].shape == (2, 3, 16) and stored["embedding/bigrams/basis"].shape == (2, 3, 16)
    back = dequantize_tables(stored)
    assert back.keys() == {"embedding", "embedding/bigrams"} and back["embedding"].shape == (2, 300, 16)
    for name, table in (("embedding", tables), ("embedding/bigrams", tables[:, :100])):
        assert np.linalg.norm(back[name] - table) / np.linalg.norm(table) < 0.02  # noise and rounding only
    cut_too_far = dequantize_tables(quantize_tables({"embedding": tables}, rank=1))["embedding"]
    assert np.linalg.norm(cut_too_far - tables) / np.linalg.norm(tables) > 0.2  # a rank that drops signal shows
    whole = quantize_tables({"embedding": tables}, rank=16)  # no smaller than the table: kept whole
    assert "embedding/basis" not in whole and whole["embedding"].shape == tables.shape


@pytest.mark.parametrize("name", ["best", "notebook"])
def test_runs_saved_before_hold_exactly_the_names_of_the_format(name):
    run = runs.load_run(runs.SHIPPED_DIR / name)  # saved before weights.py existed
    c = run.config
    tables = [EMBEDDING, BIGRAMS] if c.bigram_buckets else [EMBEDDING]
    directions = ("forward", "backward") if c.bidirectional else ("forward",)
    names = {*tables, HEAD_KERNEL, HEAD_BIAS,
             *(rnn_key(layer, d, part) for layer in range(1, c.layers + 1) for d in directions for part in RNN_PARTS),
             *(t + SCALE for t in tables), *(t + BASIS for t in tables if c.embedding_rank)}
    assert set(run.weights) == names
