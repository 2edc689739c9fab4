"""The reviews a run gets most confidently wrong, and its accuracy per slice of the test reviews.

A slice is a property a learner can read off a review: its length, whether it negates ("not", "n't", "never",
"no"), whether it turns ("but", "however"), and its star rating where the data keeps one (1-4 negative,
7-10 positive; the bundled sample and jsonl folders do). Reviews with no word the model knows are left out
of every figure and counted, as `evaluate` does. Predicting a full test split takes minutes with a large
run, so `test_predictions` keeps each (run, data) pair's probabilities on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import data as datamod
from .features import DEFAULT_CACHE
from .inference import Engine
from .text import tokenize

LENGTH_BINS = (100, 200, 400)  # words; a review's length slice is the bin its word count falls in
NEGATION = re.compile(r"\b(?:not|never|no)\b|n['\u2019]t\b")  # on the lowercased review
CONTRAST = frozenset({"but", "however"})
SLICES = ("length", "negation", "contrast", "rating")
CHUNK = 1024  # reviews predicted between two progress reports


@dataclass(frozen=True)
class Tags:
    """The slices one review falls in."""

    length: str
    negation: bool
    contrast: bool
    rating: int | None = None


@dataclass(frozen=True)
class Mistake:
    index: int  # in the test split
    text: str
    label: int
    probability: float
    tags: Tags

    @property
    def confidence(self) -> float:
        """How far the probability is from the true label's side: 0.5 at the line, 1 at the wrong end."""
        return abs(self.label - self.probability)


@dataclass(frozen=True)
class SliceAccuracy:
    slice: str  # one of SLICES
    value: str  # e.g. "200-399 words", "with", "without", "8"
    n: int
    accuracy: float


@dataclass(frozen=True)
class Report:
    mistakes: list[Mistake]  # every wrong review, most confident first
    slices: list[SliceAccuracy]
    n: int  # scored reviews
    accuracy: float
    no_words: int  # reviews left out: no word the model knows

    def summary(self) -> dict:
        """The figures as JSON-ready values (what the CLI prints after the mistakes)."""
        return {"n": self.n, "accuracy": round(self.accuracy, 6), "no_words": self.no_words,
                "mistakes": len(self.mistakes),
                "slices": [{**asdict(s), "accuracy": round(s.accuracy, 6)} for s in self.slices]}


def length_bin(words: int) -> str:
    low = 0
    for high in LENGTH_BINS:
        if words < high:
            return f"{low}-{high - 1} words"
        low = high
    return f"{low}+ words"


def tag(text: str, rating: int | None = None) -> Tags:
    words = tokenize(text)
    return Tags(length_bin(len(words)), bool(NEGATION.search(text.lower())), not CONTRAST.isdisjoint(words),
                None if rating is None else int(rating))


def tag_dict(tags: Tags) -> dict:
    """Tags as printed: the rating only where it is known."""
    shown = asdict(tags)
    if shown["rating"] is None:
        del shown["rating"]
    return shown


def report(texts: Sequence[str], labels: np.ndarray, probabilities: np.ndarray,
           ratings: np.ndarray | None = None) -> Report:
    """Mistakes and per-slice accuracy from a split's probabilities (NaN: not scored)."""
    labels = np.asarray(labels).astype(int)
    p = np.asarray(probabilities, dtype=np.float64)
    tags = [tag(t, None if ratings is None else ratings[i]) for i, t in enumerate(texts)]
    scored = ~np.isnan(p)
    correct = scored & ((p >= 0.5) == (labels == 1))
    wrong = np.flatnonzero(scored & ~correct)
    wrong = wrong[np.argsort(-np.abs(labels[wrong] - p[wrong]), kind="stable")]
    mistakes = [Mistake(int(i), texts[i], int(labels[i]), float(p[i]), tags[i]) for i in wrong]
    values = {"length": [length_bin(b) for b in (0, *LENGTH_BINS)], "negation": ["with", "without"],
              "contrast": ["with", "without"],
              "rating": [str(r) for r in sorted({t.rating for t in tags if t.rating is not None})]}
    slices = []
    for kind in SLICES:
        of = [_slice_value(kind, t) for t in tags]
        for value in values[kind]:
            inside = scored & np.array([v == value for v in of], dtype=bool)
            if inside.any():
                slices.append(SliceAccuracy(kind, value, int(inside.sum()), float(correct[inside].mean())))
    n = int(scored.sum())
    return Report(mistakes, slices, n, float(correct.sum() / n) if n else float("nan"), int((~scored).sum()))


def _slice_value(kind: str, tags: Tags) -> str | None:
    value = getattr(tags, kind)
    if isinstance(value, bool):
        return "with" if value else "without"
    return None if value is None else str(value)


def test_predictions(engine: Engine, data: str, run_path: Path | str | None = None,
                     cache_dir: Path | None = DEFAULT_CACHE,
                     on_progress: Callable[[int, int], None] | None = None,
                     ) -> tuple[datamod.Split, np.ndarray | None, np.ndarray]:
    """A source's test split, its ratings (None where unknown) and the engine's probabilities.

    With `run_path` and `cache_dir`, the probabilities are kept on disk per (run files, data source), so a
    second call with the same pair costs reading the reviews only. Raises DataError.
    """
    _, test = datamod.load_raw(data)
    ratings = datamod.test_ratings(data)
    if ratings is not None and len(ratings) != len(test):
        ratings = None
    cached = _cache_path(cache_dir, run_path, data)
    if cached is not None and cached.is_file():
        probabilities = np.load(cached)
        if probabilities.shape == (len(test),):
            return test, ratings, probabilities
    parts = []
    for start in range(0, len(test), CHUNK):
        parts.append(engine.predict(test.texts[start:start + CHUNK]))
        if on_progress is not None:
            on_progress(min(start + CHUNK, len(test)), len(test))
    probabilities = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if cached is not None:
        _save(cached, probabilities)
    return test, ratings, probabilities


def find(engine: Engine, data: str, run_path: Path | str | None = None, cache_dir: Path | None = DEFAULT_CACHE,
         on_progress: Callable[[int, int], None] | None = None) -> Report:
    """The run's mistakes and accuracy per slice on a data source's test split. Raises DataError."""
    test, ratings, probabilities = test_predictions(engine, data, run_path, cache_dir, on_progress)
    return report(test.texts, test.labels, probabilities, ratings)


def _cache_path(cache_dir: Path | None, run_path: Path | str | None, data: str) -> Path | None:
    """One file per (run, source): the run's manifest (a SHA-256 per file) and the source's fingerprint."""
    if cache_dir is None or run_path is None:
        return None
    try:
        manifest = (Path(run_path) / "manifest.json").read_bytes()
    except OSError:
        return None
    key = hashlib.sha256(manifest + json.dumps(datamod.describe_source(data)).encode()).hexdigest()[:24]
    return Path(cache_dir) / "predictions" / f"{key}.npy"


def _save(path: Path, probabilities: np.ndarray) -> None:
    """Written to a temporary file and renamed, so a reader never sees half of it; a failure is not fatal."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy")
        with os.fdopen(handle, "wb") as out:
            np.save(out, probabilities)
        os.replace(tmp, path)
    except OSError:
        pass
