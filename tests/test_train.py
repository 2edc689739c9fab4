"""Training: it learns, it reports, it stops when asked, it restores the best epoch, it is reproducible."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from sentiment_core import features, train
from sentiment_core.inference import Engine
from sentiment_core.metrics import evaluate
from sentiment_core.models import build_model, export_weights
from sentiment_core.protocol import BatchEvent, EndEvent, EpochEvent, Event, StartEvent


@pytest.fixture(scope="module")
def encoded(tiny_config, cache_dir):
    return features.prepare("sample", tiny_config(), cache_dir)


@pytest.fixture(scope="module")
def two_epochs(tiny_config, cache_dir):
    """Two epochs of a tiny GRU with the gradient probe on (20 steps, to unroll quickly), and its events."""
    config = tiny_config(epochs=2, maxlen=20)
    data = features.prepare("sample", config, cache_dir)
    events: list[Event] = []
    model, history = train.fit(config, data, on_event=events.append, grad_probe=True)
    return config, history, events


def test_a_gru_beats_70_percent_on_the_sample(cache_dir):
    from sentiment_core.config import Config

    config = Config(vocab_size=3000, maxlen=200, cell="gru", embedding_dim=32, units=16, pooling="mean",
                    optimizer="adam", learning_rate=5e-3, batch_size=32, epochs=5, early_stopping=True, patience=1)
    data = features.prepare("sample", config, cache_dir)
    model, history = train.fit(config, data, grad_probe=False)
    engine = Engine(config, data.vocab, export_weights(model))
    result = evaluate(data.y_test, engine.predict_ids(data.x_test))
    assert result["n"] == 1000
    assert result["accuracy"] > 0.70, result  # about 0.79 here
    assert result["roc_auc"] > 0.78, result


def test_events_are_emitted_in_order(two_epochs, encoded):
    config, history, events = two_epochs
    steps = int(np.ceil(len(encoded.x_train) / config.batch_size))
    kinds = [e.type for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("batch") == 2 * steps and kinds.count("epoch") == 2
    assert kinds.index("epoch") == steps + 1  # the first epoch ends after its batches
    start = events[0]
    assert isinstance(start, StartEvent)
    assert start.epochs == 2 and start.steps_per_epoch == steps and start.samples == 1600
    assert start.parameters == build_model(config).count_params()
    batches = [e for e in events if isinstance(e, BatchEvent)]
    assert [b.step for b in batches[:3]] == [1, 2, 3] and batches[steps].epoch == 2
    assert [b.global_step for b in batches] == list(range(1, 2 * steps + 1))
    for b in batches:
        assert np.isfinite(b.loss) and 0.0 <= b.accuracy <= 1.0 and b.seconds >= 0
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    for e in epochs:
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(e.to_dict())
        assert np.isfinite(e.val_loss) and 0.0 <= e.val_accuracy <= 1.0 and e.seconds > 0
        assert len(e.grad_norms) == config.maxlen
    end = events[-1]
    assert isinstance(end, EndEvent)
    assert end.stopped_by_user is False and end.stopped_early is False and end.seconds > 0
    assert history.epochs == [e.to_dict() for e in epochs]
    assert history.batches == [b.to_dict() for b in batches]


def test_grad_norms_are_recorded_per_epoch(two_epochs):
    config, history, _ = two_epochs
    assert [g["epoch"] for g in history.grad_norms] == [0, 1, 2]  # before training, then after each epoch
    for record in history.grad_norms:
        norms = np.asarray(record["norms"])
        assert norms.shape == (config.maxlen,)
        assert np.isfinite(norms).all() and (norms >= 0).all() and norms.max() > 0


@pytest.mark.parametrize("k", [1, 3])
def test_should_stop_stops_within_one_batch_and_keeps_the_weights(encoded, tiny_config, k):
    config = tiny_config(epochs=3)
    events: list[Event] = []
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) >= k

    model, history = train.fit(config, encoded, on_event=events.append, should_stop=should_stop, grad_probe=False)
    assert sum(isinstance(e, BatchEvent) for e in events) == k
    assert history.stopped_by_user and isinstance(events[-1], EndEvent) and events[-1].stopped_by_user
    assert len(history.epochs) <= 1
    keras.utils.set_random_seed(config.seed)
    untrained = build_model(config)
    moved = [not np.allclose(a, b) for a, b in zip(model.get_weights(), untrained.get_weights(), strict=True)]
    assert any(moved)  # the returned model holds the weights of the batches it trained on


def test_early_stopping_restores_the_best_epoch(encoded, tiny_config):
    config = tiny_config(epochs=8, early_stopping=True, patience=1, learning_rate=2e-2, units=16,
                         embedding_dim=16, batch_size=32)
    model, history = train.fit(config, encoded, grad_probe=False)
    val_losses = [e["val_loss"] for e in history.epochs]
    assert history.stopped_early and len(val_losses) < config.epochs
    assert history.best_epoch == int(np.argmin(val_losses)) + 1
    assert history.best_epoch < len(val_losses)
    assert min(val_losses) < val_losses[-1] - 1e-3  # restoring makes a difference
    loss, _ = model.evaluate(encoded.x_val, encoded.y_val, batch_size=config.batch_size, verbose=0)
    assert loss == pytest.approx(min(val_losses), abs=1e-4)


def test_early_stopping_can_watch_validation_accuracy(encoded, tiny_config):
    config = tiny_config(epochs=6, early_stopping=True, patience=1, learning_rate=2e-2, units=16,
                         embedding_dim=16, batch_size=32, monitor="val_accuracy", members=2)
    model, history = train.fit(config, encoded, grad_probe=False)
    accuracies = [e["val_accuracy"] for e in history.epochs]
    assert history.best_epoch == int(np.argmax(accuracies)) + 1
    _, accuracy = model.evaluate(encoded.x_val, encoded.y_val, batch_size=config.batch_size, verbose=0)
    assert accuracy == pytest.approx(max(accuracies), abs=1e-6)  # the ensemble's accuracy, as reported


def test_same_seed_same_run(encoded, tiny_config):
    config = tiny_config(epochs=1)
    first_model, first = train.fit(config, encoded, grad_probe=False)
    second_model, second = train.fit(config, encoded, grad_probe=False)
    assert [b["loss"] for b in first.batches] == [b["loss"] for b in second.batches]
    assert [e["val_loss"] for e in first.epochs] == [e["val_loss"] for e in second.epochs]
    for (name, a), b in zip(export_weights(first_model).items(), export_weights(second_model).values(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_probe_batch_takes_the_longest_reviews():
    x = np.array([[0, 0, 1], [1, 2, 3], [0, 5, 6], [0, 0, 0]])
    y = np.array([0, 1, 0, 1])
    px, py = train.probe_batch(x, y, size=2)
    assert px.tolist() == [[1, 2, 3], [0, 5, 6]] and py.tolist() == [1, 0]


def test_weight_averaging_validates_the_weights_it_keeps(encoded, tiny_config):
    config = tiny_config(epochs=2, early_stopping=False, weight_averaging=0.9, learning_rate=2e-2)
    model, history = train.fit(config, encoded, grad_probe=False)
    loss, _ = model.evaluate(encoded.x_val, encoded.y_val, batch_size=config.batch_size, verbose=0)
    assert loss == pytest.approx(history.epochs[-1]["val_loss"], abs=1e-4)
    plain, _ = train.fit(config.replace(weight_averaging=0.0), encoded, grad_probe=False)
    assert not np.allclose(export_weights(plain)["head/kernel"], export_weights(model)["head/kernel"])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cudnn_is_only_asked_for_where_its_masks_work(tiny_config, cell):
    """cuDNN (TensorFlow backend, GPU) rejects left-padded masks at run time; those layers use Keras' loop."""
    def layer(**changes):
        return build_model(tiny_config(cell=cell, **changes), compile=False).get_layer("rnn_1")
    assert layer(mask=True, padding="pre").use_cudnn is False
    assert layer(mask=True, padding="post").use_cudnn == "auto"
    assert layer(mask=False, padding="pre").use_cudnn == "auto"


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
def test_gradient_probe_leaves_no_dropout_mask_behind(encoded, tiny_config, cell):
    """The probe steps the cell by hand on 32 reviews; training batches of another size must not inherit its masks."""
    config = tiny_config(cell=cell, dropout=0.5, recurrent_dropout=0.2, batch_size=48, epochs=2, maxlen=20)
    data = features.prepare("sample", config)
    model, history = train.fit(config, data, grad_probe=True)
    assert len(history.epochs) == 2 and len(history.grad_norms) == 3
    assert all(np.isfinite(e["loss"]) for e in history.epochs)


