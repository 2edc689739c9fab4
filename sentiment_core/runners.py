"""Where a training job runs: a worker process on this server, or a task on a Ray cluster.

`JobManager` (jobs.py) stays the only queue: order, positions, limits, the job records. It hands a job
it starts to a `JobRunner`, and watches the `Running` it gets back until it reports how the job `Ended`.
Either way the worker's progress lands in the job's `events.jsonl` and its run in the runs folder, so every
page reads a job the same way.

- `LocalRunner` (the default): a fresh `python -m sentiment_core.jobs JOB_DIR` process, which appends
  its events itself and stops when it sees the job's `stop` flag file.
- `RayRunner` (`SENTIMENT_RUNNER=ray`, `SENTIMENT_RAY_ADDRESS`): one Ray task per job, in a fresh Ray
  worker process (`max_calls=1`) on a node with a free `trainer` resource. The task streams its events
  back (a streaming generator) and this server appends them to `events.jsonl`; the finished run comes
  back as a zip through Ray's object store and is imported into the runs folder (atomically, checked), so
  worker nodes share no filesystem with the app servers. A stop goes through a small actor (`StopBoard`)
  that the task long-polls. Ray's own retries stay off (they splice a streaming task's events): a lost
  worker or node is reported as `lost`, and the manager queues the job once more itself.

This module imports Ray only inside RayRunner's methods and the task, and never Keras or JAX: the app
process imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import footprint, runs
from .protocol import EVENTS_FILE, RESULT_FILE, STOP_FILE, BatchEvent, Job, JobResult, JobState, read_result

ROOT = Path(__file__).resolve().parent.parent
RAY_NAMESPACE = "sentiment-lab"
EVENT_CHUNK_SECONDS = 0.25  # a Ray task sends its batch events in chunks this far apart; other events at once


class RunnerError(RuntimeError):
    """The runner cannot start jobs (e.g. the Ray cluster cannot be reached); the message is for the user."""


@dataclass(frozen=True)
class Ended:
    """How a job's worker ended. `lost`: the worker process or its node died under it, so the job itself may
    be fine and is worth one more attempt (the manager decides)."""

    result: JobResult
    lost: bool = False


class Running(Protocol):
    """A started job, watched by the manager's dispatcher thread."""

    pid: int | None  # the worker's process id (on its own machine), once known

    def poll(self) -> Ended | None:
        """None while the job runs; then how it ended. Never blocks."""

    def stop(self) -> None:
        """Ask the worker to stop after its current batch (it still evaluates and saves)."""

    def kill(self) -> None:
        """End the worker now, the hard way (after the grace period, or at shutdown)."""


class JobRunner(Protocol):
    name: str

    def start(self, job: Job, job_dir: Path) -> Running:
        """Start the job; raises RunnerError when it cannot."""

    def slots(self) -> int | None:
        """How many jobs the place it runs them can train at once, or None for no limit of its own."""

    def close(self) -> None:
        """Forget the jobs started here (at the manager's shutdown)."""


def died(exitcode: int | None) -> JobResult:
    return JobResult(JobState.FAILED, error=f"the training process died (exit code {exitcode}); "
                     "it may have run out of memory or been killed")


# ---------------------------------------------------------------- local worker processes
class LocalJob:
    def __init__(self, process: subprocess.Popen, job_dir: Path):
        self.process, self.job_dir, self.pid = process, job_dir, process.pid

    def poll(self) -> Ended | None:
        if self.process.poll() is None:
            return None
        # A local worker that died is reported as failed, as it always was: on the server itself that is
        # most often running out of memory, which a second attempt would repeat.
        return Ended(read_result(self.job_dir / RESULT_FILE) or died(self.process.returncode))

    def stop(self) -> None:
        (self.job_dir / STOP_FILE).touch()  # the worker checks it after every batch

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)


