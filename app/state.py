"""What every session of this server shares: cached runs, engines and readings, and the one job manager.

Only NumPy, pandas and the engine's light modules are imported here, so the app starts without
Keras, TensorFlow or JAX.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import streamlit as st

from sentiment_core import runs
from sentiment_core.inference import Engine, Reading
from sentiment_core.jobs import JobManager
from sentiment_core.text import Token

_MANAGERS: dict[str, JobManager] = {}  # what job_manager() created, for tests and shutdown


def runs_dir() -> Path:
    """User runs: $SENTIMENT_RUNS_DIR (read on every call, so tests can redirect it) or runs.RUNS_DIR."""
    return Path(os.environ.get("SENTIMENT_RUNS_DIR") or runs.RUNS_DIR)


def jobs_dir() -> Path:
    return Path(os.environ.get("SENTIMENT_JOBS_DIR") or runs.ROOT / "artifacts" / "jobs")


def list_runs() -> list[dict]:
    return runs.list_runs(runs_dir(), runs.SHIPPED_DIR)


def mtime(path: str) -> float:
    try:
        return os.stat(Path(path) / "manifest.json").st_mtime
    except OSError:
        return 0.0


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _load(path: str, mtime: float) -> tuple[runs.Run, Engine]:
    run = runs.load_run(path)
    return run, Engine.from_run(run)


def load(path: str | Path) -> tuple[runs.Run, Engine]:
    """A run and its NumPy engine, cached per path and modification time. Raises runs.RunError only."""
    try:
        return _load(str(path), mtime(str(path)))
    except (ValueError, KeyError, IndexError, OSError) as error:  # e.g. weights that do not fit the config
        raise runs.RunError(f"run {Path(path).name!r} cannot be used: {error}") from error


# A page's reading and occlusion of one review, cached per run version (path and mtime) and text. They use
# the engine the page already holds, so a run deleted meanwhile cannot fail here.
@st.cache_data(max_entries=32, show_spinner="Reading the review…")
def _read(path: str, mtime: float, text: str, _engine: Engine) -> Reading:
    return _engine.read(text)


@st.cache_data(max_entries=64, show_spinner="Hiding each word in turn…")
def _occlusion(path: str, mtime: float, text: str, _engine: Engine) -> tuple[list[Token], np.ndarray]:
    return _engine.occlusion(text)


def read(run: runs.Run, engine: Engine, text: str) -> Reading:
    """Engine.read, cached. Raises NoWordsError."""
    return _read(str(run.path), mtime(str(run.path)), text, engine)


def occlusion(run: runs.Run, engine: Engine, text: str) -> tuple[list[Token], np.ndarray]:
    """Engine.occlusion, cached. Raises NoWordsError."""
    return _occlusion(str(run.path), mtime(str(run.path)), text, engine)


@st.cache_resource
def _job_manager(jobs: str) -> JobManager:
    # Keyed on the jobs folder alone: one manager per folder in this process (several app servers may
    # share a folder; its lease decides which one starts jobs, see sentiment_core/lease.py).
    manager = JobManager(Path(jobs), runs_dir())
    _MANAGERS[jobs] = manager
    return manager


def job_manager() -> JobManager:
    """The one job manager of this server, shared by every session; its runs go to runs_dir()."""
    return _job_manager(str(jobs_dir()))


def owner() -> str:
    """This browser session's id; jobs are listed and limited per owner."""
    if "owner" not in st.session_state:
        st.session_state["owner"] = uuid.uuid4().hex
    return st.session_state["owner"]


def keep_valid(key: str, options) -> None:
    """Forget a widget's remembered choice when it is no longer among its options (a run was deleted...)."""
    options = list(options)
    value = st.session_state.get(key)
    if value is None:
        return
    if isinstance(value, list):
        kept = [v for v in value if v in options]
        if kept != value:
            st.session_state[key] = kept
    elif value not in options:
        del st.session_state[key]
