"""Train: pick a preset, adjust any hyperparameter, submit a job, and watch it learn live."""

import json
import time

import streamlit as st

import app_support
import charts
from sentiment_core import runs, views
from sentiment_core.config import GROUPED, PRESETS, SCHEMA, ConfigError, Param
from sentiment_core.jobs import JobError
from sentiment_core.protocol import ACTIVE, FINAL, Job, JobState

DEFAULT_PRESET = "tiny"
PERCENT = {"test accuracy": st.column_config.NumberColumn(format="percent")}
manager = app_support.job_manager()


def list_jobs() -> dict[str, Job]:
    """Every job on the server by id, oldest first."""
    return {job.id: job for job in manager.jobs()}


# One read of the jobs folder per draw, shared by everything below (each job.json is read once).
# Every draw runs this script in a fresh module, so both start anew.
drawn = list_jobs()
handed_out: set[str] = set()


def draw_listing(fragment: str) -> dict[str, Job] | None:
    """This draw's listing for a fragment's first call, which is part of this draw. None on the
    fragment's later calls: those are its own reruns (run_every), and the folder has moved on."""
    if fragment in handed_out:
        return None
    handed_out.add(fragment)
    return drawn


# ---------------------------------------------------------------- reattach to a job from the URL (?job=...)
linked = st.query_params.get("job")
if linked and linked != st.session_state.get("job"):
    linked_job = drawn.get(linked)
    if linked_job is None:
        st.warning(f"There is no job {linked!r} on this server any more; start a new one below.")
        del st.query_params["job"]
    else:
        st.session_state.setdefault("owner", linked_job.owner)  # a reopened job link is still "your" job
        st.session_state["job"] = linked
owner = app_support.owner()
if st.session_state.get("job"):
    st.query_params["job"] = st.session_state["job"]  # the address bar is a link back to this job

st.title("Train")
st.markdown("Start from a preset, change anything you like, and press **Train**. Training runs in its own "
            "process on the server: you can switch pages or close the tab, and come back through the job "
            "link in the address bar.")

# ---------------------------------------------------------------- hyperparameters
HYPERPARAMETERS = list(SCHEMA)  # every Config field
WIDGET_KEYS = ["preset", "train_data", "train_name"] + [f"hp_{name}" for name in HYPERPARAMETERS]


def clamp(name: str, value):
    """A preset's value within its widget's bounds (the server may cap it below the preset's)."""
    if SCHEMA[name].range:
        low, high = views.bounds(name, manager.limits)
        value = min(max(value, type(value)(low)), type(value)(high))
    return value


def apply_preset() -> None:
    for name, value in views.preset_values(st.session_state["preset"]).items():
        st.session_state[f"hp_{name}"] = clamp(name, value)


# Streamlit forgets a widget's value when its page is not shown; keep them in "train_kept" instead.
kept = st.session_state.setdefault("train_kept", {})
defaults = {"preset": DEFAULT_PRESET, "train_data": "sample", "train_name": "",
            **{f"hp_{n}": clamp(n, v) for n, v in views.preset_values(DEFAULT_PRESET).items()}}
for key in WIDGET_KEYS:
    if key not in st.session_state:
        st.session_state[key] = kept.get(key, defaults[key])

st.selectbox("Preset", list(PRESETS), key="preset", format_func=lambda p: views.PRESET_LABELS.get(p, p),
             on_change=apply_preset, help="Fills in every setting below; change any of them afterwards.")


def widget(p: Param) -> None:
    """The hyperparameter's widget (key hp_<name>), as config.SCHEMA declares it, within this server's caps."""
    key = f"hp_{p.name}"
    if p.type is bool:
        st.checkbox(p.label, key=key, help=p.help)
    elif p.choices:
        st.selectbox(p.label, p.choices, key=key, help=p.help, format_func=lambda v: (p.shown or {}).get(v, v))
    else:
        low, high = views.bounds(p.name, manager.limits)
        kind = p.type
        if p.slider and low < high:  # a server may cap one to its lowest value, and a slider needs two
            st.slider(p.label, kind(low), kind(high), step=kind(p.step), key=key, help=p.help)
        else:
            st.number_input(p.label, kind(low), kind(high), step=kind(p.step), format=p.format, key=key,
                            help=p.help)


def widgets(group: str) -> None:
    """A widget for each hyperparameter of a group, in the order Config declares them."""
    for p in GROUPED[group]:
        widget(p)


