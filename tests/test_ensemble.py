"""Ensembles (`members` > 1): each member is its own network, trained on its own loss, and the
prediction is their mean, in Keras and in the NumPy engine alike."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import ENSEMBLE

from sentiment_core.explain import integrated_gradients_for, keras_model
from sentiment_core.gradients import hidden_state_grad_norms
from sentiment_core.inference import Engine
from sentiment_core.models import build_model

TEXT = "This movie was horriblely good: a wonderful, moving film, though far too long."


@pytest.fixture(scope="module")
def ensemble(trained):
    return trained(**ENSEMBLE)


@pytest.fixture(scope="module")
def ids(ensemble, sample_halves):
    _, test = sample_halves
    return Engine.from_run(ensemble).encode([*test.texts[:20], "awful", "great movie", TEXT])


def test_every_member_matches_keras_and_the_prediction_is_their_mean(ensemble, ids):
    reference = keras.saving.load_model(ensemble.path / "model.keras")
    keras_members = np.asarray(reference.predict(ids, verbose=0))
    engine = Engine.from_run(ensemble, calibrated=False)
    members, features, _ = engine.forward_members(ids)
    assert keras_members.shape == (len(ids), 3) and ensemble.weights["head/kernel"].shape[0] == 3
    np.testing.assert_allclose(members.T, keras_members, atol=1e-5)
    np.testing.assert_allclose(engine.predict_ids(ids), keras_members.mean(axis=1), atol=1e-5)
    assert np.ptp(keras_members, axis=1).max() > 1e-3  # the members are different networks
    assert ensemble.metrics["n"] == 1000 and 0.0 < ensemble.metrics["accuracy"] <= 1.0


def test_the_insides_are_the_first_members(ensemble):
    engine = Engine.from_run(ensemble, calibrated=False)
    first = Engine(ensemble.config.replace(members=1), ensemble.vocab, {k: v[0] for k, v in ensemble.weights.items()})
    reading, alone = engine.read(TEXT), first.read(TEXT)
    for direction in ("forward", "backward"):
        np.testing.assert_allclose(reading.layers[0][direction]["h"], alone.layers[0][direction]["h"], atol=1e-6)
    np.testing.assert_allclose(reading.features, alone.features, atol=1e-6)
    assert len(reading.members) == 3
    assert reading.members[0] == pytest.approx(alone.probability, abs=1e-6)
    assert reading.probability == pytest.approx(reading.members.mean(), abs=1e-6)
    assert reading.as_it_reads[-1] == pytest.approx(reading.probability, abs=1e-5)  # the whole review, re-read


def test_the_loss_is_the_members_mean_loss_and_accuracy_is_the_ensembles(tiny_config):
    model = build_model(tiny_config(members=2))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 2000, (64, 40)), rng.integers(0, 2, 64).astype("float32")
    p = np.asarray(model.predict(x, verbose=0))
    bce = -(y[:, None] * np.log(p) + (1 - y[:, None]) * np.log(1 - p))
    result = model.evaluate(x, y, verbose=0, return_dict=True, batch_size=64)
    assert result["loss"] == pytest.approx(bce.mean(), rel=1e-4)
    assert result["accuracy"] == pytest.approx(((p.mean(axis=1) > 0.5) == y).mean())


def test_the_rebuilt_keras_model_and_the_gradient_views_work_on_an_ensemble(ensemble, ids):
    model = keras_model(ensemble)
    reference = keras.saving.load_model(ensemble.path / "model.keras")
    np.testing.assert_allclose(model.predict(ids, verbose=0), reference.predict(ids, verbose=0), atol=1e-6)
    norms = hidden_state_grad_norms(model, ids[:8], np.ones(8))
    assert norms.shape == (ids.shape[1],) and np.isfinite(norms).all() and norms[-1] > 0
    attributions = integrated_gradients_for(ensemble, TEXT, model)
    assert len(attributions) == len(Engine.from_run(ensemble).read(TEXT).tokens) and np.isfinite(attributions).all()
