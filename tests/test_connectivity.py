"""Connectivity (sentiment_core/connectivity.py): the NumPy backward pass against Keras' autodiff, within 1e-5.

The models are built from a config with random weights, large enough that every tanh and sigmoid works
off its linear part: no training needed, so every shape costs a second or two.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from conftest import ENSEMBLE, MODEL_SHAPES, tiny

from sentiment_core import connectivity, gradients, runs
from sentiment_core.explain import keras_model
from sentiment_core.inference import Engine
from sentiment_core.models import build_model, export_weights, load_weights, member_prefix, quantize_embeddings
from sentiment_core.text import NoWordsError, Vocabulary, pad

# Every model shape (conftest's, less three that others cover: lstm by post_lstm, gru by stacked_gru_last,
# no_mask_gru by no_mask_mean_lstm), an ensemble, and two more ways of reading the top layer.
SHAPES = {**{k: v for k, v in MODEL_SHAPES.items() if k not in ("lstm", "gru", "no_mask_gru")},
          "ensemble": ENSEMBLE, "stacked_gru_last": dict(cell="gru", layers=2),
          "bi_last_lstm_mean": dict(cell="lstm", bidirectional=True, pooling="mean", padding="post")}
LENGTHS = [40, 31, 12, 5, 1, 40, 23]  # maxlen is 40: some full rows, some padded, one word alone


def random_model(config, seed=0):
    """A Keras model of `config` with random weights, and the NumPy engine on the same (stored) weights."""
    model = build_model(config, compile=False)
    rng = np.random.default_rng(seed)
    weights = {}
    for name, value in export_weights(model).items():
        fan_in = value.shape[-2] if value.ndim >= 2 and not name.startswith("embedding") else 1
        weights[name] = rng.normal(0, 1.2 / np.sqrt(fan_in), value.shape).astype(np.float32)
    load_weights(model, weights)
    stored = quantize_embeddings(model, config.embedding_rank) if config.embedding_rank else weights
    vocab = Vocabulary(("", "[UNK]", *(f"w{i}" for i in range(config.vocab_size - 2))))
    return model, Engine(config, vocab, stored)


def token_ids(config, seed=1):
    rng = np.random.default_rng(seed)
    rows = [rng.integers(1, config.vocab_size, n).tolist() for n in LENGTHS]
    return pad(rows, config.maxlen, config.padding, config.truncating)


def member_layers(model, member):
    """The layers of one member after its embedding, in order."""
    def owner(name):
        found = re.match(r"m(\d+)_", name)
        return int(found.group(1)) - 1 if found else 0
    skip = ("token_ids", "embedding", "word_dropout", "members")
    return [layer for layer in model.layers
            if owner(layer.name) == member and layer.name.removeprefix(member_prefix(member)) not in skip]


def keras_score_gradients(model, config, ids):
    """∂ logit(mean of the members' probabilities) / ∂ each member's embedded input, by Keras' autodiff."""
    mask = keras.ops.convert_to_tensor(ids != 0) if config.mask else None
    embedded = [np.asarray(model.get_layer(member_prefix(m) + "embedding")(ids)) for m in range(config.members)]
    stacks = [member_layers(model, m) for m in range(config.members)]

    def total_score(xs):
        p = keras.ops.mean(keras.ops.stack([gradients._apply(stack, x, mask)[:, 0]
                                            for stack, x in zip(stacks, xs, strict=True)]), axis=0)
        return keras.ops.sum(keras.ops.log(p) - keras.ops.log(1.0 - p))

    if keras.backend.backend() == "jax":  # compiled: several times quicker than op by op
        import jax

        return np.stack([np.asarray(g) for g in jax.jit(jax.grad(total_score))(embedded)])
    return gradients._grad(total_score, embedded)


def assert_close(ours, theirs, tolerance=1e-5):
    """Within `tolerance` of the largest gradient (and it must not be a vanishing one)."""
    scale = float(np.abs(theirs).max())
    assert scale > 1e-3
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=tolerance * max(scale, 1.0))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_gradients_match_keras(shape):
    config = tiny(**SHAPES[shape])
    model, engine = random_model(config)
    ids = token_ids(config)
    ours = connectivity.score_gradients(engine, ids)
    theirs = keras_score_gradients(model, config, ids)
    assert ours.shape == theirs.shape == (config.members, len(ids), config.maxlen, config.embedding_dim)
    assert_close(ours, theirs)
    if config.mask:  # padding is not read, so the score does not depend on it
        assert not ours[:, ids == 0].any()


def test_connectivity_is_the_norm_over_members_and_matches_the_reading(gru_run):
    config = tiny(**ENSEMBLE)
    _, engine = random_model(config, seed=3)
    ids = token_ids(config)
    grads = connectivity.score_gradients(engine, ids)
    np.testing.assert_allclose(connectivity.connectivity_of_ids(engine, ids),
                               np.sqrt((grads.astype(np.float64) ** 2).sum(axis=(0, 3))), rtol=1e-6)
    engine = Engine.from_run(gru_run)
    text = "a wonderful film, though far too long and rather dull"
    tokens, values = connectivity.connectivity(engine, text)
    assert [t.word for t in tokens] == [t.word for t in engine.read(text).tokens]
    assert values.shape == (len(tokens),) and (values > 0).all()
    with pytest.raises(NoWordsError):
        connectivity.connectivity(engine, "!!! ???")


def test_by_distance_counts_from_the_last_word(gru_run):
    engine = Engine.from_run(gru_run)
    c = engine.config
    lists = [list(range(2, 2 + n)) for n in (c.maxlen + 5, 20, 33)]  # the first is cut to maxlen, as the model reads it
    curve = connectivity.by_distance(engine, lists, 20)
    values = connectivity.connectivity_of_ids(engine, pad(lists, c.maxlen, c.padding, c.truncating))
    expected = np.mean([row[engine.positions(min(len(ids), c.maxlen))][::-1][:20]
                        for row, ids in zip(values, lists, strict=True)], axis=0)
    np.testing.assert_allclose(curve, expected, rtol=1e-6)
    assert curve[0] == pytest.approx(np.mean([values[i][engine.positions(min(len(x), c.maxlen))][-1]
                                              for i, x in enumerate(lists)]), rel=1e-6)
    with pytest.raises(ValueError, match="at least 30 words"):
        connectivity.by_distance(engine, lists, 30)


def test_the_shipped_notebook_matches_keras(sample_halves):
    """The notebook as users read it, whole reviews. (best's shape, an ensemble of bidirectional GRUs with
    bigram tables cut to a rank and max pooling, is the `ensemble` and `bigram_rank_gru` shapes above; its
    Keras model takes ~30 s to build here.)"""
    run = runs.load_run(runs.SHIPPED_DIR / "notebook")  # shipped with the repository: missing is a failure
    engine = Engine.from_run(run)
    _, test = sample_halves
    ids = engine.encode([t for t in test.texts if len(engine.tokens(t)) >= 100][:2])
    model = keras_model(run)
    assert_close(connectivity.score_gradients(engine, ids), keras_score_gradients(model, run.config, ids))
