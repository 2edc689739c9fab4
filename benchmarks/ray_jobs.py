"""Many tiny jobs through one JobManager on a local Ray cluster: do they all finish, with every run on disk?

    python benchmarks/ray_jobs.py                      # 30 jobs, 2 worker nodes, one node lost mid-job
    python benchmarks/ray_jobs.py --jobs 10 --no-node-loss

Starts a head and --workers worker nodes on 127.0.0.2 (benchmarks/ray_cluster.py; one `trainer` each), a
JobManager with SENTIMENT_RUNNER=ray semantics in this process (the app server's part: the queue, the
events appended, the runs written), and submits --jobs tiny jobs (tiny preset, 1 epoch, bundled sample),
each from its own session. Unless --no-node-loss, the node running the third job is removed (SIGKILL) once
that job has trained a batch, and a new node joins in its place: the job must come back on attempt 2.
Prints a markdown table and a JSON line: jobs per minute, queue wait p50/p95, run time p50, final states,
attempts, runs that load, and peak RSS of this process (the app server's share) and of the cluster.
Needs Ray (requirements-ray.txt). Localhost only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ray_cluster import LocalCluster  # noqa: E402
from sentiment_core import runs  # noqa: E402
from sentiment_core.config import PRESETS  # noqa: E402
from sentiment_core.jobs import JobManager, Limits  # noqa: E402
from sentiment_core.protocol import FINAL, BatchEvent  # noqa: E402
from sentiment_core.runners import RayRunner  # noqa: E402

TINY = PRESETS["tiny"].replace(epochs=1, vocab_size=500, maxlen=30, units=4, embedding_dim=8)


def percentile(values: list[float], q: float) -> float | None:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1) if len(values) > 1 else None


class Peaks(threading.Thread):
    """Peak RSS of this process and of the cluster's processes, every 0.5 s."""

    def __init__(self, cluster: LocalCluster):
        super().__init__(daemon=True)
        self.cluster, self.server, self.nodes, self.task = cluster, 0, 0, 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.5):
            self.server = max(self.server, psutil.Process().memory_info().rss)
            total = 0
            for process in self.cluster.processes():
                with contextlib.suppress(psutil.Error):
                    total += process.memory_info().rss
            self.nodes = max(self.nodes, total)
            for process in self.cluster.task_workers():
                with contextlib.suppress(psutil.Error):
                    self.task = max(self.task, process.memory_info().rss)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=30, help="tiny jobs to submit (1 to 100)")
    parser.add_argument("--workers", type=int, default=2, help="worker nodes, one trainer each (1 to 8)")
    parser.add_argument("--no-node-loss", action="store_true", help="do not remove a node mid-job")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for all jobs")
    args = parser.parse_args()
    if not 1 <= args.jobs <= 100 or not 1 <= args.workers <= 8:
        parser.error("--jobs 1..100, --workers 1..8")
    base = Path(tempfile.mkdtemp(prefix="sentiment-ray-jobs-"))
    cluster = LocalCluster.start(base / "ray", workers=args.workers)
    os.environ.update(cluster.env)
    peaks = Peaks(cluster)
    peaks.start()
    manager = JobManager(base / "jobs", base / "runs", Limits(max_concurrent=args.workers, max_queued_per_session=1),
                         cache_dir=base / "cache", runner=RayRunner(cluster.address))
    started = time.monotonic()
    removed = None
    try:
        ids = [manager.submit(TINY, "sample", owner=f"student{i}", name=f"tiny-{i:03d}") for i in range(args.jobs)]
        target = ids[min(2, len(ids) - 1)]
        while time.monotonic() - started < args.timeout:
            jobs = [manager.get(job_id) for job_id in ids]
            if all(job.state in FINAL for job in jobs):
                break
            victim = manager.get(target)
            if (not args.no_node_loss and removed is None and victim.pid
                    and any(isinstance(e, BatchEvent) for e in manager.events(target))):
                node = cluster.node_of(victim.pid)
                if node is not None:
                    cluster.remove_node(node)
                    cluster.add_node()
                    removed = time.monotonic() - started
            time.sleep(0.5)
        wall = time.monotonic() - started
        jobs = [manager.get(job_id) for job_id in ids]
    finally:
        manager.shutdown()
        peaks.halt.set()
        cluster.stop()
    states: dict[str, int] = {}
    for job in jobs:
        states[str(job.state)] = states.get(str(job.state), 0) + 1
    loadable = 0
    for job in jobs:
        try:
            runs.load_run(job.run)
            loadable += 1
        except (runs.RunError, TypeError):
            pass
    waits = [j.started - j.submitted for j in jobs if j.started]
    durations = [j.ended - j.started for j in jobs if j.started and j.ended]
    mib = 2**20
    result = {"jobs": args.jobs, "workers": args.workers, "states": states, "runs_on_disk": len(list(
        p for p in (base / "runs").iterdir() if not p.name.startswith("."))), "runs_that_load": loadable,
        "second_attempts": sum(j.attempt == 2 for j in jobs), "node_removed_at_s": removed and round(removed, 1),
        "wall_s": round(wall, 1), "jobs_per_min": round(states.get("done", 0) / (wall / 60), 2),
        "queue_wait_p50_s": percentile(waits, 50), "queue_wait_p95_s": percentile(waits, 95),
        "run_p50_s": percentile(durations, 50), "peak_rss_server_mib": round(peaks.server / mib),
        "peak_rss_cluster_mib": round(peaks.nodes / mib), "peak_rss_task_worker_mib": round(peaks.task / mib),
        "cores": os.cpu_count(), "load_average_1m_at_end": round(os.getloadavg()[0], 1)}
    print("\n| measure | value |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {value} |")
    print(json.dumps(result))
    ok = states.get("done", 0) == args.jobs and loadable == args.jobs
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
