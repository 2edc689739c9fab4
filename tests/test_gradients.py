"""Gradients through time: ‖∂L/∂h_t‖ per step, and integrated gradients that add up to the prediction."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sentiment_core import gradients
from sentiment_core.explain import integrated_gradients_for, keras_model
from sentiment_core.inference import Engine
from sentiment_core.train import probe_batch

TEXT = "A wonderful, moving film with a great cast, though the ending was awful and far too long."


@pytest.fixture(scope="module")
def probe(cache_dir, tiny_config):
    from sentiment_core.features import prepare

    encoded = prepare("sample", tiny_config(), cache_dir)
    return probe_batch(encoded.x_val, encoded.y_val)


@pytest.fixture(scope="module")
def norms_of(trained, probe):
    """Factory: ‖∂L/∂h_t‖ on the probe batch for the run of `changes`, computed once."""
    done = {}

    def get(**changes):
        key = tuple(sorted(changes.items()))
        if key not in done:
            done[key] = gradients.hidden_state_grad_norms(keras_model(trained(**changes)), *probe)
        return done[key]

    return get


def test_hidden_state_grad_norms_are_finite_per_step(trained, norms_of):
    norms = norms_of(cell="simple_rnn")
    assert norms.shape == (trained(cell="simple_rnn").config.maxlen,)
    assert np.isfinite(norms).all() and (norms >= 0).all()
    assert norms[-1] > 0


@pytest.mark.parametrize("changes", [dict(cell="lstm"), dict(cell="gru", bidirectional=True)])
def test_hidden_state_grad_norms_for_two_state_and_two_way_cells(trained, probe, changes):
    x, y = probe[0][:8, -16:], probe[1][:8]  # the last 16 steps are enough here, and quicker to unroll
    norms = gradients.hidden_state_grad_norms(keras_model(trained(**changes)), x, y)
    assert norms.shape == (16,)
    assert np.isfinite(norms).all() and (norms >= 0).all() and norms[-1] > 0


def test_probe_programs_kept_between_calls_read_the_current_weights(trained, probe):
    """Training passes one `programs` dict for every epoch: a program compiled at the first call must
    read the weights of the next, not hold the first ones as constants."""
    model = keras_model(trained(cell="gru"))
    x, y = probe[0][:8, -12:], probe[1][:8]
    programs: dict = {}
    before = gradients.hidden_state_grad_norms(model, x, y, programs)
    cell = model.get_layer("rnn_1").cell
    cell.recurrent_kernel.assign(np.asarray(cell.recurrent_kernel) * 0.5)
    head = model.get_layer("sentiment")
    head.kernel.assign(np.asarray(head.kernel) * 2.0)
    after = gradients.hidden_state_grad_norms(model, x, y, programs)
    assert len(programs) == 1 and not np.allclose(before, after)
    np.testing.assert_allclose(after, gradients.hidden_state_grad_norms(model, x, y), rtol=1e-6)


def test_the_last_steps_norm_is_the_heads_derivative(trained, norms_of, probe):
    """At the last step ∂L/∂h_T = (p - y) / B · w for a sigmoid head on mean cross-entropy."""
    run = trained(cell="simple_rnn")
    x, y = probe
    probs, _ = Engine.from_run(run, calibrated=False).forward(x)
    w = run.weights["head/kernel"][:, 0]
    dl_dh = ((probs - y) / len(y))[:, None] * w[None, :]
    assert norms_of(cell="simple_rnn")[-1] == pytest.approx(np.linalg.norm(dl_dh, axis=1).mean(), rel=1e-3)


def test_simple_rnn_gradients_fade_towards_the_first_step(norms_of, probe):
    norms = norms_of(cell="simple_rnn")
    assert (probe[0] != 0).all()  # the probe reviews fill every step, so step 1 is a real word
    assert norms[0] / norms[-1] < 1.0


@pytest.mark.parametrize("changes", [dict(cell="simple_rnn"), dict(cell="lstm", padding="post", truncating="post")])
def test_integrated_gradients_add_up_to_the_prediction(trained, changes):
    run = trained(**changes)
    model = keras_model(run)
    engine = Engine.from_run(run, calibrated=False)
    attributions = integrated_gradients_for(run, TEXT, model=model, steps=64)
    reading = engine.read(TEXT)
    assert attributions.shape == (len(reading.tokens),)
    assert np.isfinite(attributions).all() and np.abs(attributions).max() > 0
    # completeness: the sum is p(text) - p(baseline), the baseline being all-zero embeddings
    ids = engine.encode([TEXT])
    mask = keras.ops.convert_to_tensor(ids != 0)
    zeros = np.zeros((1, run.config.maxlen, run.config.embedding_dim), np.float32)
    stack = gradients._after(model, model.get_layer("embedding"))
    baseline = float(np.asarray(gradients._apply(stack, zeros, mask))[0, 0])
    difference = reading.probability - baseline
    assert abs(difference) > 5e-3  # so that the check below means something
    assert attributions.sum() == pytest.approx(difference, rel=0.05)
