"""A training job's progress as the Train page shows it: events by kind, the curves' frames, where it is.

It reads the job protocol (sentiment_core.protocol) only, as any other reader of a job does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from sentiment_core.protocol import (
    AttemptEvent,
    BatchEvent,
    EndEvent,
    EpochEvent,
    Event,
    Job,
    JobState,
    StartEvent,
    StatusEvent,
    latest_attempt,
)


def ema(values: Sequence[float], alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average, bias-corrected so the first points are not pulled towards 0
    (pandas' `adjust=True` weights, the same numbers as a running sum and its weight, in C)."""
    return pd.Series(np.asarray(values, dtype=float)).ewm(alpha=alpha, adjust=True).mean().to_numpy()


def thin(values: np.ndarray, max_points: int = 300) -> np.ndarray:
    """Which points of a series to draw so that it keeps its shape in at most ~max_points.

    The series is cut into max_points / 2 buckets (as np.array_split cuts it), and each keeps its lowest
    and its highest point, so spikes and dips survive (every k-th point would step over them); the first
    and last stay too. Returns the kept indices, in order. Vectorized: a live page thins at each refresh.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    k = max(max_points // 2, 1)
    q, r = divmod(n, k)  # the first r buckets hold q + 1 points, the others q
    index = np.arange(n)
    bucket = np.where(index < r * (q + 1), index // (q + 1), r + (index - r * (q + 1)) // max(q, 1))
    first = np.searchsorted(bucket, np.arange(k))  # where each bucket starts (bucket ids are sorted)
    lowest = np.lexsort((values, bucket))[first]  # stable: the first of equal values, as argmin
    highest = np.lexsort((-values, bucket))[first]
    return np.unique(np.concatenate([lowest, highest, [0, n - 1]]))


def batch_columns(batches: Sequence[BatchEvent], alpha: float | None = None,
                  max_points: int = 300) -> dict[str, dict[str, np.ndarray]]:
    """Per-batch loss and accuracy, raw and smoothed: for each metric, the columns step, epoch, value,
    smoothed. Each metric keeps at most about `max_points` points (see `thin`), so a live chart stays
    light to send; smoothing sees every batch. NumPy only: a live page builds these at each refresh."""
    table = np.array([(b.global_step, b.epoch, b.loss, b.accuracy) for b in batches], dtype=float).reshape(-1, 4)
    step, epoch = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
    if alpha is None:  # about 1/20 of an epoch's worth of batches, within [0.02, 0.3]
        per_epoch = max(int(np.bincount(epoch).max()), 1) if len(epoch) else 1
        alpha = float(np.clip(20.0 / per_epoch, 0.02, 0.3))
    columns = {}
    for metric, value in (("loss", table[:, 2]), ("accuracy", table[:, 3])):
        keep = thin(value, max_points)
        columns[metric] = {"step": step[keep], "epoch": epoch[keep], "value": value[keep],
                           "smoothed": ema(value, alpha)[keep]}
    return columns


def epoch_columns(epochs: Sequence[EpochEvent | dict]) -> dict[str, dict[str, list]]:
    """Per-epoch train and validation values: for each metric, the columns epoch, split, value.
    Takes a live job's epoch events or a saved run's history rows (their JSON)."""
    columns: dict[str, dict[str, list]] = {m: {"epoch": [], "split": [], "value": []} for m in ("loss", "accuracy")}
    for e in (e.to_dict() if isinstance(e, EpochEvent) else e for e in epochs):
        for metric, cols in columns.items():
            for split, key in (("train", metric), ("validation", f"val_{metric}")):
                if key in e and e[key] is not None:
                    cols["epoch"].append(int(e["epoch"]))
                    cols["split"].append(split)
                    cols["value"].append(float(e[key]))
    return columns


def epoch_frame(epochs: Sequence[EpochEvent | dict]) -> pd.DataFrame:
    """epoch_columns in long form: epoch, metric, split, value."""
    parts = [pd.DataFrame({**cols, "metric": metric}) for metric, cols in epoch_columns(epochs).items()]
    frame = pd.concat(parts, ignore_index=True)[["epoch", "metric", "split", "value"]]
    return frame.sort_values("epoch", kind="stable", ignore_index=True)


@dataclass
class JobEvents:
    """A job's events by kind; kinds this code does not know (a newer worker's) are left out."""

    start: StartEvent | None = None
    end: EndEvent | None = None
    status: list[StatusEvent] = field(default_factory=list)
    later: list[StatusEvent] = field(default_factory=list)  # written after start: networks trained apart report there
    batch: list[BatchEvent] = field(default_factory=list)
    epoch: list[EpochEvent] = field(default_factory=list)


def split_events(events: Sequence[Event]) -> JobEvents:
    """The current attempt's events by kind (a lost attempt's are left out); a new attempt is a status line."""
    found = JobEvents()
    for event in latest_attempt(list(events)):
        if isinstance(event, AttemptEvent):
            found.status.append(StatusEvent(f"attempt {event.attempt}: {event.reason}"))
        elif isinstance(event, StartEvent):
            found.start = event
        elif isinstance(event, EndEvent):
            found.end = event
        elif isinstance(event, StatusEvent):
            (found.later if found.start else found.status).append(event)
        elif isinstance(event, BatchEvent):
            found.batch.append(event)
        elif isinstance(event, EpochEvent):
            found.epoch.append(event)
    return found


def progress(events: Sequence[Event] | JobEvents, job: Job, now: float) -> dict:
    """Fraction done, elapsed seconds, an ETA and a one-line description of where training is."""
    parts = events if isinstance(events, JobEvents) else split_events(events)
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
        if parts.later:  # an ensemble trained apart: the batches are its first network's
            info["text"] = f"network 1: {info['text']}; {parts.later[-1].message}"
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


JOBS_TABLE = pa.schema([("job", pa.string()), ("run name", pa.string()), ("state", pa.string()),
                        ("cell", pa.string()), ("data", pa.string()), ("test accuracy", pa.float64()),
                        ("submitted", pa.string())])


def submitted_ago(seconds: float) -> str:
    """To the minute: a table that says "3 min ago" changes once a minute, and is sent again only then."""
    minutes = int(max(seconds, 0) // 60)
    return "just now" if minutes == 0 else f"{minutes} min ago" if minutes < 60 else f"{minutes // 60} h ago"


def jobs_table(jobs: Sequence[Job], now: float) -> pa.Table:
    """Jobs, newest first, with queue places. A job still running has no accuracy: a null, drawn as an
    empty cell. An Arrow table: Streamlit sends it as it is, with no conversion from pandas."""
    rows = []
    for j in reversed(list(jobs)):
        queued = j.state == JobState.QUEUED and j.position
        data = Path(str(j.data)).name if j.data not in ("sample", "tfds") else j.data
        state = str(j.state) + (f" (#{j.position} in queue)" if queued else "")
        rows.append({"job": j.id, "run name": j.name, "state": state,
                     "cell": (j.config or {}).get("cell"), "data": data,
                     "test accuracy": (j.metrics or {}).get("accuracy"), "submitted": submitted_ago(now - j.submitted)})
    return pa.Table.from_pylist(rows, schema=JOBS_TABLE)