def test_gradient_probe_does_not_change_the_training(encoded, tiny_config):
    config = tiny_config(cell="simple_rnn", dropout=0.5, epochs=2, maxlen=20)
    data = features.prepare("sample", config)
    _, probed = train.fit(config, data, grad_probe=True)
    _, plain = train.fit(config, data, grad_probe=False)
    assert [b["loss"] for b in probed.batches] == [b["loss"] for b in plain.batches]


def test_batches_are_cut_to_length_only_where_padding_is_worth_cutting(cache_dir, tiny_config):
    long_rows = tiny_config(maxlen=400, units=4, embedding_dim=4)  # most sample reviews are far shorter
    data = features.prepare("sample", long_rows, cache_dir)
    # 4 batches to train on and 1 to validate: JAX compiles once per length, and the sample has all 8
    data = dataclasses.replace(data, x_train=data.x_train[:256], y_train=data.y_train[:256],
                               x_val=data.x_val[:64], y_val=data.y_val[:64])
    assert train.padding_share(data.x_train) >= train.WORTH_CUTTING
    model, history = train.fit(long_rows, data, grad_probe=False)
    assert model.inputs[0].shape[1] is None and len(history.epochs) == 1  # trained on batches cut to length
    short_rows = tiny_config(maxlen=20)  # nearly every review fills 20 words
    data = features.prepare("sample", short_rows, cache_dir)
    assert train.padding_share(data.x_train) < train.WORTH_CUTTING
    model, _ = train.fit(short_rows, data, grad_probe=False)
    assert model.inputs[0].shape[1] == 20
