"""What every page of the Streamlit app shares: cached engines, the one job manager, the model selector.

Only NumPy, pandas and the engine's light modules are imported here, so the app
starts without Keras, TensorFlow or JAX.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import streamlit as st

from sentiment_core import runs, views
from sentiment_core.inference import Engine
from sentiment_core.jobs import JobManager

MODEL_KEY = "model"  # st.session_state key of the sidebar's model selector: a run's path
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


def load_engine(path: str | Path) -> Engine:
    return load(path)[1]


@st.cache_resource
def _job_manager(jobs: str) -> JobManager:
    # Keyed on the jobs folder alone: two managers on one folder would both start its queued jobs.
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


def select_model(path: str) -> None:
    """Callback: make `path` the sidebar's model (callbacks run before widgets are drawn)."""
    st.session_state[MODEL_KEY] = str(path)


def sidebar() -> None:
    """The shared sidebar: the model selector used by Predict and Inside, and one line about the app."""
    rows = views.usable_runs(list_runs())
    paths = [r["path"] for r in rows]
    labels = {r["path"]: views.run_label(r) for r in rows}
    with st.sidebar:
        if paths:
            if st.session_state.get(MODEL_KEY) not in paths:
                st.session_state[MODEL_KEY] = views.default_run(rows)
            st.selectbox("Model", paths, key=MODEL_KEY, format_func=lambda p: labels.get(p, Path(p).name),
                         help="The trained run that Home, Predict and Inside use. Train your own on the Train page.")
        else:
            st.session_state.pop(MODEL_KEY, None)
            st.info("No trained model yet.")
        st.caption("RNN Sentiment Lab: train recurrent networks on IMDB movie reviews and look inside them "
                   "while they read. Everything runs on this server; nothing is sent elsewhere.")


def current_model() -> str | None:
    """The selected run's path, or None when there is none."""
    return st.session_state.get(MODEL_KEY)


def require_model() -> tuple[runs.Run, Engine] | None:
    """The selected run and engine; when there is none (or it is damaged) say so and link to Train."""
    path = current_model()
    if not path:
        st.warning("There is no trained model yet. Train one first: the tiny preset takes seconds.")
        st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
        return None
    try:
        return load(path)
    except runs.RunError as error:
        st.error(f"The selected model cannot be loaded: {error}. Pick another one in the sidebar.")
        return None


def model_or_stop() -> tuple[runs.Run, Engine]:
    """The page's model, captioned; without one the page explains why and stops here."""
    loaded = require_model()
    if loaded is None:
        st.stop()
    model_caption(loaded[0])
    return loaded


def model_caption(run: runs.Run) -> None:
    c = run.config
    acc = run.metrics.get("accuracy")
    bits = [f"**{run.name}**", f"{'bidirectional ' if c.bidirectional else ''}{c.cell} × {c.layers}",
            f"{c.units} units", f"reads up to {c.maxlen} words"]
    if c.members > 1:
        bits.insert(1, f"ensemble of {c.members} networks")
    if acc is not None:
        bits.append(f"test accuracy {acc:.1%}")
    st.caption("Model: " + " · ".join(bits) + " — change it in the sidebar.")


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
