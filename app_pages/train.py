"""Train: pick a preset, adjust any hyperparameter, submit a job, and watch it learn live."""

import json
import time

import streamlit as st

from app import job_view, progress, state, texts, widgets
from sentiment_core import runs
from sentiment_core.challenges import BY_ID as CHALLENGES
from sentiment_core.config import PRESETS, SCHEMA, ConfigError
from sentiment_core.exercise import Exercise, ExerciseError
from sentiment_core.jobs import JobError
from sentiment_core.people import MAX_NICKNAME, NicknameError, check_nickname
from sentiment_core.protocol import ACTIVE, Job, JobState

DEFAULT_PRESET = "tiny"
PERCENT = {"test accuracy": st.column_config.NumberColumn(format="percent")}
manager = state.job_manager()


def list_jobs() -> dict[str, Job]:
    """Every job on the server by id, oldest first."""
    return {job.id: job for job in manager.jobs()}


# One listing of the jobs for this draw (each job.json is read again only when it changed).
drawn = list_jobs()


# ---------------------------------------------------------------- reattach to a job from the URL (?job=...)
linked = st.query_params.get("job")
if linked and linked != st.session_state.get("job"):
    linked_job = drawn.get(linked)
    if linked_job is None:
        st.warning(f"There is no job {linked!r} on this server any more; start a new one below.")
        del st.query_params["job"]
    else:
        # A reopened job link is still "your" job when it carries the job's key (the owner's address bar);
        # a job id alone, which others see in the tables below, only shows the job.
        linked_owner = manager.owner_from_link(linked, st.query_params.get("key"))
        if linked_owner:
            st.session_state.setdefault("owner", linked_owner)
        st.session_state["job"] = linked
owner = state.owner()
if st.session_state.get("job"):
    st.query_params["job"] = st.session_state["job"]  # the address bar is a link back to this job
    watched = drawn.get(st.session_state["job"])
    if watched is not None and watched.owner == owner and watched.key:
        st.query_params["key"] = watched.key  # ... and, for its owner, to stopping it
    elif "key" in st.query_params:
        del st.query_params["key"]

# ---------------------------------------------------------------- an exercise link (?preset=...&lock=...&hide=...)
# The exercise stays with this session once opened (pages drop the query when switching); the job carries
# it to the server, which refuses a config that changes a fixed field.
asked = tuple(st.query_params.get(k) for k in ("preset", "lock", "hide"))
if any(asked) and asked != st.session_state.get("exercise_query"):
    st.session_state["exercise_query"] = asked
    try:
        st.session_state["exercise_new"] = Exercise.from_query(*asked)
        st.session_state.pop("exercise_error", None)
    except ExerciseError as error:
        st.session_state["exercise_error"] = f"This exercise link cannot be used: {error}. Nothing was changed."

st.title("Train")
st.markdown("Start from a preset, change anything you like, and press **Train**. Training runs in its own "
            "process on the server: you can switch pages or close the tab, and come back through the job "
            "link in the address bar.")

# ---------------------------------------------------------------- hyperparameters
WIDGET_KEYS = ["preset", "train_data", "train_name", "train_nickname", "train_challenge"] + \
    [widgets.key(name) for name in SCHEMA]

# Streamlit forgets a widget's value when its page is not shown; keep them in "train_kept" instead.
kept = st.session_state.setdefault("train_kept", {})
defaults = {"preset": DEFAULT_PRESET, "train_data": "sample", "train_name": "", "train_nickname": "",
            "train_challenge": "", **widgets.preset_widget_values(DEFAULT_PRESET, manager.limits)}
for key in WIDGET_KEYS:
    if key not in st.session_state:
        st.session_state[key] = kept.get(key, defaults[key])

if "exercise_new" in st.session_state:
    st.session_state["exercise"] = st.session_state.pop("exercise_new")
    widgets.start_exercise(st.session_state["exercise"], manager.limits)
exercise: Exercise | None = st.session_state.get("exercise")
if "exercise_error" in st.session_state:
    st.error(st.session_state["exercise_error"])
if exercise is not None:
    widgets.hold_exercise(exercise, manager.limits)
    st.info(f"**Exercise**: {exercise.describe()}. Your teacher fixed these settings; the server trains "
            "nothing else.", icon=":material/school:")

st.selectbox("Preset", list(PRESETS), key="preset", format_func=lambda p: texts.PRESET_LABELS.get(p, p),
             on_change=widgets.apply_preset, args=(manager.limits,), disabled=bool(exercise and exercise.preset),
             help="Fills in every setting below; change any of them afterwards.")

