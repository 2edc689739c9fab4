"""The NumPy engine against Keras: probabilities and every hidden state within 1e-5, for every kind of model.

The reference is the trained model as Keras saved it (model.keras), so a mistake in exporting
the weights to weights.npz cannot hide behind the same mistake in reading them back.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import MODEL_SHAPES
from keras import layers

from sentiment_core.explain import keras_model
from sentiment_core.inference import GATES, Engine
from sentiment_core.models import RNN_LAYERS, recurrent_layers
from sentiment_core.text import NoWordsError, pad

ATOL = 1e-5

VARIANTS = MODEL_SHAPES

SHORT = ["great movie", "awful", "not good at all, but the acting was fine", "a wonderful, moving film",
         "horriblely dull<br />and far too long"]

TEXT = "This movie was horriblely good: a wonderful, moving film, though far too long."


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request, trained):
    run = trained(**VARIANTS[request.param])
    reference = keras.saving.load_model(run.path / "model.keras")
    return request.param, run, Engine.from_run(run, calibrated=False), reference


@pytest.fixture(scope="module")
def ids(sample_halves, trained):
    """Sample reviews (longer than maxlen) and short ones (padded), encoded per variant."""
    _, test = sample_halves
    texts = test.texts[:20] + SHORT
    return lambda engine: engine.encode(texts)


def keras_sequences(model, config, token_ids):
    """Per recurrent layer and direction, Keras' hidden states (B, T, U), and LSTM cell states when unidirectional."""
    x = model.get_layer("embedding")(token_ids)
    mask = keras.ops.convert_to_tensor(token_ids != 0) if config.mask else None
    found = []
    for layer in recurrent_layers(model):
        if isinstance(layer, layers.Bidirectional):
            clone = layers.Bidirectional(RNN_LAYERS[config.cell](config.units, return_sequences=True), merge_mode=None)
            clone(x, mask=mask)
            clone.set_weights(layer.get_weights())
            forward, backward = clone(x, mask=mask)
            found.append({"forward": {"h": np.asarray(forward)}, "backward": {"h": np.asarray(backward)}})
        else:
            clone = RNN_LAYERS[config.cell](config.units, return_sequences=True, return_state=True)
            clone(x, mask=mask)
            clone.set_weights(layer.get_weights())
            sequence, *final = clone(x, mask=mask)
            states = {"h": np.asarray(sequence), "final": [np.asarray(s) for s in final]}
            if config.cell == "lstm":
                states["c"] = step_lstm_cell(clone.cell, np.asarray(x), mask)
            found.append({"forward": states})
        x = layer(x, mask=mask, training=False)
    return found


def step_lstm_cell(cell, x, mask):
    """Keras' own LSTMCell, stepped by hand to see the cell state at every step (Keras returns only the last)."""
    batch, steps, _ = x.shape
    h = c = np.zeros((batch, cell.units), np.float32)
    keep_all = np.ones((batch, steps), bool) if mask is None else np.asarray(mask)
    cs = np.zeros((batch, steps, cell.units), np.float32)
    for t in range(steps):
        _, (new_h, new_c) = cell(x[:, t], [h, c], training=False)
        keep = keep_all[:, t : t + 1]
        h, c = np.where(keep, np.asarray(new_h), h), np.where(keep, np.asarray(new_c), c)
        cs[:, t] = c
    return cs


