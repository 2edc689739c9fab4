"""Class: every run of the class on one board, the challenges, and what only the teacher may do."""

import hashlib
import time

import pandas as pd
import streamlit as st

from app import charts, frames, state
from sentiment_core import runs
from sentiment_core.challenges import CHALLENGES, verdict
from sentiment_core.jobs import JobError
from sentiment_core.people import TOKEN_ENV, NotAllowed, is_teacher_token, owner_tag, teacher_token_set
from sentiment_core.protocol import ACTIVE

st.title("Class")
st.markdown("Every run trained on this server, best test accuracy first, with the shipped runs as references. "
            "Choose a row to open the run in **Compare**. Set your name for the board on the Train page "
            "(runs without one are *anonymous*); a run submitted for a challenge is checked here.")


@st.cache_data(max_entries=4, show_spinner=False)
def board_frame(key: str, me: str, _summaries: tuple) -> pd.DataFrame:
    """The board, built again only when a run changed (board.Board.key) or for another session's marks."""
    return frames.class_frame(_summaries, [verdict(run, _summaries) for run in _summaries], me)


@st.cache_data(max_entries=16, show_spinner=False)
def chart_spec(key: str, rows: str, x: str, _shown: pd.DataFrame) -> dict:
    """The chart's spec, made (and validated by Altair, ~0.3 s for 500 runs) once per board, filter and axis."""
    return charts.class_chart(_shown, x).to_dict()


def open_in_compare() -> None:
    """Callback of the board's row selection: the next draw opens the chosen run in Compare."""
    rows = st.session_state["class_board"].selection.rows
    if rows:
        st.session_state["class_open"] = rows[0]


board = state.class_board()
frame = board_frame(board.key, owner_tag(state.owner()), board.runs)
if "class_open" in st.session_state:
    row = st.session_state.pop("class_open")
    shown_paths = st.session_state.get("class_shown_paths", [])
    if row < len(shown_paths):
        st.session_state["compare_runs"] = [shown_paths[row]]
        st.switch_page("app_pages/compare.py")

# ---------------------------------------------------------------- filters
students = sorted(set(frame["student"]) - {"reference (shipped)"})
cells = sorted(set(frame["Cell"].dropna()))
left, middle, right, last = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
chosen_cells = left.multiselect("Cells", cells, key="class_cells", placeholder="every cell")
chosen_students = middle.multiselect("Students", students, key="class_students", placeholder="every student")
challenge_titles = {c.title: c for c in CHALLENGES}
chosen_challenge = right.selectbox("Challenge", ["every run", *challenge_titles], key="class_challenge")
references = last.toggle("Shipped runs", value=True, key="class_references",
                         help="Show the shipped runs as references.")
shown = frame
if chosen_cells:
    shown = shown[shown["Cell"].isin(chosen_cells)]
if chosen_students:
    shown = shown[shown["student"].isin(chosen_students) | (shown["student"] == "reference (shipped)")]
if chosen_challenge != "every run":
    shown = shown[shown["challenge"] == chosen_challenge]
if not references:
    shown = shown[shown["student"] != "reference (shipped)"]
shown = shown.reset_index(drop=True)
st.session_state["class_shown_paths"] = list(shown["path"])

# ---------------------------------------------------------------- the leaderboard
class_runs = int((frame["student"] != "reference (shipped)").sum())
st.subheader(f"Leaderboard: {len(shown)} of {len(frame)} runs ({class_runs} trained here)")
if shown.empty:
    st.info("No run matches these filters." if class_runs else
            "No run has been trained on this server yet. Runs appear here as soon as they are saved.")
st.dataframe(shown, hide_index=True, key="class_board", on_select=open_in_compare, selection_mode="single-row",
             column_order=[c for c in shown.columns if c != "path"],
             column_config={"test accuracy": st.column_config.NumberColumn(format="percent"),
                            "parameters": st.column_config.NumberColumn(format="localized"),
                            "training time (s)": st.column_config.NumberColumn(format="%.0f"),
                            "yours": st.column_config.CheckboxColumn("yours", width="small")})
st.download_button("Download the board as CSV", data=frames.board_csv(shown), file_name="class_board.csv",
                   mime="text/csv", key="class_csv", icon=":material/download:", on_click="ignore")
st.caption("Runs trained on the bundled sample were tested on 1,000 reviews, full-IMDB runs on 25,000 (see "
           "*test reviews*): compare like with like.")

# ---------------------------------------------------------------- the chart
st.subheader("What made a difference")
axes = ["parameters", "training time (s)", *(frames.SCHEMA[n].label for n in frames.BOARD_FIELDS)]
x = st.selectbox("Against", axes, index=axes.index("Units"), key="class_x",
                 help="Each run's test accuracy against this setting.")