with st.expander("Hyperparameters and data", expanded=True, icon=":material/tune:"):
    text_col, model_col, optim_col, data_col = st.columns(4)
    with text_col:
        st.markdown("**Text**")
        widgets("text")
    with model_col:
        st.markdown("**Model**")
        widgets("model")
    with optim_col:
        st.markdown("**Optimisation**")
        widgets("optimisation")
    with data_col:
        st.markdown("**Data**")
        sources = dict(views.data_sources())
        if st.session_state["train_data"] not in sources:
            st.session_state["train_data"] = "sample"
        st.selectbox("Reviews", list(sources), key="train_data", format_func=sources.get)
        widgets("data")
        st.text_input("Run name (optional)", key="train_name", max_chars=64, placeholder="e.g. gru-64-dropout",
                      help="Letters, digits, '.', '_' or '-'. Left empty, a name like gru-20250101-120000 is made up.")

for key in WIDGET_KEYS:
    kept[key] = st.session_state[key]

config = None
try:
    config = views.config_from_values({name: st.session_state[f"hp_{name}"] for name in HYPERPARAMETERS})
    manager.limits.check(config)
except (ConfigError, JobError) as error:
    st.error(f"Fix this setting first: {error}")
    config = None


@st.cache_data(max_entries=32, show_spinner="Building the model (the first time loads Keras)…")
def model_summary(config_json: str) -> list[dict]:
    from sentiment_core.config import Config
    from sentiment_core.models import summary_rows  # Keras is imported only here, only when asked

    return summary_rows(Config.from_dict(json.loads(config_json)))


buttons = st.columns([1, 1, 3])
train_clicked = buttons[0].button("Train", key="train_button", type="primary", disabled=config is None,
                                  icon=":material/play_arrow:")
if buttons[1].button("Model summary", key="summary_button", disabled=config is None):
    st.session_state["show_summary"] = True
if st.session_state.get("show_summary") and config is not None:
    try:
        rows = model_summary(json.dumps(config.to_dict(), sort_keys=True))
    except Exception as error:  # Keras may refuse a shape; say so rather than crash the page
        st.error(f"Could not build this model: {error}")
    else:
        st.dataframe(rows, hide_index=True, key="summary_table")
        st.caption(f"{sum(r['parameters'] for r in rows):,} trainable and non-trainable parameters in all. "
                   "The embedding holds vocabulary size × embedding size of them.")

if train_clicked and config is not None:
    name = (st.session_state.get("train_name") or "").strip() or None
    try:
        if name:
            runs.check_name(name)
        job_id = manager.submit(config, st.session_state["train_data"], owner, name)
    except (ConfigError, JobError, runs.RunError) as error:
        st.error(str(error))
    else:
        st.session_state["job"] = job_id
        st.query_params["job"] = job_id
        st.toast("Training job submitted", icon=":material/rocket_launch:")
        drawn = list_jobs()  # read again, with the new job in it


# ---------------------------------------------------------------- the job, live
def show_results(job: Job) -> None:
    try:
        run, _ = app_support.load(job.run)
    except runs.RunError as error:
        st.error(f"The run was saved but cannot be read: {error}")
        return
    m = run.metrics
    cols = st.columns(4)
    cols[0].metric("Test accuracy", f"{m['accuracy']:.1%}")
    cols[1].metric("Test loss", f"{m['loss']:.3f}")
    cols[2].metric("ROC AUC", f"{m['roc_auc']:.3f}" if m.get("roc_auc") == m.get("roc_auc") else "–")
    cols[3].metric("Test reviews", f"{m['n']:,}")
    left, right = st.columns([1, 2])
    left.altair_chart(charts.confusion_chart(views.confusion_frame(m["confusion_matrix"])), width="stretch")
    with right:
        st.markdown(f"The run is saved as **{run.name}**. It is now in the model selector of every page "
                    "(sidebar) and in Compare and Runs.")
        st.button("Use this model on Predict and Inside", key="use_run", on_click=app_support.select_model,
                  args=(str(run.path),), icon=":material/check:")
        st.page_link("app_pages/predict.py", label="Predict with it", icon=":material/rate_review:")
        st.page_link("app_pages/inside.py", label="Look inside it", icon=":material/neurology:")


def stop(job_id: str) -> None:
    try:
        manager.stop(job_id)
    except JobError as error:
        st.session_state["stop_error"] = str(error)


