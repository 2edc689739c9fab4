"""Seconds per epoch of a Keras fit: the one timer the benchmark scripts share."""

from __future__ import annotations

import time


def epoch_seconds(model, epochs: int, **fit_args) -> list[float]:
    """`model.fit(epochs=epochs, **fit_args)`, returning each epoch's wall time (the first compiles)."""
    import keras

    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(epochs=epochs, verbose=0, callbacks=[Timer()], **fit_args)
    return times
