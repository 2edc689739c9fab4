"""An ensemble whose networks are trained apart, each alone, a few at a time in worker processes.

Trained side by side (train.fit with `members` > 1), an ensemble's networks learn from the same reviews and
stop at the same epoch, the one that suits their mean. Trained apart, each network leaves out its own tenth of
the training reviews and stops where its own held-out tenth says it is best, and hashes word pairs its own way
(weights.bigram_hashes). The hash is what counted on IMDB: six networks of `best` apart scored 90.07% on test
with one shared hash and 90.94% with a hash each (README, "Networks trained apart"). Training apart is also
quicker on a CPU: one network alone uses about one core, so two processes train two networks at 1.67x the pace
of one (benchmarks/members_apart.py).

The run's own validation reviews are held out from every network, so what is chosen after training (the
calibration temperature, the insights) and the ensemble's validation accuracy come from reviews no network
trained or stopped on. `History.members` records each network's stopping point and (runner.save, from the
stored weights) that accuracy for the mean of the first k networks, k = 1..members.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import numpy as np

from .config import Config
from .features import Encoded
from .protocol import BatchEvent, EndEvent, EpochEvent, Event, StartEvent, StatusEvent

MEMBER_HOLDOUT = 0.1  # each network's own held-out share of the training reviews, for its early stopping
_POLL_SECONDS = 0.2
ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def member_holdouts(n: int, members: int, seed: int) -> list[np.ndarray]:
    """The training rows each network leaves out: consecutive tenths of one shuffle, so they do not overlap
    while members * MEMBER_HOLDOUT <= 1 (and wrap round after)."""
    order = np.random.default_rng(seed).permutation(n)
    size = max(1, int(round(n * MEMBER_HOLDOUT)))
    return [np.sort(order[(member * size + np.arange(size)) % n]) for member in range(members)]


def member_config(config: Config, member: int) -> Config:
    """One network of the ensemble, trained alone: its own seed, so its own start, order and dropout."""
    return config.replace(members=1, seed=(config.seed + member) % 2**31)


def processes(members: int) -> int:
    """Networks trained at once: one per core unless SENTIMENT_MEMBER_PROCESSES says otherwise."""
    wanted = int(os.environ.get("SENTIMENT_MEMBER_PROCESSES", os.cpu_count() or 1))
    return max(1, min(members, wanted))


# Set in each worker process by _start_worker: where events go, and the flag that stops training.
_events: multiprocessing.Queue | None = None
_stop: multiprocessing.synchronize.Event | None = None


def _start_worker(events, stop, compiled: str) -> None:
    """Every network has the same shapes, so XLA's programs compiled for one serve the next (JAX's
    persistent cache, in a folder of this training's): only the first network in each process compiles.
    Each process computes on one thread: networks side by side in processes then share the cores instead of
    contending for them (benchmarks/members_apart.py: 1.67x one network's pace for two, against 1.32x)."""
    global _events, _stop
    _events, _stop = events, stop
    from . import footprint

    footprint.skip_optional_imports()  # a fresh interpreter: as in the job's worker, before Keras is imported
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {ONE_THREAD}".strip()  # before XLA starts
    import jax

    jax.config.update("jax_compilation_cache_dir", compiled)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _train_member(config: Config, member: int, encoded: Encoded, grad_probe: bool) -> dict | None:
    """In a worker process: train one network, return its weights and history."""
    from . import footprint
    from .models import export_weights
    from .train import fit

    if _stop.is_set():
        return None  # stopped before this network began
    model, history = fit(member_config(config, member), encoded, lambda event: _events.put((member, event)),
                         _stop.is_set, grad_probe, member_offset=member)
    weights = export_weights(model)
    footprint.release_freed_memory()
    return {"member": member, "weights": weights, "history": history}


def _summary(member: int, config: Config, trained: dict) -> dict:
    history = trained["history"]
    kept = history.best_epoch or len(history.epochs)
    own = next((e.get("val_accuracy") for e in history.epochs if e["epoch"] == kept), None)
    return {"member": member + 1, "seed": member_config(config, member).seed, "epochs": len(history.epochs),
            "best_epoch": history.best_epoch, "stopped_early": history.stopped_early,
            "holdout_accuracy": own, "seconds": history.seconds}


def validation_curve(member_probabilities: np.ndarray, labels: np.ndarray) -> list[float]:
    """Accuracy of the mean of the first k networks, k = 1..M, from their probabilities (M, N)."""
    means = np.cumsum(member_probabilities, axis=0) / np.arange(1, len(member_probabilities) + 1)[:, None]
    return [float(((mean > 0.5) == (labels > 0.5)).mean()) for mean in means]


def fit_apart(config: Config, encoded: Encoded, on_event: Callable[[Event], None] = lambda e: None,
              should_stop: Callable[[], bool] = lambda: False, grad_probe: bool = True):
    """Train `config.members` networks apart and return them as one ensemble model, as train.fit does.

    The curves (batch and epoch events, the gradient probe) are the first network's; the others report each
    epoch as a status line. A stop request stops the networks in training after their current batch and
    starts no more: the ensemble is then the networks that trained.
    """
    from . import footprint
    from .models import build_model, load_weights
    from .train import History

    holdouts = member_holdouts(len(encoded.x_train), config.members, config.seed)
    shares = []
    for hold in holdouts:
        keep = np.setdiff1d(np.arange(len(encoded.x_train)), hold, assume_unique=True)
        shares.append(dataclasses.replace(
            encoded, x_train=encoded.x_train[keep], y_train=encoded.y_train[keep], x_val=encoded.x_train[hold],
            y_val=encoded.y_train[hold], x_test=encoded.x_test[:0], y_test=encoded.y_test[:0],
            x_test_short=encoded.x_test_short[:0]))
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: JAX's threads do not survive fork
    events, stop = context.Queue(), context.Event()
    workers = processes(config.members)
    on_event(StatusEvent(f"training {config.members} networks apart, {workers} at a time"))
    trained: dict[int, dict] = {}
    t0 = time.perf_counter()

    def forward(member: int, event: Event) -> None:
        if member == 0 and isinstance(event, StartEvent):
            on_event(dataclasses.replace(event, parameters=(event.parameters or 0) * config.members))
        elif member == 0 and isinstance(event, (BatchEvent, EpochEvent)):
            on_event(event)
        elif isinstance(event, EpochEvent) and event.val_accuracy is not None:
            on_event(StatusEvent(f"network {member + 1} of {config.members}: epoch {event.epoch}, "
                                 f"accuracy on its held-out reviews {event.val_accuracy:.4f}"))

    with (tempfile.TemporaryDirectory(prefix="sentiment-xla-") as compiled,
          ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                              initargs=(events, stop, compiled)) as pool):
        pending = {pool.submit(_train_member, config, m, shares[m], grad_probe and m == 0)
                   for m in range(config.members)}
        while pending:
            done, pending = wait(pending, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
            while True:
                try:
                    forward(*events.get_nowait())
                except queue.Empty:
                    break
            for future in done:
                result = future.result()  # a network's error ends the training, as train.fit's would
                if result is not None:
                    trained[result["member"]] = result
                    summary = _summary(result["member"], config, result)
                    on_event(StatusEvent(f"network {summary['member']} of {config.members} done: kept epoch "
                                         f"{summary['best_epoch'] or summary['epochs']} of {summary['epochs']}"))
            if should_stop():
                stop.set()
    if not trained:
        raise RuntimeError("stopped before any network was trained")
    order = sorted(trained)  # a prefix 0..k-1: networks start in order and every started one returns
    stacked = {name: np.stack([trained[m]["weights"][name] for m in order]) for name in trained[order[0]]["weights"]}
    with footprint.keras_without_tensorflow():  # building dropout layers would seed TensorFlow (~440 MB)
        ensemble = build_model(config.replace(members=len(order)))
        load_weights(ensemble, stacked if len(order) > 1 else trained[order[0]]["weights"])

    first = trained[order[0]]["history"]
    history = History(batches=first.batches, epochs=first.epochs, grad_norms=first.grad_norms,
                      best_epoch=first.best_epoch, stopped_early=first.stopped_early,
                      stopped_by_user=stop.is_set(), seconds=time.perf_counter() - t0)
    history.members = [_summary(m, config, trained[m]) for m in order]
    on_event(EndEvent(stopped_early=history.stopped_early, stopped_by_user=history.stopped_by_user,
                      best_epoch=history.best_epoch, seconds=history.seconds))
    return ensemble, history
