"""Training jobs in worker processes: queue, stop, cancel, faults, restarts, limits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sentiment_core import runs
from sentiment_core.config import PRESETS
from sentiment_core.jobs import JobError, JobManager, Limits
from sentiment_core.people import Actor
from sentiment_core.protocol import BatchEvent, EndEvent, StatusEvent

TINY = PRESETS["tiny"].replace(epochs=1, vocab_size=500, maxlen=30, units=4, embedding_dim=8)
LONG = TINY.replace(epochs=20, early_stopping=False, batch_size=4)


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    return {"jobs": tmp_path / "jobs", "runs": tmp_path / "runs", "cache": tmp_path / "cache"}


@pytest.fixture
def manager(folders):
    m = JobManager(folders["jobs"], folders["runs"], Limits(max_concurrent=1, max_queued_per_session=3),
                   cache_dir=folders["cache"], poll_seconds=0.05)
    yield m
    m.shutdown()


def wait_for(predicate, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def batches(manager: JobManager, job_id: str) -> int:
    return sum(isinstance(e, BatchEvent) for e in manager.events(job_id))


def test_a_job_trains_saves_a_run_and_reports_progress(manager, folders):
    job_id = manager.submit(TINY, "sample", owner="ana", name="ana-first")
    job = manager.wait(job_id, timeout=240)
    assert job.state == "done", job
    assert Path(job.run) == folders["runs"] / "ana-first"
    run = runs.load_run(job.run)
    assert run.meta["status"] == "complete"
    assert run.meta["timings"]["huge_pages"] is True  # the worker process started with malloc on huge pages
    events = manager.events(job_id)
    kinds = [e.type for e in events]
    assert kinds[0] == "status" and "start" in kinds and "epoch" in kinds and kinds[-1] == "end"
    assert isinstance(events[0], StatusEvent) and isinstance(events[-1], EndEvent)
    assert job.metrics["accuracy"] == pytest.approx(run.metrics["accuracy"])


def test_a_job_whose_networks_train_apart_trains_them_one_at_a_time_on_its_core(manager, monkeypatch):
    monkeypatch.delenv("SENTIMENT_MEMBER_PROCESSES", raising=False)  # the server's default
    job = manager.wait(manager.submit(TINY.replace(members=2, members_apart=True), "sample", owner="ana"), 240)
    assert job.state == "done", job
    run = runs.load_run(job.run)
    assert run.config.members == 2 and len(run.history["members"]) == 2
    lines = [e.message for e in manager.events(job.id) if isinstance(e, StatusEvent)]
    assert "training 2 networks apart, 1 at a time" in lines, lines


def test_queue_is_fifo_with_positions_and_a_queued_job_can_be_cancelled(manager):
    first = manager.submit(LONG, "sample", owner="a")
    second = manager.submit(TINY, "sample", owner="b")
    third = manager.submit(TINY, "sample", owner="c")
    wait_for(lambda: manager.get(first).state == "running")
    assert manager.get(second).position == 1 and manager.get(third).position == 2
    assert [j.position for j in manager.jobs(owner="c")] == [2]  # a student's own list counts everyone's jobs
    assert manager.stop(second, Actor("b")).state == "cancelled"
    assert manager.get(third).position == 1
    manager.stop(first, Actor("a"))
    assert manager.wait(first).state == "stopped"
    assert manager.wait(third).state == "done"
    assert manager.get(second).state == "cancelled"  # never started
    assert not manager.events(second)


def test_stop_ends_a_running_job_promptly_and_keeps_a_run(manager):
    job_id = manager.submit(LONG, "sample", owner="s", name="stopped-run")
    wait_for(lambda: batches(manager, job_id) >= 3)
    asked = time.monotonic()
    assert manager.stop(job_id, Actor("s")).state == "stopping"
    # The worker looks at the stop flag after every batch (test_train holds `fit` to one batch); the seconds
    # that takes, and the validation pass Keras still runs, depend on the machine's load: under 2 s alone,
    # 2.4 s beside another test file's training. Its 20 epochs would take far longer than the bound.
    wait_for(lambda: any(isinstance(e, EndEvent) for e in manager.events(job_id)), timeout=10)
    assert time.monotonic() - asked < 10.0, "training did not stop within 10 s"
    job = manager.wait(job_id, timeout=60)
    assert job.state == "stopped"
    run = runs.load_run(job.run)
    assert run.meta["status"] == "stopped" and run.history["stopped_by_user"]
    assert len(run.history["epochs"]) < LONG.epochs


def test_a_stopped_worker_saving_its_run_gets_time_to_save(manager):
    """The kill grace is for a worker that ignores the flag. One that has stopped training (its end event)
    is evaluating and saving, which a busy server stretched past the grace: it was killed and its job
    reported failed (test_app's Stop test, in CI)."""
    from sentiment_core import jobs

    folder = manager.jobs_dir / "saving1"
    folder.mkdir()
    batch = BatchEvent(epoch=1, step=1, global_step=1, loss=0.6, accuracy=0.6, seconds=1.0)
    (folder / "events.jsonl").write_text(batch.to_json() + "\n")
    asked = time.monotonic()
    assert manager._kill_after("saving1", asked) <= time.monotonic() + jobs.STOP_GRACE_SECONDS
    end = EndEvent(stopped_early=False, stopped_by_user=True, best_epoch=None, seconds=1.0)
    with open(folder / "events.jsonl", "a") as f:
        f.write(end.to_json() + "\n")
    assert manager._kill_after("saving1", asked) == asked + jobs.SAVE_GRACE_SECONDS


def test_a_killed_worker_fails_only_its_own_job_and_the_next_job_runs(manager):
    doomed = manager.submit(LONG, "sample", owner="k")
    healthy = manager.submit(TINY, "sample", owner="h")
    wait_for(lambda: batches(manager, doomed) >= 1)
    manager.kill_worker(doomed)
    job = manager.wait(doomed, timeout=30)
    assert job.state == "failed" and "died" in job.error
    assert manager.wait(healthy, timeout=240).state == "done"


def test_a_bad_job_gets_a_clear_error_and_nobody_else_is_affected(manager):
    bad = manager.submit(TINY, "/nonexistent/imdb", owner="x")
    good = manager.submit(TINY, "sample", owner="y")
    job = manager.wait(bad, timeout=60)
    assert job.state == "failed" and "does not exist" in job.error
    assert manager.wait(good, timeout=240).state == "done"


def test_a_restart_marks_interrupted_jobs_and_keeps_finished_runs(folders):
    first = JobManager(folders["jobs"], folders["runs"], Limits(max_concurrent=1), cache_dir=folders["cache"],
                       poll_seconds=0.05)
    done = first.submit(TINY, "sample", owner="r", name="kept")
    first.wait(done, timeout=240)
    running = first.submit(LONG, "sample", owner="r")
    queued = first.submit(TINY, "sample", owner="r2")
    wait_for(lambda: batches(first, running) >= 1)
    first.shutdown(kill=True)  # the server goes away mid-training

    second = JobManager(folders["jobs"], folders["runs"], Limits(max_concurrent=1), cache_dir=folders["cache"])
    try:
        assert second.get(done).state == "done"
        assert runs.load_run(folders["runs"] / "kept").meta["status"] == "complete"
        for job_id in (running, queued):
            job = second.get(job_id)
            assert job.state == "interrupted", job
            assert "restarted" in job.error
        assert not any(p.name.startswith(".tmp") for p in folders["runs"].iterdir())
    finally:
        second.shutdown()


def test_per_session_limit_and_server_caps(folders):
    m = JobManager(folders["jobs"], folders["runs"], Limits(max_concurrent=0, max_queued_per_session=2,
                                                             caps={"epochs": 5, "units": 16, "maxlen": 50}),
                   cache_dir=folders["cache"])
    try:
        m.submit(TINY, "sample", owner="me")
        m.submit(TINY, "sample", owner="me")
        with pytest.raises(JobError, match="limit per session is 2"):
            m.submit(TINY, "sample", owner="me")
        m.submit(TINY, "sample", owner="someone else")  # others are not blocked by my limit
        with pytest.raises(JobError, match="epochs 6 is above this server's limit of 5"):
            m.submit(TINY.replace(epochs=6), "sample", owner="other")
        with pytest.raises(JobError, match="units"):
            m.submit(TINY.replace(units=32), "sample", owner="other")
        with pytest.raises(JobError, match="maxlen"):
            m.submit(TINY.replace(maxlen=60), "sample", owner="other")
    finally:
        m.shutdown()


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "x" * 80, "/abs", "a\\b"])
def test_run_names_cannot_escape_the_runs_folder(manager, folders, name):
    with pytest.raises(runs.RunError, match="invalid run name"):
        manager.submit(TINY, "sample", owner="n", name=name)
    assert not list(folders["jobs"].glob("*/job.json")), "a refused job must leave nothing behind"
    assert not (folders["runs"].parent / "escape").exists()


