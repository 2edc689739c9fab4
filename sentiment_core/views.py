"""Small pure helpers behind the Streamlit pages: input checks, dataframes for charts, HTML for words.

Everything here is plain Python, NumPy and pandas, so it can be tested without a
browser. Nothing imports Streamlit, Keras, TensorFlow or JAX.
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import GROUPED, PRESETS, SCHEMA, Config, ConfigError
from .protocol import BatchEvent, EndEvent, EpochEvent, Event, Job, JobState, StartEvent, StatusEvent
from .text import Token

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- limits on what a user may paste or upload
MAX_REVIEW_CHARS = 100_000  # one review; longer ones are cut (the model reads a few hundred words anyway)
MAX_TOTAL_CHARS = 2_000_000  # everything in one request
MAX_ROWS = 1_000  # reviews per request
MAX_UPLOAD_BYTES = 5 * 2**20  # a CSV file

POSITIVE, NEGATIVE, NO_WORDS = "positive", "negative", "not scored"

PRESET_LABELS = {"notebook": "the original notebook", "fast-lstm": "fast LSTM", "best": "best accuracy",
                 "tiny": "tiny (seconds)"}

EXAMPLE_REVIEW = ("I expected a horrible film, but the acting was wonderful and the story kept me "
                  "interested until the very end. Not perfect, yet I would happily watch it again.")


class InputError(ValueError):
    """Input the app cannot score; the message says what to do instead."""


def label(probability: float, threshold: float = 0.5) -> str:
    """The verdict for a probability; NaN is the engine's answer for a review with no word it knows."""
    if math.isnan(probability):
        return NO_WORDS
    return POSITIVE if probability >= threshold else NEGATIVE


# ---------------------------------------------------------------- text input
def clean_text(text: str) -> str:
    """Drop NUL and other control characters that binary junk brings along (tabs and newlines stay)."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]", " ", text)


def cap_review(text: str, truncating: str = "pre", limit: int = MAX_REVIEW_CHARS) -> tuple[str, bool]:
    """Cut an over-long review, keeping the part the model would read (its end for 'pre' truncation)."""
    if len(text) <= limit:
        return text, False
    return (text[-limit:] if truncating == "pre" else text[:limit]), True


@dataclass
class Batch:
    """Reviews ready to score, with notes on anything that was dropped or shortened."""

    texts: list[str]
    notes: list[str] = field(default_factory=list)


def prepare_reviews(texts: Iterable[object], truncating: str = "pre", max_rows: int = MAX_ROWS,
                    max_review_chars: int = MAX_REVIEW_CHARS, max_total_chars: int = MAX_TOTAL_CHARS) -> Batch:
    """Strip, drop empty ones, cap count and length. Raises InputError when nothing is left to score."""
    kept: list[str] = []
    empty = cut = 0
    total = 0
    over_rows = over_total = False
    for raw in texts:
        text = "" if raw is None or (isinstance(raw, float) and math.isnan(raw)) else str(raw)
        text = clean_text(text).strip()
        if not text:
            empty += 1
            continue
        if len(kept) >= max_rows:
            over_rows = True
            break
        text, was_cut = cap_review(text, truncating, max_review_chars)
        cut += was_cut
        if total + len(text) > max_total_chars:
            over_total = True
            break
        total += len(text)
        kept.append(text)
    notes = []
    if cut:
        notes.append(f"{cut} review(s) longer than {max_review_chars // 1000} KB were shortened to "
                     f"{max_review_chars // 1000} KB (the model reads only a few hundred words anyway).")
    if over_rows:
        notes.append(f"Only the first {max_rows} reviews were scored; split larger files into several.")
    if over_total:
        notes.append(f"The input is larger than {max_total_chars // 1_000_000} MB; only the first "
                     f"{len(kept)} review(s) were scored.")
    if empty and kept:
        notes.append(f"{empty} empty line(s) or row(s) were skipped.")
    if not kept:
        raise InputError("There is nothing to score: type or paste at least one review (one per line).")
    return Batch(kept, notes)


def split_lines(text: str | None, many: bool) -> list[str]:
    """The text area's content as reviews: the whole text, or one review per line."""
    text = text or ""
    return text.splitlines() if many else [text]


