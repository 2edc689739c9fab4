"""A training job's progress as the Train page shows it: events by kind, the curves' frames, where it is.

It reads the job protocol (sentiment_core.protocol) only, as any other reader of a job does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment_core.protocol import BatchEvent, EndEvent, EpochEvent, Event, Job, JobState, StartEvent, StatusEvent

from .texts import format_seconds


def ema(values: Sequence[float], alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average, bias-corrected so the first points are not pulled towards 0
    (pandas' `adjust=True` weights, the same numbers as a running sum and its weight, in C)."""
    return pd.Series(np.asarray(values, dtype=float)).ewm(alpha=alpha, adjust=True).mean().to_numpy()


def thin(values: np.ndarray, max_points: int = 300) -> np.ndarray:
    """Which points of a series to draw so that it keeps its shape in at most ~max_points.

    The series is cut into max_points / 2 buckets, and each keeps its lowest and its highest point,
    so spikes and dips survive (every k-th point would step over them); the first and last stay too.
    Returns the kept indices, in order.
    """
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    buckets = np.array_split(np.arange(n), max(max_points // 2, 1))
    kept = {0, n - 1}
    for bucket in buckets:
        part = values[bucket]
        kept.update((int(bucket[np.argmin(part)]), int(bucket[np.argmax(part)])))
    return np.array(sorted(kept))


def batch_frame(batches: Sequence[BatchEvent], alpha: float | None = None, max_points: int = 300) -> pd.DataFrame:
    """Per-batch loss and accuracy, raw and smoothed, in long form: step, epoch, metric, value, smoothed.
    Each metric keeps at most about `max_points` points (see `thin`): a live chart stays light to send."""
    if not batches:
        return pd.DataFrame(columns=["step", "epoch", "metric", "value", "smoothed"])
    step = np.fromiter((b.global_step for b in batches), dtype=np.int64, count=len(batches))
    epoch = np.fromiter((b.epoch for b in batches), dtype=np.int64, count=len(batches))
    if alpha is None:  # about 1/20 of an epoch's worth of batches, within [0.02, 0.3]
        per_epoch = max(int(np.bincount(epoch).max()), 1)
        alpha = float(np.clip(20.0 / per_epoch, 0.02, 0.3))
    parts = []
    for metric in ("loss", "accuracy"):
        value = np.fromiter((getattr(b, metric) for b in batches), dtype=float, count=len(batches))
        keep = thin(value, max_points)
        parts.append(pd.DataFrame({"step": step[keep], "epoch": epoch[keep], "metric": metric,
                                   "value": value[keep], "smoothed": ema(value, alpha)[keep]}))
    return pd.concat(parts, ignore_index=True)


def epoch_frame(epochs: Sequence[EpochEvent | dict]) -> pd.DataFrame:
    """Per-epoch train and validation loss/accuracy in long form: epoch, metric, split, value.
    Takes a live job's epoch events or a saved run's history rows (their JSON)."""
    rows = []
    for e in (e.to_dict() if isinstance(e, EpochEvent) else e for e in epochs):
        for metric in ("loss", "accuracy"):
            for split, key in (("train", metric), ("validation", f"val_{metric}")):
                if key in e and e[key] is not None:
                    rows.append({"epoch": int(e["epoch"]), "metric": metric, "split": split, "value": float(e[key])})
    return pd.DataFrame(rows, columns=["epoch", "metric", "split", "value"])


@dataclass
class JobEvents:
    """A job's events by kind; kinds this code does not know (a newer worker's) are left out."""

    start: StartEvent | None = None
    end: EndEvent | None = None
    status: list[StatusEvent] = field(default_factory=list)
    batch: list[BatchEvent] = field(default_factory=list)
    epoch: list[EpochEvent] = field(default_factory=list)


def split_events(events: Sequence[Event]) -> JobEvents:
    found = JobEvents()
    for event in events:
        if isinstance(event, StartEvent):
            found.start = event
        elif isinstance(event, EndEvent):
            found.end = event
        elif isinstance(event, StatusEvent):
            found.status.append(event)
        elif isinstance(event, BatchEvent):
            found.batch.append(event)
        elif isinstance(event, EpochEvent):
            found.epoch.append(event)
    return found


def progress(events: Sequence[Event], job: Job, now: float) -> dict:
    """Fraction done, elapsed seconds, an ETA and a one-line description of where training is."""
    parts = split_events(events)
    start, batches, end = parts.start, parts.batch, parts.end
    elapsed = ((job.ended or now) - job.started) if job.started else None
    info = {"fraction": 0.0, "elapsed": elapsed, "eta": None, "text": "", "epoch": None, "epochs": None}
    if job.state == JobState.QUEUED:
        info["text"] = f"waiting in the queue (position {job.position or '?'})"
        return info
    if start is None:
        status = parts.status[-1].message if parts.status else "starting a worker process"
        info["text"] = status
        return info
    total = max(int(start.epochs) * int(start.steps_per_epoch), 1)
    info["epochs"] = int(start.epochs)
    if batches:
        last = batches[-1]
        done = (int(last.epoch) - 1) * int(start.steps_per_epoch) + int(last.step)
        info["fraction"] = min(done / total, 1.0)
        info["epoch"] = int(last.epoch)
        # The pace comes from batches after the first: the first one also pays for compiling the model.
        first = batches[0]
        first_done = (int(first.epoch) - 1) * int(start.steps_per_epoch) + int(first.step)
        if done > first_done and info["fraction"] < 1:
            pace = (float(last.seconds) - float(first.seconds)) / (done - first_done)
            info["eta"] = pace * (total - done)
        info["text"] = (f"epoch {last.epoch}/{start.epochs}, batch {last.step}/{start.steps_per_epoch} "
                        f"— loss {last.loss:.3f}, accuracy {last.accuracy:.3f}")
    else:
        info["text"] = f"compiling the model ({start.parameters:,} parameters)" if isinstance(
            start.parameters, int) else "compiling the model"
    if end is not None:
        info["fraction"] = 1.0 if not end.stopped_by_user else info["fraction"]
        info["eta"] = None
        info["text"] = "evaluating on the test reviews and saving the run"
    return info


def end_note(end: EndEvent | None, config: dict | None) -> str:
    """What the end event says about early stopping, in words."""
    if not end:
        return ""
    if end.stopped_by_user:
        return "Stopped by you; the run keeps the weights it had."
    best = end.best_epoch
    if end.stopped_early:
        patience = (config or {}).get("patience")
        return (f"Early stopping: validation loss did not improve for {patience} epoch(s), so training stopped; "
                f"the weights of epoch {best} (best validation loss) were kept.")
    if best:
        return f"Best validation loss at epoch {best}; those weights were kept."
    return ""


def jobs_frame(jobs: Sequence[Job], now: float) -> pd.DataFrame:
    rows = []
    for j in reversed(list(jobs)):
        queued = j.state == JobState.QUEUED and j.position
        state = str(j.state) + (f" (#{j.position} in queue)" if queued else "")
        acc = (j.metrics or {}).get("accuracy")
        rows.append({"job": j.id, "run name": j.name, "state": state, "cell": (j.config or {}).get("cell"),
                     "data": Path(str(j.data)).name if j.data not in ("sample", "tfds") else j.data,
                     "test accuracy": acc, "submitted": format_seconds(now - j.submitted) + " ago"})
    frame = pd.DataFrame(rows, columns=["job", "run name", "state", "cell", "data", "test accuracy", "submitted"])
    return frame.astype({"test accuracy": float})  # a job still running has none: NaN, drawn as an empty cell