class LocalRunner:
    """Each job in a fresh `python -m sentiment_core.jobs JOB_DIR` process on this server."""

    name = "local"

    def start(self, job: Job, job_dir: Path) -> LocalJob:
        with open(job_dir / "worker.log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "sentiment_core.jobs", str(job_dir)],
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                       env=footprint.with_huge_pages())
        return LocalJob(process, job_dir)

    def slots(self) -> int | None:
        return None

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- Ray
class StopBoard:
    """A Ray actor (one per dispatching server): the stop requests of its jobs. A task long-polls `wait`,
    so a stop reaches it within a batch and an idle task costs one pending call."""

    def __init__(self) -> None:
        self._asked: dict[str, asyncio.Event] = {}

    def _flag(self, job_id: str) -> asyncio.Event:
        return self._asked.setdefault(job_id, asyncio.Event())

    async def stop(self, job_id: str) -> None:
        self._flag(job_id).set()

    async def wait(self, job_id: str, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._flag(job_id).wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def forget(self, job_id: str) -> None:
        self._asked.pop(job_id, None)


def ray_job(job_json: str, board):
    """The Ray task (a streaming generator), in a fresh worker process: train, then hand back the run.

    Yields ("pid", pid), then ("events", [JSON lines]) as training goes, and last ("result", result JSON,
    the run as zip bytes or None). Training runs in a thread that queues its events; the task's own thread
    sends them on, and a third long-polls the StopBoard."""
    import ray

    from .features import DEFAULT_CACHE
    from .jobs import train_job, worker_nice

    worker_nice()
    yield ("pid", os.getpid())
    job = Job.from_dict(json.loads(job_json))
    stop, finished, events = threading.Event(), threading.Event(), queue.Queue()

    def watch_stop() -> None:
        while not finished.is_set() and not stop.is_set():
            try:
                if ray.get(board.wait.remote(job.id, 10.0), timeout=30):
                    stop.set()
            except Exception:  # noqa: BLE001  the board's node went away: no stop can come any more
                time.sleep(1.0)

    def train() -> None:
        result, payload = JobResult(JobState.FAILED, error="the worker ended without a result"), None
        try:
            with tempfile.TemporaryDirectory(prefix="sentiment-job-") as tmp:
                # The worker node's own data cache (SENTIMENT_CACHE there), not the app server's folder.
                result = train_job(job, Path(tmp) / job.name, events.put, stop.is_set, cache_dir=str(DEFAULT_CACHE))
                payload = runs.to_zip(Path(result.run)) if result.run else None
        except Exception as error:  # noqa: BLE001  the task reports anything rather than hang
            result = JobResult(JobState.FAILED, error=f"{type(error).__name__}: {error}")
        finally:
            events.put(("result", result.to_json(), payload))

    threading.Thread(target=watch_stop, daemon=True).start()
    threading.Thread(target=train, daemon=True).start()
    lines: list[str] = []
    sent = time.monotonic()
    while True:
        try:
            item = events.get(timeout=EVENT_CHUNK_SECONDS)
        except queue.Empty:
            item = None
        if isinstance(item, tuple):  # the end
            finished.set()
            if lines:
                yield ("events", lines)
            yield item
            return
        if item is not None:
            lines.append(item.to_json())
        if lines and (not isinstance(item, BatchEvent) or time.monotonic() - sent >= EVENT_CHUNK_SECONDS):
            yield ("events", lines)
            lines, sent = [], time.monotonic()


class RayJob:
    """One job's Ray task, read by its own thread: events go to events.jsonl, the run into the runs folder."""

    def __init__(self, ray, generator, board, job: Job, job_dir: Path):
        self._ray, self._generator, self._board = ray, generator, board
        self.job, self.job_dir = job, job_dir
        self.pid: int | None = None
        self._killed = False
        self._ended: Ended | None = None
        self._reader = threading.Thread(target=self._read, name=f"ray-job-{job.id}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        from ray import exceptions

        try:
            ended = None
            with open(self.job_dir / EVENTS_FILE, "a", encoding="utf-8") as out:
                for ref in self._generator:
                    kind, *value = self._ray.get(ref)
                    if kind == "pid":
                        self.pid = value[0]
                    elif kind == "events":
                        out.write("".join(line + "\n" for line in value[0]))
                        out.flush()
                    elif kind == "result":
                        ended = Ended(self._received(JobResult.from_dict(json.loads(value[0])), value[1]))
            # A stream that ends without its result: the worker went away (a node draining on SIGTERM ends
            # its tasks' streams like this).
            self._ended = ended or Ended(died(None), lost=not self._killed)
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError, exceptions.ObjectLostError) as error:
            lost = not self._killed  # a forced cancel is reported as a crashed worker too
            self._ended = Ended(JobResult(JobState.FAILED, error=_first_line(error)) if lost else died(None), lost)
        except exceptions.TaskCancelledError:
            self._ended = Ended(died(None))
        except Exception as error:  # noqa: BLE001  e.g. Ray's OutOfMemoryError: the job's own failure
            self._ended = Ended(JobResult(JobState.FAILED, error=f"{type(error).__name__}: {_first_line(error)}"))
        finally:
            with contextlib.suppress(Exception):  # Ray may be shut down already
                self._board.forget.remote(self.job.id)

    def _received(self, result: JobResult, payload: bytes | None) -> JobResult:
        """The run, written into this server's runs folder; the result then names it there."""
        if payload is None:
            return result
        target = Path(self.job.run_path)
        try:
            path = runs.import_zip(payload, target.name, target.parent)
        except runs.RunError as error:
            return JobResult(JobState.FAILED, error=f"the run came back but cannot be saved: {error}")
        return JobResult(result.state, run=str(path), metrics=result.metrics)

    def poll(self) -> Ended | None:
        return self._ended

    def stop(self) -> None:
        self._board.stop.remote(self.job.id)

    def kill(self) -> None:
        self._killed = True
        self._ray.cancel(self._generator, force=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class RayRunner:
    """Each job as one Ray task on a cluster (see the module's docstring). Connects when there is a job to
    start, so a standby app server (one that does not dispatch) never talks to Ray; in a thread of its own,
    since `ray.init` waits minutes for a head that does not answer, and the dispatcher must not."""

    name = "ray"
    RETRY_SECONDS = 30.0  # after a failed connection, jobs fail with its error this long, then it tries again
    CONNECT_SECONDS = 60.0  # a connection not made by then counts as failed (ray.init may still get there)

    def __init__(self, address: str):
        self.address = address
        self._ray = None
        self._board = None
        self._task = None
        self._slots: tuple[float, int] = (0.0, 0)  # (when read, the cluster's trainer count)
        self._opening: threading.Thread | None = None
        self._opening_since = 0.0
        self._failed: tuple[str, float] | None = None  # (why, when) the last connection failed
        self.started: list[str] = []  # job ids handed to Ray, in order (for tests and admins)

    def _connect(self):
        """Ray once connected; None while connecting; RunnerError for a while after a failure."""
        if self._ray is not None:
            return self._ray
        opening = self._opening is not None and self._opening.is_alive()
        if opening and self._failed is None and time.monotonic() - self._opening_since > self.CONNECT_SECONDS:
            self._failed = (f"cannot reach the Ray cluster at {self.address} (no answer within "
                            f"{self.CONNECT_SECONDS:.0f} s)", time.monotonic())
        if self._failed is not None:
            why, when = self._failed
            if time.monotonic() - when < self.RETRY_SECONDS:
                raise RunnerError(why)
            self._failed = None
        if not opening:
            self._opening_since = time.monotonic()
            self._opening = threading.Thread(target=self._open, name="ray-connect", daemon=True)
            self._opening.start()
        return None

    def _open(self) -> None:
        try:
            import ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            from .jobs import member_processes

            if not ray.is_initialized():
                ray.init(address=self.address, namespace=RAY_NAMESPACE, log_to_driver=False)
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
            # The board lives on this server's node: it goes away with this server, and with nothing else.
            self._board = ray.remote(StopBoard).options(num_cpus=0, scheduling_strategy=here).remote()
            self._task = ray.remote(max_calls=1, num_returns="streaming", max_retries=0, num_cpus=0,
                                    resources={"trainer": 1},
                                    runtime_env={"env_vars": {  # as local workers get them (jobs._worker)
                                        "GLIBC_TUNABLES": footprint.with_huge_pages()["GLIBC_TUNABLES"],
                                        "SENTIMENT_MEMBER_PROCESSES": member_processes()}})(ray_job)
        except ImportError:
            self._failed = ("SENTIMENT_RUNNER=ray needs Ray: pip install -r requirements-ray.txt", time.monotonic())
            return
        except Exception as error:  # noqa: BLE001  ConnectionError, auth, timeouts: say what and where
            self._failed = (f"cannot use the Ray cluster at {self.address}: {_first_line(error)}", time.monotonic())
            return
        self._ray = ray

    def start(self, job: Job, job_dir: Path) -> RayJob:
        ray = self._connect()
        if ray is None:
            raise RunnerError(f"still connecting to the Ray cluster at {self.address}")
        # Ray names the worker process after the task while it runs: ray::train-<job id>.
        generator = self._task.options(name=f"train-{job.id}").remote(job.to_json(), self._board)
        self.started.append(job.id)
        return RayJob(ray, generator, self._board, job, job_dir)

    def slots(self) -> int | None:
        """The cluster's `trainer` resources, read at most once a second (0 while connecting)."""
        read, count = self._slots
        if time.monotonic() - read > 1.0:
            ray = self._connect()
            if ray is None:
                return 0
            try:
                count = int(ray.cluster_resources().get("trainer", 0))
            except Exception as error:  # noqa: BLE001  the head went away
                raise RunnerError(f"the Ray cluster at {self.address} does not answer: {_first_line(error)}") from error
            self._slots = (time.monotonic(), count)
        return count

    def close(self) -> None:
        if self._ray is not None and self._board is not None:
            self._ray.kill(self._board)  # its jobs' stops with it; the tasks end with this process
            self._board = None
            self._ray = None


def from_env() -> JobRunner:
    """SENTIMENT_RUNNER: `local` (default) or `ray` (with SENTIMENT_RAY_ADDRESS, e.g. 10.0.0.5:6379)."""
    kind = os.environ.get("SENTIMENT_RUNNER", "local").strip().lower() or "local"
    if kind == "local":
        return LocalRunner()
    if kind == "ray":
        address = os.environ.get("SENTIMENT_RAY_ADDRESS", "").strip()
        if not address:
            raise RunnerError("SENTIMENT_RUNNER=ray needs SENTIMENT_RAY_ADDRESS (the head node's host:port)")
        return RayRunner(address)
    raise RunnerError(f"SENTIMENT_RUNNER={kind!r}: use 'local' (default) or 'ray'")