def show_job(job_id: str, jobs: dict[str, Job] | None, live: bool) -> None:
    """`jobs`: this draw's listing, or None to read just this job (a fragment's own rerun)."""
    if "stop_error" in st.session_state:
        st.error(st.session_state.pop("stop_error"))
    try:
        job = manager.get(job_id) if jobs is None else jobs.get(job_id)
    except JobError as error:
        st.error(str(error))
        return
    if job is None:
        st.error(f"no job {job_id!r}")
        return
    state = job.state
    if live and state in FINAL:
        st.rerun()  # finished: redraw the whole page once, without the 1-second refresh
    events = manager.events(job_id)
    parts = views.split_events(events)
    info = views.progress(events, job, time.time())
    st.subheader(f"Job {job_id}: {job.name}")
    st.markdown(f"State: **{state.icon} {state}**" + (f" — {info['text']}" if state in ACTIVE else ""))
    if state == JobState.QUEUED:
        st.info(f"Waiting in the queue: position {job.position or '?'}. Jobs start in the order they were "
                f"submitted; this server trains {manager.limits.max_concurrent} at a time.")
    if state in (JobState.QUEUED, JobState.RUNNING):
        st.button("Cancel" if state == JobState.QUEUED else "Stop", key="stop_button", icon=":material/stop:",
                  on_click=stop, args=(job_id,),
                  help="Stops after the current batch and still saves what was learned so far.")
    if state in ACTIVE or parts.batch:
        st.progress(info["fraction"], text=f"{info['fraction']:.0%}")
        cols = st.columns(3)
        cols[0].metric("Elapsed", views.format_seconds(info["elapsed"]))
        cols[1].metric("Time left (estimate)", views.format_seconds(info["eta"]) if state in ACTIVE else "–")
        cols[2].metric("Epoch", f"{info['epoch'] or 0} / {info['epochs'] or job.config['epochs']}")
    if parts.batch:
        frame = views.batch_frame(parts.batch)
        left, right = st.columns(2)
        left.altair_chart(charts.batch_chart(frame, "loss"), width="stretch")
        right.altair_chart(charts.batch_chart(frame, "accuracy"), width="stretch")
    if parts.epoch:
        end = parts.end
        best = end.best_epoch if end and job.config.get("early_stopping") else None
        note = "best epoch (kept)" + (", then early stop" if end and end.stopped_early else "")
        frame = views.epoch_frame(parts.epoch)
        left, right = st.columns(2)
        left.altair_chart(charts.epoch_chart(frame, "loss", best, note), width="stretch")
        right.altair_chart(charts.epoch_chart(frame, "accuracy", best, note), width="stretch")
        if end:
            st.caption(views.end_note(end, job.config))
    elif state in ACTIVE and parts.batch:
        st.caption("Train and validation curves appear after the first epoch.")
    if state in (JobState.DONE, JobState.STOPPED) and job.run:
        show_results(job)
    elif state in (JobState.FAILED, JobState.INTERRUPTED, JobState.CANCELLED):
        cancelled = state == JobState.CANCELLED
        message = job.error or ("You cancelled this job before it started." if cancelled else "")
        (st.info if cancelled else st.error)(message or f"The job ended as {state}.")


@st.fragment(run_every=1.0)
def live_job(job_id: str) -> None:
    show_job(job_id, draw_listing("live_job"), live=True)


@st.fragment
def finished_job(job_id: str) -> None:
    show_job(job_id, draw_listing("finished_job"), live=False)


current = st.session_state.get("job")
if current:
    st.divider()
    shown = drawn.get(current)
    (live_job if shown and shown.state in ACTIVE else finished_job)(current)

# ---------------------------------------------------------------- other jobs
st.divider()
st.subheader("Jobs")


def mine_and_active(jobs: dict[str, Job]) -> tuple[list[Job], list[Job]]:
    """This session's jobs and every active one."""
    everyone = list(jobs.values())
    return [j for j in everyone if j.owner == owner], [j for j in everyone if j.state in ACTIVE]


@st.fragment(run_every=5.0)
def jobs_tables() -> None:
    """Redrawn every few seconds on its own, so states, queue positions and accuracies stay current."""
    jobs = draw_listing("jobs_tables")
    (mine, active), now = mine_and_active(list_jobs() if jobs is None else jobs), time.time()
    if mine:
        st.markdown("**Your recent jobs** (this browser session)")
        st.dataframe(views.jobs_frame(mine[-10:], now), hide_index=True, key="my_jobs", column_config=PERCENT)
    else:
        st.caption("You have not started a job in this session yet.")
    st.markdown(f"**Training on this server now**: {len(active)} job(s)")
    if active:
        st.dataframe(views.jobs_frame(active, now), hide_index=True, key="active_jobs", column_config=PERCENT)


jobs_tables()
mine, active = mine_and_active(drawn)
watchable = {j.id: f"{j.name} ({j.id})" for j in [*reversed(mine[-10:]), *active]}
# Only a click switches the job shown above. (A selectbox callback also fired when the list of jobs
# changed under a busy server, and sessions in a 30-student load test ended up on another's job.)
if watchable:
    pick, show = st.columns([3, 1], vertical_alignment="bottom")
    current = st.session_state.get("job")
    chosen = pick.selectbox("Another job to show", list(watchable), format_func=watchable.get, key="watch_job",
                            index=list(watchable).index(current) if current in watchable else 0)
    if show.button("Show it above", key="watch_button", icon=":material/visibility:") and chosen in watchable:
        st.session_state["job"] = chosen
        st.query_params["job"] = chosen
        st.rerun()