with st.expander("Hyperparameters and data", expanded=True, icon=":material/tune:"):
    text_col, model_col, optim_col, data_col = st.columns(4)
    with text_col:
        st.markdown("**Text**")
        widgets.group("text", manager.limits, exercise)
    with model_col:
        st.markdown("**Model**")
        widgets.group("model", manager.limits, exercise)
    with optim_col:
        st.markdown("**Optimisation**")
        widgets.group("optimisation", manager.limits, exercise)
    with data_col:
        st.markdown("**Data**")
        sources = dict(widgets.data_sources())
        if st.session_state["train_data"] not in sources:
            st.session_state["train_data"] = "sample"
        st.selectbox("Reviews", list(sources), key="train_data", format_func=sources.get)
        widgets.group("data", manager.limits, exercise)
        st.text_input("Run name (optional)", key="train_name", max_chars=64, placeholder="e.g. gru-64-dropout",
                      help="Letters, digits, '.', '_' or '-'. Left empty, a name like gru-20250101-120000 is made up.")

with st.expander("The class board", expanded=bool(st.session_state["train_challenge"]), icon=":material/groups:"):
    name_col, challenge_col = st.columns(2)
    name_col.text_input("Your name on the class board (optional)", key="train_nickname", max_chars=MAX_NICKNAME,
                        placeholder="anonymous", help="Shown with your runs on the Class page. Letters, digits, "
                        f"spaces, '-', '_' and '.'; at most {MAX_NICKNAME} characters.")
    challenge_col.selectbox("Submit for a challenge", ["", *CHALLENGES], key="train_challenge",
                            format_func=lambda c: CHALLENGES[c].title if c else "none",
                            help="The Class page checks the saved run against the challenge's rule.")
    if st.session_state["train_challenge"]:
        challenge_col.caption(f"To pass: {CHALLENGES[st.session_state['train_challenge']].rule}.")

for key in WIDGET_KEYS:
    kept[key] = st.session_state[key]

config = None
try:
    config = widgets.chosen_config(manager.limits)
    if exercise is not None:
        exercise.check(config)
    nickname = check_nickname(st.session_state["train_nickname"])
except (ConfigError, JobError, ExerciseError) as error:
    st.error(f"Fix this setting first: {error}")
    config = None
except NicknameError as error:
    st.error(f"Fix your name on the class board first: {error}")
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
        job_id = manager.submit(config, st.session_state["train_data"], owner, name, nickname=nickname,
                                challenge=st.session_state["train_challenge"] or None, exercise=exercise)
    except (ConfigError, JobError, runs.RunError) as error:
        st.error(str(error))
    else:
        st.session_state["job"] = job_id
        st.query_params["job"] = job_id
        st.query_params["key"] = manager.get(job_id).key
        st.toast("Training job submitted", icon=":material/rocket_launch:")
        drawn = list_jobs()  # read again, with the new job in it


# ---------------------------------------------------------------- the job, live
# What a watching page costs the server is what it refreshes (benchmarks/watch_cost.py): a running job's
# state and progress bar every 3 s, which also notices its end within that (every 2 s cost 0.0059 of a core
# per watching session at 30 sessions), and its curves about every 10 s; a queued job's place every 5 s (it
# moves slowly, and the job's start redraws the page). The intervals share no small multiple: a fragment's
# timer that fires while another fragment runs interrupts that run, and Streamlit then drops it (seen with
# benchmarks/streamlit_client.py: with 10 s and 20 s, every other curves refresh was lost), so timers that
# keep firing together would keep skipping refreshes.
@st.fragment(run_every=3.0)
def live_status(job_id: str, drawn: JobState) -> None:
    job_view.status(manager, job_id, drawn)


@st.fragment(run_every=5.0)
def queued_status(job_id: str, drawn: JobState) -> None:
    job_view.status(manager, job_id, drawn)


@st.fragment(run_every=10.1)
def live_curves(job_id: str) -> None:
    job_view.curves(manager, job_id)


current = st.session_state.get("job")
shown = drawn.get(current) if current else None
if current and shown is None:
    st.error(f"There is no job {current!r} on this server any more.")
elif shown:
    st.divider()
    job_view.header(manager, shown)
    if shown.state == JobState.QUEUED:
        queued_status(shown.id, shown.state)
    elif shown.state in ACTIVE:
        live_status(shown.id, shown.state)
        live_curves(shown.id)
    else:
        job_view.status(manager, shown.id)
        job_view.curves(manager, shown.id)
        job_view.ending(shown)

# ---------------------------------------------------------------- other jobs
st.divider()
st.subheader("Jobs")


def mine_and_active(jobs: dict[str, Job]) -> tuple[list[Job], list[Job]]:
    """This session's jobs and every active one."""
    everyone = list(jobs.values())
    return [j for j in everyone if j.owner == owner], [j for j in everyone if j.state in ACTIVE]


@st.fragment(run_every=21.1)
def jobs_tables() -> None:
    """Redrawn every few seconds on its own, so states, queue positions and accuracies stay current."""
    (mine, active), now = mine_and_active(list_jobs()), time.time()
    if mine:
        st.markdown("**Your recent jobs** (this browser session)")
        st.dataframe(progress.jobs_table(mine[-10:], now), hide_index=True, key="my_jobs", column_config=PERCENT)
    else:
        st.caption("You have not started a job in this session yet.")
    st.markdown(f"**Training on this server now**: {len(active)} job(s)")
    if active:
        st.dataframe(progress.jobs_table(active, now), hide_index=True, key="active_jobs", column_config=PERCENT)


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
