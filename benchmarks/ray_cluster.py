"""A Ray cluster on this machine's loopback, for tests and benchmarks: a head and N worker nodes.

Used by tests/test_ray.py, benchmarks/ray_jobs.py and benchmarks/loadtest.py --runner ray.

    cluster = LocalCluster.start(tmp_dir, workers=2)
    ...  # SENTIMENT_RUNNER=ray SENTIMENT_RAY_ADDRESS=cluster.address, with cluster.env in the environment
    cluster.stop()

Every node listens on 127.0.0.2 (Ray rewrites 127.0.0.1 to the machine's primary address), token
authentication is off (RAY_AUTH_MODE=disabled: no token to hand around on loopback; a real cluster keeps
it, see README), and each node is a `ray start --block` child of this process, so that it is stopped by
its own process ids and one node can be taken away (`remove_node`) without touching any other Ray on the
machine (`ray stop` would stop them all). The head gets no `trainer` resource: jobs run on the workers,
`trainers` at a time on each. Memory is kept modest: one CPU and a small object store per node, no dashboard.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.2"
OBJECT_STORE_BYTES = 80 * 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cluster_env(cache: Path | None = None) -> dict[str, str]:
    """What the nodes and a driver on this machine need in their environment."""
    env = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if cache is not None:
        env["SENTIMENT_CACHE"] = str(cache)  # the worker nodes' encoded-data cache
    return env


@dataclass
class LocalCluster:
    address: str
    base: Path
    head: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    temp: Path | None = None  # Ray's session folders (logs, sockets)

    @classmethod
    def start(cls, base: Path, workers: int = 2, trainers: int = 1, timeout: float = 120.0) -> LocalCluster:
        base = Path(base)
        base.mkdir(parents=True, exist_ok=True)
        env = cluster_env(base / "cache")
        port = free_port()
        temp = Path(f"/tmp/ray-{os.getpid()}-{port}")  # sockets live here: a short path (AF_UNIX: 107 bytes)
        cluster = cls(f"{HOST}:{port}", base, None, env=env, temp=temp)  # type: ignore[arg-type]
        try:
            cluster.head = cluster._start_node("head", ["--head", f"--port={port}", f"--temp-dir={temp}",
                                                        "--include-dashboard=false",
                                                        f"--ray-client-server-port={free_port()}"], timeout)
            for _ in range(workers):
                cluster.add_node(trainers, timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def add_node(self, trainers: int = 1, timeout: float = 120.0) -> subprocess.Popen:
        node = self._start_node(f"worker{len(self.workers) + 1}",
                                [f"--address={self.address}", f'--resources={{"trainer": {trainers}}}'], timeout)
        self.workers.append(node)
        return node

    def _start_node(self, name: str, args: list[str], timeout: float, attempts: int = 3) -> subprocess.Popen:
        """`ray start --block`, until it says the node is up. On a busy machine a node may time out while
        registering with the head ("The current node timed out during startup") and exit: it is started
        again, up to `attempts` times. One node at a time, which is also what keeps the head answering."""
        args = [*args, "--block", f"--node-ip-address={HOST}", "--num-cpus=1",
                f"--object-store-memory={OBJECT_STORE_BYTES}", "--disable-usage-stats",
                f"--dashboard-agent-listen-port={free_port()}"]
        log_path = self.base / f"{name}.log"
        for _ in range(attempts):
            offset = log_path.stat().st_size if log_path.exists() else 0
            with open(log_path, "ab") as log:
                node = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", *args], cwd=ROOT,
                                        env={**os.environ, **self.env}, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + timeout
            while node.poll() is None and time.monotonic() < deadline:
                with open(log_path, "rb") as log:
                    log.seek(offset)
                    if b"Ray runtime started" in log.read():
                        return node
                time.sleep(0.5)
            _kill_tree(node)
        raise RuntimeError(f"Ray node {name} did not start ({attempts} attempts); see {log_path}")

    def node_of(self, pid: int) -> subprocess.Popen | None:
        """The worker node (its `ray start` process) that a worker process `pid` runs on."""
        for node in self.workers:
            if any(p.pid == pid for p in _tree(node)):
                return node
        return None

    def processes(self) -> list[psutil.Process]:
        """Every process of every node (for measuring the cluster's memory)."""
        return [p for node in [self.head, *self.workers] for p in _tree(node)]

    def task_workers(self) -> list[psutil.Process]:
        """The worker processes training a job (Ray names a process after its task: ray::train-<job id>)."""
        found = []
        for process in (p for node in self.workers for p in _tree(node)):
            with contextlib.suppress(psutil.Error):
                if process.name().startswith("ray::train-"):
                    found.append(process)
        return found

    def remove_node(self, node: subprocess.Popen) -> None:
        """The node goes away at once, as a machine that fails: its processes are killed (SIGKILL)."""
        _kill_tree(node)
        self.workers.remove(node)

    def stop(self) -> None:
        for node in [*self.workers, self.head]:
            if node is not None:
                _kill_tree(node)
        self.workers.clear()
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)


def _tree(node: subprocess.Popen) -> list[psutil.Process]:
    try:
        parent = psutil.Process(node.pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return []


def _kill_tree(node: subprocess.Popen) -> None:
    """A node's processes, by their ids: `ray start --block`, its raylet and the raylet's workers."""
    for process in reversed(_tree(node)):
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGKILL)
    node.wait(timeout=10)
