"""Training jobs on a Ray cluster (SENTIMENT_RUNNER=ray): progress, stop, cancel, a killed worker, a lost node,
two app servers. One machine: a head and two worker nodes on 127.0.0.2 (loopback), started here.
Skipped only when Ray is not installed (pip install -r requirements-ray.txt)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

pytest.importorskip("ray")

from test_jobs import LONG, TINY, batches, wait_for  # noqa: E402

from benchmarks.ray_cluster import LocalCluster  # noqa: E402
from sentiment_core import runs  # noqa: E402
from sentiment_core.jobs import JobManager, Limits  # noqa: E402
from sentiment_core.people import Actor
from sentiment_core.protocol import AttemptEvent, BatchEvent, EndEvent, latest_attempt  # noqa: E402
from sentiment_core.runners import RayRunner  # noqa: E402

pytestmark = pytest.mark.slow
# Long enough to be killed mid-training, short enough that its second attempt takes seconds.
SHORT = TINY.replace(epochs=2, early_stopping=False, batch_size=16)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    import ray

    base = tmp_path_factory.mktemp("ray")
    cluster = LocalCluster.start(base, workers=2)
    saved = {k: os.environ.get(k) for k in cluster.env}
    os.environ.update(cluster.env)  # this process is the driver (the app server)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def folders(tmp_path):
    return tmp_path / "jobs", tmp_path / "runs", tmp_path / "cache"


def manager(cluster, folders, concurrent: int = 2) -> JobManager:
    jobs, runs_dir, cache = folders
    return JobManager(jobs, runs_dir, Limits(max_concurrent=concurrent, max_queued_per_session=3), cache_dir=cache,
                      poll_seconds=0.05, runner=RayRunner(cluster.address))


def ray_worker(pid: int) -> bool:
    try:
        return psutil.Process(pid).name().startswith("ray::train-")  # a Ray worker running our task
    except psutil.Error:
        return False


def test_two_servers_one_submits_the_other_watches_and_stops_a_cancelled_job_never_reaches_ray(cluster, folders):
    first = manager(cluster, folders, concurrent=1)
    second = manager(cluster, folders, concurrent=1)
    try:
        assert first.lease.held and not second.lease.held
        watched = first.submit(LONG, "sample", owner="a", name="ray-stopped")
        wait_for(lambda: second.get(watched).state == "running", timeout=60)
        cancelled = first.submit(TINY, "sample", owner="b")
        assert second.get(cancelled).position == 1
        assert second.stop(cancelled, Actor("b")).state == "cancelled"

        # Progress arrives on the other server while the job runs (streamed back, appended to events.jsonl).
        wait_for(lambda: batches(second, watched) >= 3, timeout=180)
        seen = batches(second, watched)
        wait_for(lambda: batches(second, watched) > seen, timeout=10)
        job = second.get(watched)
        assert job.state == "running" and ray_worker(job.pid)

        asked = time.monotonic()
        assert second.stop(watched, Actor("a")).state == "stopping"
        wait_for(lambda: any(isinstance(e, EndEvent) for e in second.events(watched)), timeout=10)
        seen = time.monotonic() - asked
        # After its last batch Keras still validates the epoch before the end event (about 1 s at a load of 12
        # on 2 cores, the same for a local worker); the stop itself, from the click on the other server to the
        # worker's last batch and the end event back here, is the rest.
        events = second.events(watched)
        end = next(e for e in events if isinstance(e, EndEvent))
        validating = end.seconds - [e for e in events if isinstance(e, BatchEvent)][-1].seconds
        assert seen - validating < 2.0, f"the stop took {seen:.2f} s, {validating:.2f} s of it validating"
        job = second.wait(watched, timeout=120)
        assert job.state == "stopped", job
        # The run came back through the object store into this server's runs folder, whole.
        run = runs.load_run(job.run)
        assert Path(job.run) == folders[1] / "ray-stopped"
        assert run.meta["status"] == "stopped" and len(run.history["epochs"]) < LONG.epochs
        assert job.metrics["accuracy"] == pytest.approx(run.metrics["accuracy"])

        assert second.get(cancelled).state == "cancelled" and not second.events(cancelled)
        assert cancelled not in first.runner.started and watched in first.runner.started
        assert not second.runner.started  # the standby never talked to Ray
    finally:
        second.shutdown()
        first.shutdown()


def test_a_killed_worker_and_a_lost_node_requeue_their_jobs_once_which_are_done_on_attempt_two(cluster, folders):
    """Two jobs at once, one per worker node: one's worker is killed (SIGKILL), the other's node goes away.
    Each is queued again at its place, and done on its second attempt (the lost node's job on a new node)."""
    m = manager(cluster, folders)
    try:
        killed = m.submit(SHORT, "sample", owner="k", name="ray-killed")
        stranded = m.submit(SHORT, "sample", owner="n", name="ray-node-lost")
        for job_id in (killed, stranded):
            wait_for(lambda job_id=job_id: batches(m, job_id) >= 1 and m.get(job_id).pid, timeout=240)
        assert all(ray_worker(m.get(j).pid) for j in (killed, stranded))
        node = cluster.node_of(m.get(stranded).pid)
        assert node is not None and node is not cluster.node_of(m.get(killed).pid)
        os.kill(m.get(killed).pid, signal.SIGKILL)
        cluster.remove_node(node)
        cluster.add_node()  # a replacement, as an autoscaler would bring

        for job_id in (killed, stranded):
            job = m.wait(job_id, timeout=300)
            assert job.state == "done" and job.attempt == 2, job
            assert runs.load_run(job.run).meta["status"] == "complete"
            assert runs.load_run(job.run).meta["timings"]["huge_pages"] is True  # Ray's runtime_env
            events = m.events(job_id)
            attempts = [e for e in events if isinstance(e, AttemptEvent)]
            assert len(attempts) == 1 and attempts[0].attempt == 2 and "lost" in attempts[0].reason
            latest = latest_attempt(events)
            assert latest[0] == attempts[0]
            steps = [e.global_step for e in latest if isinstance(e, BatchEvent)]
            assert steps == list(range(1, len(steps) + 1)), "the second attempt's curve is its own, from step 1"
        assert set(m.runner.started) == {killed, stranded} and len(m.runner.started) == 4
    finally:
        m.shutdown()
