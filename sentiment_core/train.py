"""Training with Keras `fit`, reporting through events and stoppable within one batch.

The events are `protocol`'s (start, batch, epoch, end), so a job worker can send them across
a process boundary as JSON; their fields are documented there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from . import footprint, gradients, memlog
from .batches import LengthBatches
from .config import Config
from .features import Encoded
from .models import build_model, export_weights, load_weights
from .protocol import BatchEvent, EndEvent, EpochEvent, Event, StartEvent

OnEvent = Callable[[Event], None]
PROBE_SIZE = 32
WORTH_CUTTING = 0.25  # cut batches to length when at least this share of the steps is padding


@dataclass
class History:
    batches: list[dict] = field(default_factory=list)  # the events' JSON, as saved in a run's history
    epochs: list[dict] = field(default_factory=list)
    grad_norms: list[dict] = field(default_factory=list)  # per epoch: ‖∂L/∂h_t‖ for t = 1..T
    members: list[dict] = field(default_factory=list)  # networks trained apart: each one's stopping (members_apart)
    best_epoch: int | None = None
    stopped_early: bool = False
    stopped_by_user: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class _Reporter(keras.callbacks.Callback):
    def __init__(self, history: History, on_event: OnEvent, should_stop: Callable[[], bool],
                 probe: tuple[np.ndarray, np.ndarray] | None, steps: int):
        super().__init__()
        self.history, self.on_event, self.should_stop, self.probe, self.steps = (
            history, on_event, should_stop, probe, steps)
        self.epoch = 0
        self.programs: dict = {}  # the probe's compiled steps, kept from epoch to epoch

    def _emit(self, event: Event) -> None:
        self.on_event(event)

    def on_train_begin(self, logs=None):
        self.t0 = time.perf_counter()
        if self.probe is not None:
            self._record_grad_norms(epoch=0)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_t0 = epoch + 1, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        event = BatchEvent(epoch=self.epoch, step=batch + 1, global_step=(self.epoch - 1) * self.steps + batch + 1,
                           loss=float(logs["loss"]), accuracy=float(logs["accuracy"]),
                           seconds=time.perf_counter() - self.t0)
        self.history.batches.append(event.to_dict())
        self._emit(event)
        if self.should_stop():
            self.history.stopped_by_user = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        metrics = {k: float(logs[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs}
        event = EpochEvent(epoch=epoch + 1, **metrics, seconds=time.perf_counter() - self.epoch_t0)
        if self.probe is not None and not self.history.stopped_by_user:
            event.grad_norms = self._record_grad_norms(epoch + 1)
        self.history.epochs.append(event.to_dict())
        self._emit(event)

    def _record_grad_norms(self, epoch: int) -> list[float]:
        memlog.mark("grad probe")
        norms = gradients.hidden_state_grad_norms(self.model, *self.probe, self.programs).tolist()
        footprint.release_freed_memory()  # compiling leaves ~50-100 MB free but mapped; training would add to it
        memlog.mark("fit")
        self.history.grad_norms.append({"epoch": epoch, "norms": norms})
        return norms


def padding_share(x: np.ndarray) -> float:
    """The fraction of a padded array that is padding."""
    return float((x == 0).mean()) if x.size else 0.0


def probe_batch(x: np.ndarray, y: np.ndarray, size: int = PROBE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The longest validation reviews, fixed for the whole run, so epochs are comparable."""
    lengths = (x != 0).sum(axis=1)
    order = np.argsort(-lengths, kind="stable")[:size]
    return x[order], y[order]


@footprint.keras_without_tensorflow()  # seeding would import TensorFlow (~440 MB) to seed it
def fit(config: Config, encoded: Encoded, on_event: OnEvent = lambda e: None,
        should_stop: Callable[[], bool] = lambda: False, grad_probe: bool = True,
        verbose: int = 0, member_offset: int = 0) -> tuple[keras.Model, History]:
    """Train a fresh model; early stopping restores the best-validation weights. `member_offset`: see build_model."""
    memlog.mark("seed")
    keras.utils.set_random_seed(config.seed)
    memlog.mark("build")
    # With the padding masked, cutting it off changes nothing but the time; without a mask the
    # padding is part of what the model reads, so every batch keeps it. (TensorFlow's tf.data
    # fixes one shape from the first batches, so that backend keeps whole rows too.) Where reviews
    # fill most of maxlen, there is little to cut, and Keras' own array batches are quicker.
    cut_padding = (config.mask and keras.backend.backend() != "tensorflow"
                   and padding_share(encoded.x_train) >= WORTH_CUTTING)
    members = config.members
    if cut_padding or members > 1:  # an ensemble's members each read the data in their own order
        train = LengthBatches(encoded.x_train, encoded.y_train, config.batch_size, config.padding, shuffle=True,
                              seed=config.seed, members=members, cut=cut_padding)
        data = {"x": train, "validation_data": LengthBatches(encoded.x_val, encoded.y_val, config.batch_size,
                                                            config.padding, members=members, cut=cut_padding)}
        steps = len(train)
    else:
        data = {"x": encoded.x_train, "y": encoded.y_train, "validation_data": (encoded.x_val, encoded.y_val),
                "batch_size": config.batch_size, "shuffle": True}
        steps = int(np.ceil(len(encoded.x_train) / config.batch_size))
    model = build_model(config, steps_per_epoch=steps, any_length=cut_padding, member_inputs=members > 1,
                        member_offset=member_offset)
    footprint.drop_compiled_programs()  # the initializers', run once
    history = History()
    on_event(StartEvent(epochs=config.epochs, steps_per_epoch=steps, samples=int(len(encoded.x_train)),
                        parameters=int(model.count_params())))
    probe = probe_batch(encoded.x_val, encoded.y_val) if grad_probe else None
    callbacks: list[keras.callbacks.Callback] = [_Reporter(history, on_event, should_stop, probe, steps)]
    stopper = keras.callbacks.EarlyStopping(monitor=config.monitor, patience=config.patience,
                                            mode="max" if config.monitor == "val_accuracy" else "min",
                                            restore_best_weights=True)
    if config.early_stopping:
        callbacks.append(stopper)
    memlog.mark("fit")
    t0 = time.perf_counter()
    model.fit(**data, epochs=config.epochs, callbacks=callbacks, verbose=verbose)
    history.seconds = time.perf_counter() - t0
    if members > 1:  # callers get the (B, T) model that every saved run has, holding the trained weights
        trained, model = model, build_model(config, steps_per_epoch=steps, member_offset=member_offset)
        load_weights(model, export_weights(trained))
    history.stopped_early = stopper.stopped_epoch > 0
    if stopper.best_weights is not None:
        history.best_epoch = stopper.best_epoch + 1
    on_event(EndEvent(stopped_early=history.stopped_early, stopped_by_user=history.stopped_by_user,
                      best_epoch=history.best_epoch, seconds=history.seconds))
    return model, history
