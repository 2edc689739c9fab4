"""LeanSimpleRNN against keras.layers.SimpleRNN with the same weights: outputs, states and gradients."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from sentiment_core.config import PRESETS
from sentiment_core.lean_rnn import LeanSimpleRNN
from sentiment_core.models import build_model

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the lean loop is the JAX backend's")

B, T, D, U = 5, 9, 4, 3


def pair(**kwargs):
    """A LeanSimpleRNN and a Keras SimpleRNN with the same weights and the same dropout seed."""
    lean, plain = LeanSimpleRNN(U, seed=7, **kwargs), layers.SimpleRNN(U, seed=7, **kwargs)
    for layer in (lean, plain):
        layer.build((B, T, D))
    plain.set_weights(lean.get_weights())
    return lean, plain


def batch():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(B, T, D)).astype("float32")
    mask = np.ones((B, T), bool)
    mask[1, :4] = False  # left-padded
    mask[2, 6:] = False  # right-padded
    mask[3, :] = False   # nothing real
    return x, mask


def run(layer, x, mask, training, trainable=None, inputs=None):
    """The layer's output via stateless_call, so that JAX can differentiate it."""
    trainable = [v.value for v in layer.trainable_variables] if trainable is None else trainable
    out, _ = layer.stateless_call(trainable, [v.value for v in layer.non_trainable_variables],
                                  x if inputs is None else inputs, mask=mask, training=training)
    return out


CASES = {
    "last step, masked": dict(),
    "sequences, masked": dict(return_sequences=True),
    "sequences, zero output for masked steps": dict(return_sequences=True, zero_output_for_mask=True),
    "input dropout": dict(dropout=0.4),
    "backwards": dict(go_backwards=True),
    "backwards, sequences, zero output": dict(go_backwards=True, return_sequences=True, zero_output_for_mask=True),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("masked", [True, False])
def test_outputs_and_gradients_match_keras(name, training, masked):
    lean, plain = pair(**CASES[name])
    assert lean.uses_lean_loop()
    x, mask = batch()
    mask = mask if masked else None
    np.testing.assert_allclose(run(lean, x, mask, training), run(plain, x, mask, training), atol=1e-6)

    def loss(layer):
        def of(trainable, inputs):
            out = run(layer, x, mask, training, trainable, inputs)
            return (out * np.linspace(-1, 1, out.size).reshape(out.shape)).sum()  # every output counts
        return of

    import jax

    weights = [v.value for v in lean.trainable_variables]
    lean_grads = jax.grad(loss(lean), argnums=(0, 1))(weights, x)
    plain_grads = jax.grad(loss(plain), argnums=(0, 1))(weights, x)
    for got, want in zip(jax.tree.leaves(lean_grads), jax.tree.leaves(plain_grads), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert float(np.abs(lean_grads[1]).sum()) > 0


def test_other_cases_take_keras_loop_and_agree():
    for kwargs in (dict(unroll=True), dict(recurrent_dropout=0.3), dict(activation="relu")):
        lean, plain = pair(**kwargs)
        assert not lean.uses_lean_loop()
        x, mask = batch()
        np.testing.assert_allclose(run(lean, x, mask, False), run(plain, x, mask, False), atol=1e-6)


def test_notebook_preset_uses_the_lean_loop_and_trains():
    model = build_model(PRESETS["notebook"].replace(vocab_size=200, maxlen=20))
    rnn = model.get_layer("rnn_1")
    assert isinstance(rnn, LeanSimpleRNN) and rnn.uses_lean_loop()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 200, size=(256, 20))
    ids[:, :5] = 0
    labels = (ids[:, -1] % 2).astype("float32")
    before = model.get_layer("rnn_1").get_weights()[1].copy()
    history = model.fit(ids, labels, epochs=3, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert not np.allclose(before, model.get_layer("rnn_1").get_weights()[1])  # R learned
