"""The Train page's hyperparameter widgets and data sources, built from the one schema (config.SCHEMA).

Each widget's bounds are the hyperparameter's range capped by this server's limits, so no widget
offers a value the server would refuse.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from sentiment_core.config import GROUPED, PRESETS, SCHEMA, Config, ConfigError, Param
from sentiment_core.exercise import Exercise

ROOT = Path(__file__).resolve().parent.parent

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


def data_sources() -> list[tuple[str, str]]:
    """(value for JobManager.submit, label) for every data source this server can offer."""
    sources = [("sample", "bundled sample: 2,000 reviews (trains in seconds)")]
    full = os.environ.get("SENTIMENT_IMDB_DIR") or str(ROOT.parent / "shared" / "data" / "imdb")
    if (Path(full) / "train.jsonl.gz").is_file() or (Path(full) / "train" / "pos").is_dir():
        sources.append((full, "full IMDB: 25,000 training reviews (minutes)"))
    sources.append(("tfds", "TensorFlow Datasets imdb_reviews (downloads 84 MB once; needs internet)"))
    return sources


def key(name: str) -> str:
    """The session-state key of a hyperparameter's widget."""
    return f"hp_{name}"


def clamp(name: str, value, limits):
    """A preset's value within its widget's bounds (the server may cap it below the preset's)."""
    if SCHEMA[name].range:
        low, high = bounds(name, limits)
        value = min(max(value, type(value)(low)), type(value)(high))
    return value


def preset_widget_values(preset: str, limits) -> dict[str, object]:
    """Every hyperparameter widget's value for a preset, by widget key, within this server's caps."""
    return {key(name): clamp(name, value, limits) for name, value in preset_values(preset).items()}


def apply_preset(limits) -> None:
    """Callback of the preset picker: fill in every hyperparameter widget."""
    st.session_state.update(preset_widget_values(st.session_state["preset"], limits))


def hyperparameter(p: Param, limits, locked: bool = False) -> None:
    """The hyperparameter's widget, as config.SCHEMA declares it, within this server's caps; greyed out when
    an exercise locks it."""
    hint = p.help + (" Your exercise fixes this setting." if locked else "")
    if p.type is bool:
        st.checkbox(p.label, key=key(p.name), help=hint, disabled=locked)
    elif p.choices:
        st.selectbox(p.label, p.choices, key=key(p.name), help=hint, disabled=locked,
                     format_func=lambda v: (p.shown or {}).get(v, v))
    else:
        low, high = bounds(p.name, limits)
        kind = p.type
        if p.slider and low < high:  # a server may cap one to its lowest value, and a slider needs two
            st.slider(p.label, kind(low), kind(high), step=kind(p.step), key=key(p.name), help=hint,
                      disabled=locked)
        else:
            st.number_input(p.label, kind(low), kind(high), step=kind(p.step), format=p.format, key=key(p.name),
                            help=hint, disabled=locked)


def group(name: str, limits, exercise: Exercise | None = None) -> None:
    """A widget for each hyperparameter of a group, in the order Config declares them; an exercise's hidden
    ones are left out and its locked ones greyed out."""
    hidden, locked = (set(exercise.hidden), set(exercise.locked)) if exercise else (set(), set())
    for p in GROUPED[name]:
        if p.name not in hidden:
            hyperparameter(p, limits, p.name in locked)


def start_exercise(exercise: Exercise, limits) -> None:
    """Fill in the exercise's preset (every widget), then hold its fixed fields (see hold_exercise)."""
    if exercise.preset:
        st.session_state["preset"] = exercise.preset
        st.session_state.update(preset_widget_values(exercise.preset, limits))
    hold_exercise(exercise, limits)


def hold_exercise(exercise: Exercise, limits) -> None:
    """Put the exercise's fixed fields back in their widgets, at every draw: whatever a browser sends for a
    greyed-out or hidden widget, the page shows (and the server is sent) the exercise's value."""
    st.session_state.update({key(name): clamp(name, value, limits) for name, value in exercise.values().items()})


def chosen_config(limits) -> Config:
    """The Config the widgets describe, checked against this server's limits. Raises ConfigError or JobError."""
    config = config_from_values({name: st.session_state[key(name)] for name in SCHEMA})
    limits.check(config)
    return config
