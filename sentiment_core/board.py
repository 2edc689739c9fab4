"""The class board's rows: one summary per run, read from its small files only.

A class server may hold hundreds of runs. A summary reads `config.json`, `metrics.json`, `meta.json` and the
run's student record (runs.STUDENT_FILE), never its weights or vocabulary, and `history.json` (which holds
every batch) only for a run submitted for a challenge that looks at its gradients. Each summary is kept
until its run changes (the manifest's and the student record's stat), so drawing the board again costs a
stat per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import runs


@dataclass(frozen=True)
class RunSummary:
    """What the class board shows of a run. Missing facts are None (older runs, damaged files)."""

    name: str
    path: str
    shipped: bool
    owner: str | None = None  # people.owner_tag of the student who made it here
    nickname: str | None = None
    challenge: str | None = None  # the challenge it was submitted for
    created: str | None = None
    status: str | None = None  # "complete", or "stopped" when its student stopped it
    data: str | None = None
    config: dict = field(default_factory=dict)
    accuracy: float | None = None  # on its test split
    n: int | None = None  # test reviews scored
    parameters: int | None = None
    train_seconds: float | None = None
    slices: dict = field(default_factory=dict)  # metrics.length_slices: accuracy on long and short reviews
    gradient: tuple[tuple[int, float, float], ...] = ()  # (epoch, ‖∂L/∂h_1‖, ‖∂L/∂h_T‖) per probed epoch
    error: str | None = None

    def row(self) -> dict:
        """The run as a row of runs.list_runs (what the run pickers and the Runs page list)."""
        row = {"name": self.name, "path": self.path, "shipped": self.shipped}
        if self.error:
            return {**row, "error": self.error}
        return {**row, "created": self.created, "cell": self.config.get("cell"), "status": self.status,
                "test_accuracy": self.accuracy}


def _json(path: Path, name: str) -> dict:
    document = json.loads((path / name).read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{name} is not a JSON object")
    return document


def _number(value, kind=float):
    return kind(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _gradient(path: Path) -> tuple[tuple[int, float, float], ...]:
    found = []
    for record in _json(path, "history.json").get("grad_norms") or []:
        norms = record.get("norms") if isinstance(record, dict) else None
        if isinstance(norms, list) and len(norms) >= 2 and all(isinstance(v, (int, float)) for v in norms):
            found.append((int(record.get("epoch", 0)), float(norms[0]), float(norms[-1])))
    return tuple(found)


def summarize(path: Path, shipped: bool = False, gradients_for: frozenset[str] = frozenset()) -> RunSummary:
    """A run's summary; a run whose files cannot be read gets one with `error` set, never an exception.
    `gradients_for`: the challenges whose runs' gradient norms are read (from history.json)."""
    path = Path(path)
    student = {} if shipped else runs.read_student(path)
    base = dict(name=path.name, path=str(path), shipped=shipped, owner=student.get("owner"),
                nickname=student.get("nickname"), challenge=student.get("challenge"))
    try:
        meta, metrics, config = _json(path, "meta.json"), _json(path, "metrics.json"), _json(path, "config.json")
        slices = metrics.get("slices")
        summary = RunSummary(
            **base, created=meta.get("created"), status=meta.get("status"), data=meta.get("data"), config=config,
            accuracy=_number(metrics.get("accuracy")), n=_number(metrics.get("n"), int),
            parameters=_number(meta.get("parameters"), int),
            train_seconds=_number((meta.get("timings") or {}).get("train_seconds")),
            slices=slices if isinstance(slices, dict) else {},
            gradient=_gradient(path) if base["challenge"] in gradients_for else ())
    except (OSError, ValueError, UnicodeDecodeError, TypeError, AttributeError) as error:
        return RunSummary(**base, error=f"cannot be read: {error}")
    return summary


def _stamp(path: Path) -> tuple:
    """What says a run changed: its manifest (rewritten with every file) and its student record."""
    stamp = []
    for name in (runs.MANIFEST, runs.STUDENT_FILE):
        try:
            s = os.stat(path / name)
            stamp.append((s.st_mtime_ns, s.st_size, s.st_ino))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


_KNOWN: dict[str, tuple[tuple, RunSummary]] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Board:
    """Every run's summary, and a key that changes whenever one of them does (for what is built from it)."""

    runs: tuple[RunSummary, ...]
    key: str  # a digest of every listed run's path and stamps


def class_runs(runs_dir: Path = runs.RUNS_DIR, shipped_dir: Path = runs.SHIPPED_DIR,
               gradients_for: frozenset[str] = frozenset()) -> Board:
    """The shipped runs first, then the user runs newest first. A summary is read again only when its run
    changed; runs that are gone are forgotten."""
    found, key = [], []
    folders = [(p, True) for p in runs.run_dirs(shipped_dir)] + [(p, False) for p in runs.run_dirs(runs_dir)]
    with _LOCK:
        for path, shipped in folders:
            name, stamp = str(path), (_stamp(path), gradients_for)
            known = _KNOWN.get(name)
            if known is None or known[0] != stamp:
                known = _KNOWN[name] = (stamp, summarize(path, shipped, gradients_for))
            found.append(known[1])
            key.append((name, stamp))
        listed = {str(p) for p, _ in folders}
        for name in [k for k in _KNOWN if k not in listed and Path(k).parent in (Path(runs_dir), Path(shipped_dir))]:
            del _KNOWN[name]
    return Board(tuple(found), hashlib.sha256(repr(key).encode()).hexdigest())