def test_probabilities_match_keras(variant, ids):
    name, run, engine, reference = variant
    token_ids = ids(engine)
    expected = reference.predict(token_ids, verbose=0)[:, 0]
    got = engine.forward(token_ids)[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(keras_model(run).predict(token_ids, verbose=0)[:, 0], expected, rtol=0, atol=ATOL)
    assert np.ptp(expected) > 1e-3  # a trained model, not a constant
    # the run's stored test metrics come from this same engine
    assert run.metrics["n"] == 1000 and 0.0 <= run.metrics["accuracy"] <= 1.0


def test_hidden_states_match_keras(variant, ids):
    name, run, engine, reference = variant
    config = run.config
    token_ids = ids(engine)
    real = token_ids != 0 if config.mask else np.ones(token_ids.shape, bool)
    assert (~real).any() or not config.mask  # some rows are padded
    _, _, traces = engine.forward(token_ids, trace=True)
    expected = keras_sequences(reference, config, token_ids)
    assert len(traces) == len(expected) == config.layers
    for layer, (ours, theirs) in enumerate(zip(traces, expected, strict=True), 1):
        assert set(ours) == set(theirs) == ({"forward", "backward"} if config.bidirectional else {"forward"})
        for direction in theirs:
            for state in ("h", "c"):
                if state in theirs[direction]:
                    np.testing.assert_allclose(ours[direction][state][real], theirs[direction][state][real],
                                               rtol=0, atol=ATOL, err_msg=f"{name} layer {layer} {direction} {state}")
            if "final" in theirs[direction]:  # Keras' returned states equal ours at the last real step
                last = np.array([np.flatnonzero(r)[-1] for r in real])
                rows = np.arange(len(token_ids))
                names = ("h", "c") if config.cell == "lstm" else ("h",)
                for state_name, final in zip(names, theirs[direction]["final"], strict=True):
                    np.testing.assert_allclose(ours[direction][state_name][rows, last], final, rtol=0, atol=ATOL)


def test_reading_gates_and_as_it_reads(variant):
    name, run, engine, _ = variant
    reading = engine.read(TEXT)
    n = len(reading.tokens)
    assert [t.word for t in reading.tokens][-2:] == ["too", "long"]
    assert [t.word for t in reading.tokens if t.oov] == ["horriblely"]
    assert reading.probability == pytest.approx(float(engine.predict([TEXT])[0]), abs=1e-7)
    for layer in reading.layers:
        for states in layer.values():
            assert set(states) == {"h", *(("c",) if run.config.cell == "lstm" else ()), *GATES[run.config.cell]}
            for state_name, values in states.items():
                assert values.shape == (n, run.config.units)
                if state_name in GATES[run.config.cell]:
                    assert values.min() >= 0.0 and values.max() <= 1.0, state_name
    assert reading.as_it_reads.shape == (n,)
    assert float(reading.as_it_reads[-1]) == pytest.approx(reading.probability, abs=1e-6)


def test_as_it_reads_is_the_probability_of_each_prefix(trained):
    """With a mask, a one-way model's state after token t is that of the review cut after t."""
    for name in ("gru", "mean_pool_simple_rnn", "stacked_max_pool_lstm", "post_lstm"):
        engine = Engine.from_run(trained(**VARIANTS[name]))
        reading = engine.read(TEXT)
        ids = [t.id for t in reading.tokens]
        c = engine.config
        prefixes = pad([ids[: t + 1] for t in range(len(ids))], c.maxlen, c.padding, c.truncating)
        np.testing.assert_allclose(reading.as_it_reads, engine.forward(prefixes)[0], rtol=0, atol=1e-6)


def test_occlusion_gives_one_value_per_token(gru_run):
    engine = Engine.from_run(gru_run)
    tokens, values = engine.occlusion(TEXT)
    assert len(tokens) == len(values) == len(engine.read(TEXT).tokens)
    assert np.isfinite(values).all() and np.abs(values).max() > 0
    # replacing an unknown word by the unknown id changes nothing
    assert values[[t.word for t in tokens].index("horriblely")] == 0.0
    tokens, removed = engine.occlusion(TEXT, mode="remove")
    words = [t.word for t in tokens]
    p = engine.predict([TEXT])[0]
    without_film = " ".join(w for i, w in enumerate(words) if i != words.index("film"))
    assert removed[words.index("film")] == pytest.approx(p - engine.predict([without_film])[0], abs=1e-6)
    with pytest.raises(NoWordsError):
        engine.occlusion("")


def test_empty_and_unknown_texts_are_not_scored(gru_run):
    """The engine's one "no words" answer (tests/test_no_words.py covers every entry point and shape)."""
    engine = Engine.from_run(gru_run)
    for review in ("", "!!!", "zzzz qqqq"):
        with pytest.raises(NoWordsError):
            engine.read(review)
        assert np.isnan(engine.predict([review])[0])
    assert engine.predict([]).shape == (0,)
    reading = engine.read("zzzz qqqq good")  # one known word is enough
    assert 0.0 < reading.probability < 1.0 and len(reading.as_it_reads) == len(reading.tokens) == 3


def test_weights_that_do_not_fit_the_config_are_refused(gru_run):
    with pytest.raises(ValueError, match="do not match"):
        Engine(gru_run.config.replace(units=gru_run.config.units + 1), gru_run.vocab, gru_run.weights)


def test_a_run_saved_at_a_rank_stores_its_factors(trained):
    run = trained(**VARIANTS["bigram_rank_gru"])  # its Keras parity is checked with the other variants
    c = run.config
    assert run.weights["embedding"].shape == (c.vocab_size, 3) and run.weights["embedding"].dtype == np.int8
    assert run.weights["embedding/basis"].shape == (3, c.embedding_dim)
    assert run.weights["embedding/bigrams"].shape == (c.bigram_buckets, 3)
    assert f"cut to rank 3 of {c.embedding_dim}" in (run.path / "card.md").read_text()
    whole = trained(cell="gru")
    assert "embedding/basis" not in whole.weights and whole.weights["embedding"].shape[1] == c.embedding_dim
