"""The data frames behind the app's tables and charts (long form, as Altair wants them).

Plain pandas and NumPy, so each can be tested without a browser; app/charts.py draws them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment_core.challenges import BY_ID
from sentiment_core.config import GROUPED, SCHEMA
from sentiment_core.people import ANONYMOUS
from sentiment_core.text import Token

from .progress import epoch_frame
from .texts import NEGATIVE, POSITIVE, format_seconds, label, short


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


def runs_frame(rows: Sequence[dict]) -> pd.DataFrame:
    table = [{"name": r["name"], "kind": "shipped" if r.get("shipped") else "yours",
              "cell": r.get("cell"), "test accuracy": r.get("test_accuracy"), "status": r.get("status"),
              "created": r.get("created"), "problem": r.get("error", "")} for r in rows]
    return pd.DataFrame(table, columns=["name", "kind", "cell", "test accuracy", "status", "created", "problem"])


def confusion_frame(matrix: Sequence[Sequence[int]]) -> pd.DataFrame:
    """[[TN, FP], [FN, TP]] in long form for a heatmap: actual, predicted, count, share of the actual row."""
    rows = []
    names = (NEGATIVE, POSITIVE)
    for a, row in enumerate(matrix):
        total = max(sum(row), 1)
        for b, count in enumerate(row):
            rows.append({"actual": names[a], "predicted": names[b], "count": int(count), "share": count / total})
    return pd.DataFrame(rows, columns=["actual", "predicted", "count", "share"])


def word_labels(tokens: Sequence[Token]) -> list[str]:
    """Unique, ordered axis labels: '1 the', '2 movie', ..."""
    return [f"{i + 1} {t.word}" for i, t in enumerate(tokens)]


def reading_frame(tokens: Sequence[Token], as_it_reads: Sequence[float]) -> pd.DataFrame:
    return pd.DataFrame({"position": np.arange(1, len(tokens) + 1), "word": [t.word for t in tokens],
                         "label": word_labels(tokens), "probability": np.asarray(as_it_reads, dtype=float),
                         "unknown": [t.oov for t in tokens]})


def forgetting_frame(curves: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per run (label -> mean connectivity at distance 1, 2, ...): run, distance, connectivity, and the
    connectivity relative to the last word's (distance 1), which puts runs of any scale on one axis."""
    frames = [pd.DataFrame({"run": name, "distance": np.arange(1, len(curve) + 1), "connectivity": curve,
                            "relative": curve / curve[0] if curve[0] > 0 else np.nan})
              for name, curve in curves.items() if len(curve)]
    columns = ["run", "distance", "connectivity", "relative"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


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
            "test ECE (calibration error)": _fmt(metrics.get("ece")),
            "temperature": _fmt((meta.get("calibration") or {}).get("temperature")),
            "short-text accuracy": _fmt((metrics.get("short_texts") or {}).get("accuracy")),
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


def reliability_frame(loaded: Sequence) -> pd.DataFrame:
    """Every run's reliability table (its test reviews in 10 bins of probability positive) in long form:
    run, bin, mean probability, share positive, count, ece. Runs saved before calibration was measured
    have no table and no rows."""
    rows = []
    for run in loaded:
        label = run.name + (" (shipped)" if run.shipped else "")
        for row in run.metrics.get("reliability") or []:
            if row["count"]:
                rows.append({"run": label, "bin": f"{row['low']:.0%}–{row['high']:.0%}",
                             "mean probability": row["mean_probability"], "share positive": row["positive_share"],
                             "reviews": row["count"], "ece": run.metrics.get("ece")})
    return pd.DataFrame(rows, columns=["run", "bin", "mean probability", "share positive", "reviews", "ece"])


# The class board's hyperparameter columns (config.SCHEMA's names; shown with its labels), after the scores.
BOARD_FIELDS = ("cell", "units", "layers", "bidirectional", "members", "embedding_dim", "vocab_size", "maxlen",
                "dropout", "optimizer", "learning_rate", "batch_size", "epochs")
BOARD_SCORES = ("test accuracy", "parameters", "training time (s)")


def _shown(name: str, value):
    """A hyperparameter's value as the Train page writes it (e.g. 'SimpleRNN' for simple_rnn)."""
    return (SCHEMA[name].shown or {}).get(value, value)


def class_frame(summaries: Sequence, verdicts: Sequence, me: str) -> pd.DataFrame:
    """The class board: one row per run (board.RunSummary) with its challenge verdict (or None), best test
    accuracy first; `me`: this session's people.owner_tag, to mark its runs. The `path` column is for
    opening a run, not for showing."""
    rows = []
    for run, verdict in zip(summaries, verdicts, strict=True):
        row = {"run": run.name, "student": "reference (shipped)" if run.shipped else (run.nickname or ANONYMOUS),
               "yours": bool(run.owner) and run.owner == me, "test accuracy": run.accuracy,
               "test reviews": run.n, "parameters": run.parameters, "training time (s)": run.train_seconds,
               "data": Path(str(run.data)).name if run.data else None,
               "challenge": BY_ID[run.challenge].title if run.challenge in BY_ID else None,
               "result": verdict.word if verdict else None, "why": verdict.reason if verdict else run.error}
        row.update({SCHEMA[name].label: _shown(name, run.config.get(name)) for name in BOARD_FIELDS})
        row["path"] = run.path
        rows.append(row)
    columns = ["run", "student", "yours", *BOARD_SCORES[:1], "test reviews", *BOARD_SCORES[1:], "data",
               "challenge", "result", "why", *(SCHEMA[n].label for n in BOARD_FIELDS), "path"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("test accuracy", ascending=False, na_position="last", kind="stable",
                             ignore_index=True)


def board_csv(frame: pd.DataFrame) -> bytes:
    """The board as the teacher downloads it: every column but the server's paths."""
    return frame.drop(columns=["path"]).to_csv(index=False).encode("utf-8")


def mistakes_frame(mistakes: Sequence, top: int) -> pd.DataFrame:
    """The most confident mistakes (sentiment_core.mistakes.Mistake), one row each, with their slices."""
    rows = [{"rank": k + 1, "review": short(m.text), "label": NEGATIVE if m.label == 0 else POSITIVE,
             "probability": m.probability, "length": m.tags.length, "negation": m.tags.negation,
             "contrast": m.tags.contrast, "rating": m.tags.rating} for k, m in enumerate(mistakes[:top])]
    return pd.DataFrame(rows, columns=["rank", "review", "label", "probability", "length", "negation", "contrast",
                                       "rating"])


def slices_frame(slices: Sequence) -> pd.DataFrame:
    """Accuracy per slice (sentiment_core.mistakes.SliceAccuracy), in their order."""
    return pd.DataFrame([{"slice": s.slice, "value": s.value, "n": s.n, "accuracy": s.accuracy,
                          "order": k} for k, s in enumerate(slices)],
                        columns=["slice", "value", "n", "accuracy", "order"])


def attribution_changes_frame(words: Sequence[str], before: Sequence[float], after: Sequence[float],
                              top: int = 8) -> pd.DataFrame:
    """The words whose attribution an edit moved most: word, before, after, change (largest first)."""
    frame = pd.DataFrame({"word": list(words), "before": np.asarray(before, float), "after": np.asarray(after, float)})
    frame["change"] = frame["after"] - frame["before"]
    frame = frame.dropna()
    return frame.reindex(frame["change"].abs().sort_values(ascending=False).index).head(top)