def test_job_ids_are_validated(manager):
    for bad in ("../../etc", "a/b", "x" * 100):
        with pytest.raises(JobError):
            manager.get(bad)
    with pytest.raises(JobError, match="no job"):
        manager.get("deadbeef0000")


def test_a_job_nobody_watches_still_finishes(folders):
    m = JobManager(folders["jobs"], folders["runs"], Limits(max_concurrent=1), cache_dir=folders["cache"],
                   poll_seconds=0.05)
    try:
        job_id = m.submit(TINY, "sample", owner="gone", name="orphan")
        # nobody calls get/events: the dispatcher alone must carry it to the end
        wait_for(lambda: json.loads((folders["jobs"] / job_id / "job.json").read_text())["state"] == "done", 120)
        assert runs.load_run(folders["runs"] / "orphan").metrics["n"] == 1000
    finally:
        m.shutdown()


def test_a_server_with_default_limits_accepts_every_preset_and_names_the_limit_it_refuses(monkeypatch):
    for variable in ("SENTIMENT_MAX_MEMBERS", "SENTIMENT_MAX_MAXLEN", "SENTIMENT_MAX_VOCAB", "SENTIMENT_MAX_EMBEDDING"):
        monkeypatch.delenv(variable, raising=False)
    for preset in PRESETS.values():
        Limits().check(preset)  # e.g. best: six networks, maxlen 400, 50k bigram buckets
    monkeypatch.setenv("SENTIMENT_MAX_MEMBERS", "2")
    refused = f"members {PRESETS['best'].members} is above this server's limit of 2 .*SENTIMENT_MAX_MEMBERS"
    with pytest.raises(JobError, match=refused):
        Limits().check(PRESETS["best"])
