"""Several app servers on one jobs folder: shared jobs, one dispatcher through a lease, takeover. No Ray needed:
the servers' job managers run today's local worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from test_jobs import LONG, TINY, batches, wait_for

from sentiment_core import runs
from sentiment_core.jobs import JobManager, Limits
from sentiment_core.lease import LEASE_FILE, Lease, SharedLock
from sentiment_core.people import Actor

ROOT = Path(__file__).resolve().parent.parent


def lease(folder: Path, seconds: float = 5.0) -> Lease:
    return Lease(folder, SharedLock(folder / ".lock"), seconds)


def test_one_holder_at_a_time_and_a_released_or_silent_lease_is_taken(tmp_path):
    first, second = lease(tmp_path), lease(tmp_path)
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    time.sleep(1.5)  # heartbeats keep it: still not free
    assert not second.acquire()
    first.release()
    assert not first.held and second.acquire() and second.held
    second.release()

    # A holder on another machine that stopped renewing 6 s ago has lost a 5 s lease; one renewing has not.
    stale = {"holder": "elsewhere", "host": "other-host", "pid": 1, "renewed": time.time() - 6}
    (tmp_path / LEASE_FILE).write_text(json.dumps(stale))
    third = lease(tmp_path)
    assert third.acquire()
    third.release()
    (tmp_path / LEASE_FILE).write_text(json.dumps({**stale, "renewed": time.time()}))
    assert not lease(tmp_path).acquire()


def test_a_dead_holder_on_this_machine_loses_the_lease_at_once(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (tmp_path / LEASE_FILE).write_text(json.dumps({"holder": "x", "host": socket.gethostname(),
                                                   "pid": int(gone.stdout), "renewed": time.time()}))
    fresh = lease(tmp_path)
    assert fresh.acquire()
    fresh.release()


def test_a_silent_holder_whose_lease_was_taken_over_stops_counting_on_it(tmp_path):
    first, second = lease(tmp_path, seconds=0.5), lease(tmp_path, seconds=0.5)
    assert first.acquire()
    first._closing.set()  # its heartbeat stops, as in a hung server
    first._beating.join()
    wait_for(lambda: second.acquire(), timeout=5)
    assert not first.held  # its last heartbeat is older than the lease
    assert not first.acquire()
    second.release()


def test_a_late_heartbeat_nobody_took_over_keeps_the_lease(tmp_path):
    """A dispatcher starved past its lease (a busy machine) gets it back if no other server took it, and so
    keeps its running jobs."""
    first, second = lease(tmp_path, seconds=0.5), lease(tmp_path, seconds=0.5)
    assert first.acquire()
    first._closing.set()
    first._beating.join()
    time.sleep(0.6)
    assert not first.held
    assert first.acquire() and first.held and not second.acquire()
    first.release()


SERVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sentiment_core.jobs import JobManager, Limits
    jobs, runs_dir, cache = map(Path, sys.argv[1:4])
    manager = JobManager(jobs, runs_dir, Limits(max_concurrent=1, max_queued_per_session=3), cache_dir=cache,
                         poll_seconds=0.05)
    print("ready", manager.lease.held, flush=True)
    time.sleep(600)
""")


def is_worker_of(pid: int, job_dir: Path) -> bool:
    try:
        return str(job_dir) in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