def read_csv_reviews(payload: bytes, column: str = "text") -> list[str]:
    """The `text` column of an uploaded CSV file; InputError says what is wrong with the file."""
    if not payload:
        raise InputError("The file is empty.")
    if len(payload) > MAX_UPLOAD_BYTES:
        raise InputError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB; upload at most "
                         f"{MAX_ROWS} reviews at a time.")
    if b"\x00" in payload[:4096]:
        raise InputError("This does not look like a CSV text file (it contains binary data).")
    try:
        decoded = payload.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"The file is not valid UTF-8 text (bad byte at position {error.start}). "
                         "Save it as 'CSV UTF-8' and upload it again.") from error
    try:
        frame = pd.read_csv(io.StringIO(decoded), dtype=str, keep_default_na=False, nrows=MAX_ROWS + 1,
                            on_bad_lines="error")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError) as error:
        raise InputError(f"The file could not be read as CSV ({str(error).strip()[:200]}).") from error
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if column not in columns:
        shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:10]) or "none"
        raise InputError(f"The CSV needs a column named '{column}' with one review per row; "
                         f"its columns are: {shown}.")
    return frame[columns[column]].tolist()


def short(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def predictions_frame(texts: Sequence[str], probabilities: Sequence[float], tokens: Sequence[Sequence[Token]]
                      ) -> pd.DataFrame:
    """One row per review: its start, probability, label and how many of the words it read the model knows.
    A review with no known word has no probability (an empty cell) and the label 'not scored'."""
    rows = []
    for text, p, toks in zip(texts, probabilities, tokens, strict=True):
        known = sum(not t.oov for t in toks)
        rows.append({"probability": float(p), "label": label(float(p)), "review": short(text),
                     "words read": len(toks), "known words": known})
    return pd.DataFrame(rows, columns=["probability", "label", "review", "words read", "known words"])


# ---------------------------------------------------------------- word shading
def _shade(delta: float, scale: float) -> str:
    strength = 0.0 if scale <= 0 else min(abs(delta) / scale, 1.0)
    alpha = round(0.08 + 0.62 * strength, 3) if strength > 0 else 0.0
    return f"rgba(26,152,80,{alpha})" if delta > 0 else f"rgba(215,48,39,{alpha})"


def attribution_html(tokens: Sequence[Token], deltas: Sequence[float]) -> str:
    """The review as the model read it, each word shaded green (pushed towards positive) or red.

    Every word is HTML-escaped; unknown (out-of-vocabulary) words get a dotted underline.
    """
    deltas = np.asarray(deltas, dtype=float)
    scale = float(np.max(np.abs(deltas))) if len(deltas) else 0.0
    spans = []
    for token, delta in zip(tokens, deltas, strict=True):
        style = f"background:{_shade(delta, scale)};padding:0.1em 0.2em;border-radius:0.25em;"
        title = f"{token.word}: {delta:+.3f}"
        if token.oov:
            style += "text-decoration:underline dotted;text-underline-offset:0.2em;"
            title += " (unknown word)"
        spans.append(f'<span style="{style}" title="{html.escape(title, quote=True)}">'
                     f"{html.escape(token.word)}</span>")
    return '<div style="line-height:2.1;font-size:1.05rem;overflow-wrap:anywhere;">' + " ".join(spans) + "</div>"


LEGEND_HTML = (
    '<div style="margin-top:0.6em;line-height:2;">'
    '<span style="background:rgba(26,152,80,0.6);padding:0.1em 0.3em;border-radius:0.25em;">pushes positive</span> '
    '<span style="background:rgba(215,48,39,0.6);padding:0.1em 0.3em;border-radius:0.25em;">pushes negative</span> '
    '<span style="text-decoration:underline dotted;text-underline-offset:0.2em;">unknown word</span> '
    "(not in the model's vocabulary: it reads them all as the same [UNK] token)</div>"
)


# ---------------------------------------------------------------- runs
def run_label(row: dict) -> str:
    text = row["name"] + (" (shipped)" if row.get("shipped") else "")
    if row.get("error"):
        return text + " — damaged"
    return text


def usable_runs(rows: Sequence[dict]) -> list[dict]:
    return [r for r in rows if not r.get("error")]


def default_run(rows: Sequence[dict]) -> str | None:
    """The shipped `best` if present, else the shipped `notebook`, else the newest run (rows come newest first)."""
    rows = usable_runs(rows)
    for wanted in ("best", "notebook"):
        for row in rows:
            if row.get("shipped") and row["name"] == wanted:
                return row["path"]
    user = [r for r in rows if not r.get("shipped")]
    ordered = user or list(rows)
    return ordered[0]["path"] if ordered else None


def runs_frame(rows: Sequence[dict]) -> pd.DataFrame:
    table = [{"name": r["name"], "kind": "shipped" if r.get("shipped") else "yours",
              "cell": r.get("cell"), "test accuracy": r.get("test_accuracy"), "status": r.get("status"),
              "created": r.get("created"), "problem": r.get("error", "")} for r in rows]
    return pd.DataFrame(table, columns=["name", "kind", "cell", "test accuracy", "status", "created", "problem"])


def suggest_import_name(filename: str, taken: Iterable[str]) -> str:
    stem = re.sub(r"\.zip$", "", Path(filename or "run").name, flags=re.IGNORECASE)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "run"
    stem = re.sub(r"\.\.+", ".", stem)[:56]
    if not stem[0].isalnum():
        stem = "run-" + stem
    taken = set(taken)
    name, n = stem, 2
    while name in taken:
        name, n = f"{stem}-{n}", n + 1
    return name


def data_sources() -> list[tuple[str, str]]:
    """(value for JobManager.submit, label) for every data source this server can offer."""
    sources = [("sample", "bundled sample: 2,000 reviews (trains in seconds)")]
    full = os.environ.get("SENTIMENT_IMDB_DIR") or str(ROOT.parent / "shared" / "data" / "imdb")
    if (Path(full) / "train.jsonl.gz").is_file() or (Path(full) / "train" / "pos").is_dir():
        sources.append((full, "full IMDB: 25,000 training reviews (minutes)"))
    sources.append(("tfds", "TensorFlow Datasets imdb_reviews (downloads 84 MB once; needs internet)"))
    return sources


# ---------------------------------------------------------------- hyperparameters
def bounds(name: str, limits=None) -> tuple[float, float]:
    """A widget's range: the hyperparameter's range (config.SCHEMA), capped by the server's limits where it has one."""
    low, high = SCHEMA[name].range
    if limits is not None and name in limits.caps:
        high = min(high, limits.caps[name])
    return low, high


def config_from_values(values: dict) -> Config:
    """A Config from widget values, with ints kept ints. Raises ConfigError naming the field."""
    clean = {}
    for name, p in SCHEMA.items():
        if name not in values:
            continue
        value = values[name]
        try:
            if p.type is int:
                value = int(round(float(value)))
            elif p.type in (float, bool):
                value = p.type(value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{name} must be a number, got {value!r}") from error
        clean[name] = value
    return Config.from_dict(clean)


def preset_values(preset: str) -> dict:
    return PRESETS[preset].to_dict()


# ---------------------------------------------------------------- training progress
def ema(values: Sequence[float], alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average, bias-corrected so the first points are not pulled towards 0."""
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    acc, weight = 0.0, 0.0
    for i, v in enumerate(values):
        acc = (1 - alpha) * acc + alpha * v
        weight = (1 - alpha) * weight + alpha
        out[i] = acc / weight
    return out


def thin(frame: pd.DataFrame, max_points: int = 600) -> pd.DataFrame:
    """Every k-th row (and the last) so a chart stays light on a phone."""
    if len(frame) <= max_points:
        return frame
    step = math.ceil(len(frame) / max_points)
    keep = np.zeros(len(frame), dtype=bool)
    keep[::step] = True
    keep[-1] = True
    return frame[keep]


def batch_frame(batches: Sequence[BatchEvent], alpha: float | None = None, max_points: int = 600) -> pd.DataFrame:
    """Per-batch loss and accuracy, raw and smoothed, in long form: step, metric, value, smoothed."""
    if not batches:
        return pd.DataFrame(columns=["step", "epoch", "metric", "value", "smoothed"])
    frame = pd.DataFrame([{"step": b.global_step, "epoch": b.epoch, "loss": b.loss, "accuracy": b.accuracy}
                          for b in batches])
    if alpha is None:  # about 1/20 of an epoch's worth of batches, within [0.02, 0.3]
        per_epoch = max(frame.groupby("epoch").size().max(), 1)
        alpha = float(np.clip(20.0 / per_epoch, 0.02, 0.3))
    parts = []
    for metric in ("loss", "accuracy"):
        part = frame[["step", "epoch"]].copy()
        part["metric"] = metric
        part["value"] = frame[metric]
        part["smoothed"] = ema(frame[metric].to_numpy(), alpha)
        parts.append(thin(part, max_points))
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


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


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


def confusion_frame(matrix: Sequence[Sequence[int]]) -> pd.DataFrame:
    """[[TN, FP], [FN, TP]] in long form for a heatmap: actual, predicted, count, share of the actual row."""
    rows = []
    names = (NEGATIVE, POSITIVE)
    for a, row in enumerate(matrix):
        total = max(sum(row), 1)
        for b, count in enumerate(row):
            rows.append({"actual": names[a], "predicted": names[b], "count": int(count), "share": count / total})
    return pd.DataFrame(rows, columns=["actual", "predicted", "count", "share"])


# ---------------------------------------------------------------- inside the network
def word_labels(tokens: Sequence[Token]) -> list[str]:
    """Unique, ordered axis labels: '1 the', '2 movie', ..."""
    return [f"{i + 1} {t.word}" for i, t in enumerate(tokens)]


def reading_frame(tokens: Sequence[Token], as_it_reads: Sequence[float]) -> pd.DataFrame:
    return pd.DataFrame({"position": np.arange(1, len(tokens) + 1), "word": [t.word for t in tokens],
                         "label": word_labels(tokens), "probability": np.asarray(as_it_reads, dtype=float),
                         "unknown": [t.oov for t in tokens]})


def state_frame(tokens: Sequence[Token], states: np.ndarray, max_units: int | None = None) -> pd.DataFrame:
    """(n_tokens, units) in long form for a units x words heatmap: position, word, label, unit, value."""
    states = np.asarray(states, dtype=float)
    if max_units is not None:
        states = states[:, :max_units]
    n, units = states.shape if states.ndim == 2 else (0, 0)
    labels = word_labels(tokens)
    return pd.DataFrame({"position": np.repeat(np.arange(1, n + 1), units),
                         "word": np.repeat([t.word for t in tokens], units) if n else [],
                         "label": np.repeat(labels, units) if n else [],
                         "unit": np.tile(np.arange(units), n),
                         "value": states.reshape(-1)})


def reference_frame(insights: dict) -> pd.DataFrame:
    points = np.asarray(insights["reference_points"], dtype=float)
    labels = np.asarray(insights["reference_labels"])
    return pd.DataFrame({"x": points[:, 0], "y": points[:, 1],
                         "review": np.where(labels == 1, "positive review", "negative review")})


def trajectory_frame(tokens: Sequence[Token], path: np.ndarray) -> pd.DataFrame:
    path = np.asarray(path, dtype=float).reshape(-1, 2)
    return pd.DataFrame({"position": np.arange(1, len(path) + 1), "word": [t.word for t in tokens][: len(path)],
                         "x": path[:, 0], "y": path[:, 1]})


def unit_frame(tokens: Sequence[Token], reading_layers: list, units: int, unit: int) -> pd.DataFrame:
    """A head-feature unit's hidden activation per word."""
    direction = "backward" if unit >= units else "forward"
    values = np.asarray(reading_layers[-1][direction]["h"][:, unit % units], dtype=float)
    return pd.DataFrame({"position": np.arange(1, len(tokens) + 1), "word": [t.word for t in tokens],
                         "label": word_labels(tokens), "activation": values})


def unit_name(unit: int, units: int, bidirectional: bool) -> str:
    if not bidirectional:
        return f"unit {unit}"
    return f"unit {unit % units} ({'backward' if unit >= units else 'forward'})"


def grad_norm_frame(histories: dict[str, dict], which: str = "last") -> pd.DataFrame:
    """‖∂L/∂h_t‖ per time step t, per run and epoch, in long form: run, epoch, step, norm.

    `which`: 'all', 'first' (before training), 'last', or an epoch number as a string.
    """
    rows = []
    for run, history in histories.items():
        records = [r for r in (history or {}).get("grad_norms", []) if r.get("norms")]
        if not records:
            continue
        if which == "first":
            records = records[:1]
        elif which == "last":
            records = records[-1:]
        elif which != "all":
            records = [r for r in records if str(r["epoch"]) == which]
        for record in records:
            norms = np.asarray(record["norms"], dtype=float)
            for t, value in enumerate(norms, 1):
                if value > 0 and math.isfinite(value):
                    rows.append({"run": run, "epoch": int(record["epoch"]), "step": t, "norm": float(value)})
    return pd.DataFrame(rows, columns=["run", "epoch", "step", "norm"])


# ---------------------------------------------------------------- comparing runs
COMPARE_FIELDS = [p.name for group in GROUPED.values() for p in group]  # the Train page's order


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and abs(value) < 0.01:
            return f"{value:g}"
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def compare_frame(loaded: Sequence) -> pd.DataFrame:
    """Hyperparameters and test metrics, one column per run (strings, so mixed types show cleanly)."""
    table: dict[str, dict[str, str]] = {}
    for run in loaded:
        metrics, meta, history = run.metrics, run.meta, run.history
        column = {
            "test accuracy": _fmt(metrics.get("accuracy")),
            "test loss": _fmt(metrics.get("loss")),
            "test ROC AUC": _fmt(metrics.get("roc_auc")),
            "test reviews": _fmt(metrics.get("n")),
            "best validation accuracy": _fmt(max((e.get("val_accuracy", float("nan"))
                                                 for e in history.get("epochs", [])), default=None)),
            "epochs run": _fmt(len(history.get("epochs", []))),
            "best epoch": _fmt(history.get("best_epoch")),
            "training time": format_seconds((meta.get("timings") or {}).get("train_seconds")),
            "training reviews": _fmt((meta.get("samples") or {}).get("train")),
            "data": Path(str(meta.get("data", "–"))).name,
        }
        config = run.config.to_dict()
        column.update({name: _fmt(config[name]) for name in COMPARE_FIELDS})
        key = run.name + (" (shipped)" if run.shipped else "")
        while key in table:
            key += "'"
        table[key] = column
    return pd.DataFrame(table)


def differing_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.shape[1] < 2:
        return frame
    return frame[frame.nunique(axis=1) > 1]


def history_frame(loaded: Sequence) -> pd.DataFrame:
    """Every run's per-epoch metrics in long form: run, epoch, metric, split, value."""
    parts = []
    for run in loaded:
        part = epoch_frame(run.history.get("epochs", []))
        part.insert(0, "run", run.name + (" (shipped)" if run.shipped else ""))
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["run", "epoch", "metric", "split", "value"])
    return pd.concat(parts, ignore_index=True)
