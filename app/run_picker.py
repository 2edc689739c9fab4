"""Choosing runs: the sidebar's model for Home, Predict and Inside, and the run lists of Compare and Inside.

One label per run and one rule for the default model, so every page names and offers runs alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from sentiment_core import runs
from sentiment_core.inference import Engine

from . import state

MODEL_KEY = "model"  # st.session_state key of the sidebar's model selector: a run's path


def run_label(row: dict) -> str:
    """A run's name as every page shows it: a row of runs.list_runs, or {"name", "shipped"} of a loaded run."""
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


def _choices() -> tuple[list[str], dict[str, str], list[dict]]:
    rows = usable_runs(state.list_runs())
    return [r["path"] for r in rows], {r["path"]: run_label(r) for r in rows}, rows


def sidebar() -> None:
    """The shared sidebar: the model selector used by Home, Predict and Inside, and one line about the app."""
    paths, labels, rows = _choices()
    with st.sidebar:
        if paths:
            if st.session_state.get(MODEL_KEY) not in paths:
                st.session_state[MODEL_KEY] = default_run(rows)
            st.selectbox("Model", paths, key=MODEL_KEY, format_func=lambda p: labels.get(p, Path(p).name),
                         help="The trained run that Home, Predict and Inside use. Train your own on the Train page.")
        else:
            st.session_state.pop(MODEL_KEY, None)
            st.info("No trained model yet.")
        st.caption("RNN Sentiment Lab: train recurrent networks on IMDB movie reviews and look inside them "
                   "while they read. Everything runs on this server; nothing is sent elsewhere.")


def pick_runs(key: str, default: Sequence[str | None], at_least: int = 1) -> list[tuple[runs.Run, Engine]]:
    """A multiselect over every usable run (`key`), and the chosen runs loaded; one that cannot be is named.
    It starts with `default`, topped up with the newest runs to `at_least`."""
    paths, labels, _ = _choices()
    state.keep_valid(key, paths)
    default = list(dict.fromkeys(p for p in default if p in paths))
    default += [p for p in paths if p not in default][: max(at_least - len(default), 0)]
    picked = st.multiselect("Runs", paths, default=default, format_func=lambda p: labels.get(p, p), key=key)
    loaded = []
    for path in picked:
        try:
            loaded.append(state.load(path))
        except runs.RunError as error:
            st.warning(str(error))
    return loaded


def select_model(path: str) -> None:
    """Callback: make `path` the sidebar's model (callbacks run before widgets are drawn)."""
    st.session_state[MODEL_KEY] = str(path)


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
        return state.load(path)
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
