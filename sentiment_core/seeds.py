"""How much a recipe's result owes to its seed: the same hyperparameters trained with other seeds.

A run is one draw: its starting weights, its order of the reviews and its dropout all come from its seed, and
on IMDB that alone moves test accuracy by about half a point. A shipped run's card therefore gives the runs of
its recipe under other seeds beside its own, recorded in its meta.json as `seeds` by `python -m sentiment_core
seeds`. Only runs whose every other hyperparameter and data source match are accepted.
"""

from __future__ import annotations

import dataclasses
import statistics

from .data import same_source
from .runs import Run


def _recipe(run: Run) -> dict:
    return {**dataclasses.asdict(run.config), "seed": None}


def _figures(run: Run) -> dict:
    short = run.metrics.get("short_texts") or {}
    return {"seed": run.config.seed, "run": run.name, "test_accuracy": run.metrics["accuracy"],
            "short_texts_accuracy": short.get("accuracy"), "ece": run.metrics.get("ece")}


def spread(run: Run, others: list[Run]) -> dict:
    """The record of `run` and `others`, the same recipe under other seeds: per seed and min / mean / max.

    Raises ValueError naming the first difference when a run is not the same recipe, or repeats a seed.
    """
    mine = _recipe(run)
    for other in others:
        if not same_source(other.meta.get("data", ""), run.meta.get("data", "")):
            raise ValueError(f"{other.name} was trained on {other.meta.get('data')!r}, "
                             f"{run.name} on {run.meta.get('data')!r}")
        theirs = _recipe(other)
        differ = [k for k in mine if mine[k] != theirs.get(k)]
        if differ:
            k = differ[0]
            raise ValueError(f"{other.name} is not {run.name}'s recipe under another seed: "
                             f"{k} is {theirs.get(k)!r}, not {mine[k]!r}")
    seeds = [r.config.seed for r in [run, *others]]
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"each run must have its own seed; these have {seeds}")
    per_seed = [_figures(r) for r in [run, *others]]
    record = {"runs": per_seed}
    for key in ("test_accuracy", "short_texts_accuracy", "ece"):
        values = [f[key] for f in per_seed if f[key] is not None]
        if values:
            record[key] = {"min": min(values), "mean": statistics.fmean(values), "max": max(values)}
    return record


def card_line(record: dict | None) -> str:
    """The card's line on seeds; empty for a run without the record."""
    if not record:
        return ""
    runs = record["runs"]
    test = record["test_accuracy"]
    each = ", ".join(f"{f['test_accuracy']:.4f} (seed {f['seed']})" for f in runs)
    line = (f"**Over {len(runs)} seeds** (the same recipe, each trained and tested alike): test accuracy {each}; "
            f"mean {test['mean']:.4f}, spread {test['max'] - test['min']:.4f}.")
    for key, name in (("short_texts_accuracy", "Short texts"), ("ece", "Test ECE")):
        if record.get(key):
            low, mean, high = (record[key][k] for k in ("min", "mean", "max"))
            line += f" {name}: {low:.4f}-{high:.4f} (mean {mean:.4f})."
    return line