if shown["test accuracy"].notna().any():
    rows = hashlib.sha256("\n".join(shown["path"]).encode()).hexdigest()  # which runs the filters kept
    st.vega_lite_chart(chart_spec(board.key, rows, x, shown), width="stretch")
else:
    st.caption("No run with a test accuracy to draw yet.")

# ---------------------------------------------------------------- challenges
st.subheader("Challenges")
st.markdown("Choose one on the Train page (**The class board** → *Submit for a challenge*); the saved run is "
            "checked here against the rule.")
for challenge in CHALLENGES:
    results = frame[frame["challenge"] == challenge.title]["result"]
    with st.expander(f"{challenge.title} — {int((results == 'passed').sum())} passed, "
                     f"{int((results == 'failed').sum())} failed", icon=":material/flag:"):
        st.markdown(f"**The idea.** {challenge.idea}\n\n**To pass:** {challenge.rule}.")

# ---------------------------------------------------------------- the teacher
st.subheader("Teacher")
manager = state.job_manager()
if not teacher_token_set():
    st.info(f"Teacher actions (stopping any job, deleting any run, clearing the class) are off: this server "
            f"has no teacher token. Set {TOKEN_ENV} in the server's environment to turn them on.")
    st.stop()
if "class_message" in st.session_state:
    st.success(st.session_state.pop("class_message"))
if "class_error" in st.session_state:
    st.error(st.session_state.pop("class_error"))
if not is_teacher_token(st.session_state.get(state.TEACHER_KEY)):
    st.session_state.pop(state.TEACHER_KEY, None)  # the server's token may have changed
    with st.form("class_sign_in", clear_on_submit=True, border=False):
        token = st.text_input("Teacher token", type="password", key="class_token",
                              help="Set on the server. It stays in this browser session, never in a link.")
        if st.form_submit_button("Sign in as the teacher", icon=":material/key:"):
            if is_teacher_token(token):
                st.session_state[state.TEACHER_KEY] = token
                st.session_state["class_message"] = "Signed in as the teacher for this browser session."
                st.rerun()
            time.sleep(1.0)  # a wrong guess costs a second
            st.error("That is not the teacher token. Nothing was changed.")
    st.stop()


def act(what, *args) -> None:
    """Run a teacher act; its message (or why it was refused) is shown at the next draw."""
    try:
        st.session_state["class_message"] = what(*args)
    except (JobError, NotAllowed, runs.RunError) as error:
        st.session_state["class_error"] = str(error)


def stop_job(job_id: str) -> str:
    job = manager.stop(job_id, state.actor())
    return f"Job {job.id} ({job.name}) is {job.state}."


def delete_run(name: str) -> str:
    runs.delete_run(name, state.runs_dir(), state.actor())
    st.session_state["class_delete_confirm"] = False
    return f"Deleted {name}."


def clear_class() -> str:
    done = manager.clear_class(state.actor())
    st.session_state["class_clear_confirm"] = False
    return (f"Class cleared: {done['stopped']} job(s) stopped, {done['deleted']} run(s) deleted, "
            f"{done['forgotten']} ended job(s) forgotten.")


st.caption("Signed in as the teacher in this browser session.")
st.button("Sign out", key="class_sign_out", on_click=lambda: st.session_state.pop(state.TEACHER_KEY, None))
active = [job for job in manager.jobs() if job.state in ACTIVE]
stop_col, delete_col, clear_col = st.columns(3)
with stop_col:
    st.markdown("**Stop any job**")
    if active:
        labels = {job.id: f"{job.name} · {job.nickname or 'anonymous'} · {job.state}" for job in active}
        job_id = st.selectbox("Job", list(labels), format_func=labels.get, key="class_stop_pick")
        st.button("Stop it", key="class_stop", on_click=act, args=(stop_job, job_id), icon=":material/stop:")
    else:
        st.caption("No job is queued or running.")
with delete_col:
    st.markdown("**Delete any run**")
    names = [p.name for p in runs.run_dirs(state.runs_dir())]
    if names:
        name = st.selectbox("Run", names, key="class_delete_pick")
        sure = st.checkbox(f"Yes, delete {name}", key="class_delete_confirm")
        st.button("Delete it", key="class_delete", disabled=not sure, on_click=act, args=(delete_run, name),
                  icon=":material/delete:")
    else:
        st.caption("No run has been trained here.")
with clear_col:
    st.markdown("**Clear the class**")
    sure = st.checkbox("Yes: stop every job, delete every run trained here (pinned ones stay)",
                       key="class_clear_confirm")
    st.button("Clear the class", key="class_clear", disabled=not sure, on_click=act, args=(clear_class,),
              icon=":material/delete_sweep:")
