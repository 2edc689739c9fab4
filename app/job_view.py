"""One training job as the Train page shows it: state, progress, live curves, and the saved run's scores."""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st

from sentiment_core import runs
from sentiment_core.jobs import JobError, JobManager
from sentiment_core.people import NotAllowed
from sentiment_core.protocol import ACTIVE, Job, JobState

from . import charts, frames, progress, run_picker, state
from .texts import format_seconds


def show_results(job: Job) -> None:
    try:
        run, _ = state.load(job.run)
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
    left.altair_chart(charts.confusion_chart(frames.confusion_frame(m["confusion_matrix"])), width="stretch")
    with right:
        st.markdown(f"The run is saved as **{run.name}**. It is now in the model selector of every page "
                    "(sidebar) and in Compare and Runs.")
        st.button("Use this model on Predict and Inside", key="use_run", on_click=run_picker.select_model,
                  args=(str(run.path),), icon=":material/check:")
        st.page_link("app_pages/predict.py", label="Predict with it", icon=":material/rate_review:")
        st.page_link("app_pages/inside.py", label="Look inside it", icon=":material/neurology:")


@dataclass(frozen=True)
class Curves:
    """A job's charts' rows, at one count of events."""

    batch: dict[str, bytes]  # metric -> rows as Arrow (charts.batch_spec); empty before the first batch
    epoch: dict[str, bytes]  # metric -> rows as Arrow (charts.epoch_spec); empty before the first epoch
    marker: bytes  # the best epoch's marker (charts.marker_rows)


# Events are only ever appended, so a job's folder and its count of events say what they are: what is
# built from them is built once, for every session watching and every refresh until the next event.
@st.cache_resource(max_entries=256, show_spinner=False)
def _events_by_kind(jobs_dir: str, job_id: str, count: int, _events: list) -> progress.JobEvents:
    return progress.split_events(_events)


@st.cache_resource(max_entries=256, show_spinner=False)
def _curves(jobs_dir: str, job_id: str, count: int, early_stopping: bool, _parts: progress.JobEvents) -> Curves:
    parts = _parts  # left out of the cache key: the count says what it holds
    batch = {m: charts.arrow_rows(c) for m, c in progress.batch_columns(parts.batch).items()} if parts.batch else {}
    epoch = {m: charts.arrow_rows(c) for m, c in progress.epoch_columns(parts.epoch).items()} if parts.epoch else {}
    end = parts.end
    best = end.best_epoch if end and early_stopping else None
    note = "best epoch (kept)" + (", then early stop" if end and end.stopped_early else "")
    return Curves(batch, epoch, charts.arrow_rows(charts.marker_rows(best, note)))


def _stop(manager: JobManager, job_id: str) -> None:
    try:
        manager.stop(job_id, state.actor())
    except (JobError, NotAllowed) as error:
        st.session_state["stop_error"] = str(error)


def read_job(manager: JobManager, job_id: str) -> Job | None:
    """The job, or None after showing why it cannot be read."""
    try:
        return manager.get(job_id)
    except JobError as error:
        st.error(str(error))
        return None


def _parts_of(manager: JobManager, job: Job) -> tuple[int, progress.JobEvents]:
    events = manager.events(job.id)
    return len(events), _events_by_kind(str(manager.jobs_dir), job.id, len(events), events)


def header(manager: JobManager, job: Job) -> None:
    """What stays put while the job runs: its name, the queue's rule, the Stop button."""
    if "stop_error" in st.session_state:
        st.error(st.session_state.pop("stop_error"))
    st.subheader(f"Job {job.id}: {job.name}")
    if job.state == JobState.QUEUED:
        st.info(f"Jobs start in the order they were submitted; this server trains "
                f"{manager.limits.max_concurrent} at a time.")
    if job.state in (JobState.QUEUED, JobState.RUNNING) and not state.actor().may_act_on(owner=job.owner):
        st.caption("You are watching another student's job: only they, or the teacher, can stop it.")
    elif job.state in (JobState.QUEUED, JobState.RUNNING):
        st.button("Cancel" if job.state == JobState.QUEUED else "Stop", key="stop_button", icon=":material/stop:",
                  on_click=_stop, args=(manager, job.id),
                  help="Stops after the current batch and still saves what was learned so far.")


def status(manager: JobManager, job_id: str, drawn: JobState | None = None) -> None:
    """Where the job is: its state, and while it runs a progress bar with the time spent and left.
    `drawn`: the state the page was drawn for; when the job has moved on, the whole page is redrawn."""
    job = read_job(manager, job_id)
    if job is None:
        return
    _, parts = _parts_of(manager, job)
    info = progress.progress(parts, job, time.time())
    active = job.state in ACTIVE
    st.markdown(f"State: **{job.state.icon} {job.state}**" + (f" — {info['text']}" if active else ""))
    if drawn is not None and job.state != drawn:
        # Started, finished, stopping: the page around it changes too. The new state is on the page
        # already; the whole page follows, which takes longer when many jobs end at once.
        st.rerun()
    if active and job.state != JobState.QUEUED or parts.batch:
        timing = [f"{format_seconds(info['elapsed'])} elapsed"] if info["elapsed"] is not None else []
        if active and info["eta"] is not None:
            timing.append(f"about {format_seconds(info['eta'])} left")
        st.progress(info["fraction"], text=" · ".join([f"{info['fraction']:.0%}", *timing]))


def curves(manager: JobManager, job_id: str) -> None:
    """The loss and accuracy curves, per batch and per epoch."""
    job = read_job(manager, job_id)
    if job is None:
        return
    count, parts = _parts_of(manager, job)
    found = _curves(str(manager.jobs_dir), job.id, count, bool(job.config.get("early_stopping")), parts)
    if found.batch:
        for column, metric in zip(st.columns(2), ("loss", "accuracy"), strict=True):
            column.vega_lite_chart(spec=charts.with_rows(charts.batch_spec(metric), rows=found.batch[metric]),
                                   width="stretch")
    if found.epoch:
        for column, metric in zip(st.columns(2), ("loss", "accuracy"), strict=True):
            spec = charts.with_rows(charts.epoch_spec(metric), rows=found.epoch[metric], marker=found.marker)
            column.vega_lite_chart(spec=spec, width="stretch")
        if parts.end:
            st.caption(progress.end_note(parts.end, job.config))
    elif job.state in ACTIVE and found.batch:
        st.caption("Train and validation curves appear after the first epoch.")


def ending(job: Job) -> None:
    """How a finished job ended: the saved run's scores, or why there is none."""
    if job.state in (JobState.DONE, JobState.STOPPED) and job.run:
        show_results(job)
    elif job.state in (JobState.FAILED, JobState.INTERRUPTED, JobState.CANCELLED):
        cancelled = job.state == JobState.CANCELLED
        message = job.error or ("You cancelled this job before it started." if cancelled else "")
        (st.info if cancelled else st.error)(message or f"The job ended as {job.state}.")
