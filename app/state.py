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
from threadpoolctl import threadpool_limits

from sentiment_core import board, challenges, connectivity, counterfactual, data, mistakes, runs
from sentiment_core.inference import Engine, Reading
from sentiment_core.jobs import JobManager
from sentiment_core.people import Actor
from sentiment_core.text import Token

# One BLAS thread per computation: a server's parallelism is its sessions. OpenBLAS' default (a thread per
# core) spins threads that wait for each other on a busy server: a `best` prediction took 86 ms of CPU
# instead of 27, an edit on "Edit a review" 1,457 instead of 357 (benchmarks/editor_latency.py).
threadpool_limits(limits=1, user_api="blas")

_MANAGERS: dict[str, JobManager] = {}  # what job_manager() created, for tests and shutdown


def runs_dir() -> Path:
    """User runs: $SENTIMENT_RUNS_DIR (read on every call, so tests can redirect it) or runs.RUNS_DIR."""
    return Path(os.environ.get("SENTIMENT_RUNS_DIR") or runs.RUNS_DIR)


def jobs_dir() -> Path:
    return Path(os.environ.get("SENTIMENT_JOBS_DIR") or runs.ROOT / "artifacts" / "jobs")


def list_runs() -> list[dict]:
    """runs.list_runs' rows, from the class board's summaries: a run's files are read again only when it
    changed, so a server with hundreds of runs lists them at a stat each (every page's model selector)."""
    return [summary.row() for summary in class_board().runs]


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


# The editor's versions and suggestions, and a run's mistakes, cached the same way (per run version and text).
@st.cache_data(max_entries=256, show_spinner="Scoring the edit…")
def _score(path: str, mtime: float, words: tuple[str, ...], _engine: Engine) -> counterfactual.Scored:
    return counterfactual.score(_engine, words)


@st.cache_data(max_entries=32, show_spinner="Deleting words until the label flips…")
def _flip(path: str, mtime: float, words: tuple[str, ...], _engine: Engine) -> counterfactual.FlipSearch:
    return counterfactual.flip_by_deletions(_engine, _score(path, mtime, words, _engine))


@st.cache_data(max_entries=32, show_spinner="Trying antonyms and negations…")
def _swaps(path: str, mtime: float, words: tuple[str, ...], _engine: Engine) -> list[counterfactual.Substitution]:
    return counterfactual.substitutions(_engine, _score(path, mtime, words, _engine))


def score(run: runs.Run, engine: Engine, words: tuple[str, ...]) -> counterfactual.Scored:
    """counterfactual.score, cached. Raises NoWordsError."""
    return _score(str(run.path), mtime(str(run.path)), tuple(words), engine)


def flip(run: runs.Run, engine: Engine, words: tuple[str, ...]) -> counterfactual.FlipSearch:
    return _flip(str(run.path), mtime(str(run.path)), tuple(words), engine)


def swaps(run: runs.Run, engine: Engine, words: tuple[str, ...]) -> list[counterfactual.Substitution]:
    return _swaps(str(run.path), mtime(str(run.path)), tuple(words), engine)


@st.cache_data(max_entries=8, show_spinner="Scoring every test review (minutes for a large run on the full set)…")
def _mistakes(path: str, mtime: float, data: str, _engine: Engine) -> mistakes.Report:
    return mistakes.find(_engine, data, path)


def find_mistakes(run: runs.Run, engine: Engine, data: str) -> mistakes.Report:
    """mistakes.find, cached here and (its probabilities) on disk. Raises DataError."""
    return _mistakes(str(run.path), mtime(str(run.path)), data, engine)
@st.cache_data(max_entries=64, show_spinner="Measuring how much each word still counts…")
def _connectivity(path: str, mtime: float, text: str, _engine: Engine) -> tuple[list[Token], np.ndarray]:
    return connectivity.connectivity(_engine, text)


FORGETTING_REVIEWS, FORGETTING_DISTANCES = 100, 100


@st.cache_data(max_entries=16, show_spinner="Measuring memory over the sample's test reviews…")
def _forgetting(path: str, mtime: float, _engine: Engine) -> tuple[np.ndarray, int]:
    _, test = data.load_raw("sample")
    return connectivity.forgetting_curve(_engine, test.texts, FORGETTING_DISTANCES, FORGETTING_REVIEWS)


def connectivity_of(run: runs.Run, engine: Engine, text: str) -> tuple[list[Token], np.ndarray]:
    """connectivity.connectivity, cached. Raises NoWordsError."""
    return _connectivity(str(run.path), mtime(str(run.path)), text, engine)


def forgetting(run: runs.Run, engine: Engine) -> tuple[np.ndarray, int]:
    """Mean connectivity by distance from the end over the bundled sample's test reviews that are long enough
    (FORGETTING_REVIEWS of them, FORGETTING_DISTANCES words or the run's maxlen), and how many; cached."""
    return _forgetting(str(run.path), mtime(str(run.path)), engine)


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


TEACHER_KEY = "teacher_token"  # st.session_state: the teacher token this session signed in with (never in a URL)


def actor() -> Actor:
    """This session as someone who acts: its owner id, and the teacher token it signed in with, if any
    (checked by the engine at every act)."""
    return Actor(owner(), st.session_state.get(TEACHER_KEY, ""))


def class_board() -> board.Board:
    """Every run on this server and the shipped ones, summarized from their metadata (board.class_runs)."""
    return board.class_runs(runs_dir(), runs.SHIPPED_DIR, challenges.READS_GRADIENTS)


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


def repick(key: str, shown, value) -> None:
    """Set a picker whose options are positions (word k, review k) to `value` whenever what they point at,
    `shown`, changes. With the same position still picked, the browser keeps the label of what used to be
    there, and the next action would go to something the user does not see."""
    marker = f"{key}_of"
    if st.session_state.get(marker) != shown:
        st.session_state[marker] = shown
        st.session_state[key] = value