def test_two_servers_share_jobs_and_the_lease_moves_when_the_dispatcher_dies(tmp_path):
    jobs, runs_dir, cache = tmp_path / "jobs", tmp_path / "runs", tmp_path / "cache"
    first = subprocess.Popen([sys.executable, "-c", SERVER, str(jobs), str(runs_dir), str(cache)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    orphans = []
    second = None
    try:
        assert first.stdout.readline().split() == ["ready", "True"]  # the first server dispatches
        second = JobManager(jobs, runs_dir, Limits(max_concurrent=1, max_queued_per_session=3), cache_dir=cache,
                            poll_seconds=0.05)
        assert not second.lease.held

        # Submitted on the second server, run by the first, watched and stopped from the second.
        watched = second.submit(LONG, "sample", owner="b", name="shared-stop")
        running = second.submit(LONG, "sample", owner="c")
        wait_for(lambda: batches(second, watched) >= 3)
        job = second.get(watched)
        assert job.state == "running" and psutil.Process(job.pid).ppid() == first.pid
        assert second.get(running).position == 1
        assert second.stop(watched, Actor("b")).state == "stopping"  # how fast a worker stops: test_jobs.py
        job = second.wait(watched, timeout=60)
        assert job.state == "stopped" and runs.load_run(job.run).meta["status"] == "stopped"

        # The first server dies mid-job: the second takes the lease within seconds, marks what the first ran
        # interrupted, and starts the queue's next job itself.
        wait_for(lambda: second.get(running).state == "running" and second.get(running).pid)
        queued = second.submit(TINY, "sample", owner="d")
        orphans.append((second.get(running).pid, jobs / running))
        first.send_signal(signal.SIGKILL)
        first.wait()
        died = time.monotonic()
        wait_for(lambda: second.get(running).state == "interrupted", timeout=15)
        assert time.monotonic() - died < second.lease.seconds + 3 and second.lease.held
        assert "went away" in second.get(running).error
        wait_for(lambda: second.get(queued).pid, timeout=30)
        assert psutil.Process(second.get(queued).pid).ppid() == os.getpid()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        for pid, job_dir in orphans:  # the dead server's worker, left running: ours to end
            if is_worker_of(pid, job_dir):
                os.kill(pid, signal.SIGKILL)
        if second is not None:
            second.shutdown()


@pytest.mark.parametrize("where", ["dispatcher", "standby"])
def test_a_job_cancelled_on_either_server_never_starts(tmp_path, where):
    jobs = tmp_path / "jobs"
    first = JobManager(jobs, tmp_path / "runs", Limits(max_concurrent=0), cache_dir=tmp_path / "cache")
    second = JobManager(jobs, tmp_path / "runs", Limits(max_concurrent=0), cache_dir=tmp_path / "cache")
    try:
        assert first.lease.held and not second.lease.held
        job_id = second.submit(TINY, "sample", owner="x")
        assert first.get(job_id).position == 1
        (first if where == "dispatcher" else second).stop(job_id, Actor("x"))
        first.limits = Limits(max_concurrent=1)  # a slot frees up: the cancelled job must not take it
        time.sleep(1.5)
        assert first.get(job_id).state == "cancelled" and not first.events(job_id)
    finally:
        second.shutdown()
        first.shutdown()


CHOOSE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from sentiment_core.jobs import JobManager
    manager = JobManager(Path(sys.argv[1]), Path(sys.argv[2]))  # SENTIMENT_RUNNER=ray: nothing queued
    time.sleep(1.5)  # the dispatcher ticks, and lists the (empty) queue
    print(json.dumps({"runner": type(manager.runner).__name__, "address": manager.runner.address,
                      "imported": sorted(m for m in ("ray", "jax", "keras", "tensorflow") if m in sys.modules)}))
    manager.shutdown()
""")


def test_the_runner_comes_from_the_environment_and_ray_is_imported_only_to_start_a_job(tmp_path, monkeypatch):
    from sentiment_core import runners

    for value, message in (("ray", "SENTIMENT_RAY_ADDRESS"), ("slurm", r"'slurm': use 'local' \(default\) or 'ray'")):
        monkeypatch.setenv("SENTIMENT_RUNNER", value)
        monkeypatch.delenv("SENTIMENT_RAY_ADDRESS", raising=False)
        with pytest.raises(runners.RunnerError, match=message):
            runners.from_env()
    monkeypatch.delenv("SENTIMENT_RUNNER")
    assert isinstance(runners.from_env(), runners.LocalRunner)

    env = {**os.environ, "SENTIMENT_RUNNER": "ray", "SENTIMENT_RAY_ADDRESS": "127.0.0.2:6379", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHOOSE, str(tmp_path / "jobs"), str(tmp_path / "runs")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"runner": "RayRunner", "address": "127.0.0.2:6379", "imported": []}
