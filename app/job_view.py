"""One training job as the Train page shows it: state, progress, live curves, and the saved run's scores."""

from __future__ import annotations

import time

import streamlit as st

from sentiment_core import runs
from sentiment_core.jobs import JobError, JobManager
from sentiment_core.protocol import ACTIVE, FINAL, Job, JobState

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


def _stop(manager: JobManager, job_id: str) -> None:
    try:
        manager.stop(job_id)
    except JobError as error:
        st.session_state["stop_error"] = str(error)


def show_job(manager: JobManager, job_id: str, jobs: dict[str, Job] | None, live: bool) -> None:
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
    job_state = job.state
    if live and job_state in FINAL:
        st.rerun()  # finished: redraw the whole page once, without the 1-second refresh
    events = manager.events(job_id)
    parts = progress.split_events(events)
    info = progress.progress(events, job, time.time())
    st.subheader(f"Job {job_id}: {job.name}")
    st.markdown(f"State: **{job_state.icon} {job_state}**" + (f" — {info['text']}" if job_state in ACTIVE else ""))
    if job_state == JobState.QUEUED:
        st.info(f"Waiting in the queue: position {job.position or '?'}. Jobs start in the order they were "
                f"submitted; this server trains {manager.limits.max_concurrent} at a time.")
    if job_state in (JobState.QUEUED, JobState.RUNNING):
        st.button("Cancel" if job_state == JobState.QUEUED else "Stop", key="stop_button", icon=":material/stop:",
                  on_click=_stop, args=(manager, job_id),
                  help="Stops after the current batch and still saves what was learned so far.")
    if job_state in ACTIVE or parts.batch:
        st.progress(info["fraction"], text=f"{info['fraction']:.0%}")
        cols = st.columns(3)
        cols[0].metric("Elapsed", format_seconds(info["elapsed"]))
        cols[1].metric("Time left (estimate)", format_seconds(info["eta"]) if job_state in ACTIVE else "–")
        cols[2].metric("Epoch", f"{info['epoch'] or 0} / {info['epochs'] or job.config['epochs']}")
    if parts.batch:
        frame = progress.batch_frame(parts.batch)
        left, right = st.columns(2)
        left.vega_lite_chart(spec=charts.batch_chart(frame, "loss"), width="stretch")
        right.vega_lite_chart(spec=charts.batch_chart(frame, "accuracy"), width="stretch")
    if parts.epoch:
        end = parts.end
        best = end.best_epoch if end and job.config.get("early_stopping") else None
        note = "best epoch (kept)" + (", then early stop" if end and end.stopped_early else "")
        frame = progress.epoch_frame(parts.epoch)
        left, right = st.columns(2)
        left.vega_lite_chart(spec=charts.epoch_chart(frame, "loss", best, note), width="stretch")
        right.vega_lite_chart(spec=charts.epoch_chart(frame, "accuracy", best, note), width="stretch")
        if end:
            st.caption(progress.end_note(end, job.config))
    elif job_state in ACTIVE and parts.batch:
        st.caption("Train and validation curves appear after the first epoch.")
    if job_state in (JobState.DONE, JobState.STOPPED) and job.run:
        show_results(job)
    elif job_state in (JobState.FAILED, JobState.INTERRUPTED, JobState.CANCELLED):
        cancelled = job_state == JobState.CANCELLED
        message = job.error or ("You cancelled this job before it started." if cancelled else "")
        (st.info if cancelled else st.error)(message or f"The job ended as {job_state}.")
