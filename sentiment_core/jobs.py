"""Training jobs in worker processes, behind a fair FIFO queue. Standard library only.

Each job is a folder: `job.json` (what to train, who asked, its state, written by
the manager only), `events.jsonl` (progress, appended by the worker), `stop` (a
flag file the worker checks after every batch) and `result.json` (the worker's
last word); their format is `protocol`'s, and this module reads and writes them
only through it. Every session reads the same folders, so progress is visible from
any browser, survives page switches and reconnects, and a server restart can
tell finished jobs from interrupted ones.

Where a job runs is a `runners.JobRunner`'s business: by default one fresh
`python -m sentiment_core.jobs JOB_DIR` process (a failing or killed worker takes
nothing else down, and the next job simply gets a new one), or a task on a Ray
cluster (`SENTIMENT_RUNNER=ray`). Several app servers may share one jobs folder:
each takes, shows and stops jobs, and the one holding the folder's lease
(`lease.py`) starts them.
"""

from __future__ import annotations

import copy
import hmac
import os
import secrets
import shutil
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import footprint, runs
from .challenges import ChallengeError, check_id
from .config import SCHEMA, Config, ConfigError
from .data import DataError
from .exercise import Exercise, ExerciseError
from .lease import LOCK_FILE, Lease, SharedLock
from .people import Actor, NicknameError, NotAllowed, check_nickname, owner_tag
from .protocol import (
    ACTIVE,
    EVENTS_FILE,
    FINAL,
    JOB_FILE,
    RESULT_FILE,
    STOP_FILE,
    AttemptEvent,
    BatchEvent,
    EndEvent,
    Event,
    Job,
    JobResult,
    JobState,
    latest_attempt,
    parse_event,
    read_job,
    read_result,
    write_atomic,
)
from .runners import Ended, JobRunner, RunnerError, Running, from_env

STOP_GRACE_SECONDS = 20.0  # after this a worker that ignores the stop flag is killed
# A worker looks at the flag after each batch: before its first one (imports, data, compiling, which take
# over 20 s on a busy 2-core server) it cannot see it yet, so the grace counts from then.
STARTUP_GRACE_SECONDS = 300.0
# After its end event a worker has obeyed: it evaluates and saves what it learned, which a busy server
# can stretch past STOP_GRACE_SECONDS (it was then killed, and the job reported failed).
SAVE_GRACE_SECONDS = 300.0
LIST_SECONDS = 1.0  # how often an idle dispatcher lists the jobs folder for queued jobs
MAX_ATTEMPTS = 2  # a job whose worker or node was lost is queued again once, at its place


class JobError(ValueError):
    """A job that cannot be accepted or acted on; the message is for the user."""


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def server_caps() -> dict[str, int]:
    """The largest value this server accepts for each capped hyperparameter: its environment variable
    (declared with the hyperparameter in config.SCHEMA), else the default declared there."""
    return {p.name: _env_int(*p.cap) for p in SCHEMA.values() if p.cap}


@dataclass(frozen=True)
class Limits:
    """What a shared server accepts; each is set by an environment variable (see README)."""

    max_concurrent: int = field(default_factory=lambda: _env_int("SENTIMENT_MAX_TRAININGS", os.cpu_count() or 1))
    max_queued_per_session: int = field(default_factory=lambda: _env_int("SENTIMENT_MAX_JOBS_PER_SESSION", 2))
    caps: dict[str, int] = field(default_factory=server_caps)  # a hyperparameter not named is bounded by its range
    max_train_samples: int = field(default_factory=lambda: _env_int("SENTIMENT_MAX_TRAIN_SAMPLES", 25_000))

    def check(self, config: Config) -> None:
        for name, cap in self.caps.items():
            value = getattr(config, name)
            if value > cap:
                raise JobError(f"{name} {value} is above this server's limit of {cap} (set by {SCHEMA[name].cap[0]})")


def member_processes() -> str:
    """How many networks of one job train at once when trained apart (members_apart). A server runs as many
    jobs as it has cores (Limits.max_concurrent), so a job's networks take turns on its one core unless
    SENTIMENT_MEMBER_PROCESSES says otherwise."""
    return os.environ.get("SENTIMENT_MEMBER_PROCESSES", "1")


def worker_nice() -> None:
    """Training yields the CPU to the server, so pages stay responsive while jobs run."""
    os.nice(_env_int("SENTIMENT_WORKER_NICE", 10))


def _worker(job_dir: str) -> None:
    """Runs in a fresh process: train, save the run, write result.json."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C on the server stops the server, not the job
    worker_nice()
    os.environ["SENTIMENT_MEMBER_PROCESSES"] = member_processes()
    job = Path(job_dir)
    spec = read_job(job / JOB_FILE)
    if spec is None:
        raise SystemExit(f"cannot read {job / JOB_FILE}")  # the manager reports a worker that died
    last_flush = [0.0]
    stop_flag = job / STOP_FILE
    with open(job / EVENTS_FILE, "a", encoding="utf-8") as events:
        def on_event(event: Event) -> None:
            events.write(event.to_json() + "\n")
            now = time.monotonic()
            if event.type != "batch" or now - last_flush[0] > 0.25:
                events.flush()
                last_flush[0] = now

        result = train_job(spec, Path(spec.run_path), on_event, stop_flag.exists, spec.cache_dir)
    write_atomic(job / RESULT_FILE, result.to_json())


def train_job(spec: Job, run_path: Path, on_event: Callable[[Event], None], should_stop: Callable[[], bool],
              cache_dir: str | None) -> JobResult:
    """Train the job's config, save the run at run_path, and say how it went (never raises): what a worker
    process does, here or on a Ray node."""
    try:
        footprint.skip_optional_imports(spec.data)  # before Keras is imported
        from .runner import train_and_save

        run = train_and_save(Config.from_dict(spec.config), spec.data, Path(run_path), on_event, should_stop,
                             cache_dir=Path(cache_dir) if cache_dir else None,
                             max_train_samples=spec.max_train_samples)
        return JobResult(JobState.STOPPED if run.meta.get("status") == "stopped" else JobState.DONE,
                         run=str(run.path), metrics={k: run.metrics[k] for k in ("accuracy", "loss", "roc_auc")})
    except (ConfigError, DataError, runs.RunError, ValueError) as error:
        return JobResult(JobState.FAILED, error=str(error))
    except MemoryError:
        return JobResult(JobState.FAILED, error="out of memory: try a smaller model, vocabulary or max length")
    except Exception as error:  # a worker reports anything rather than dying silently
        return JobResult(JobState.FAILED, error=f"{type(error).__name__}: {error}",
                         traceback=traceback.format_exc()[-4000:])


class JobManager:
    """Queue, start, watch and stop training jobs. One per server, shared by all sessions (thread-safe);
    several servers may share one jobs folder, and the one holding its lease starts the jobs."""

    def __init__(self, jobs_dir: Path, runs_dir: Path = runs.RUNS_DIR, limits: Limits | None = None,
                 cache_dir: Path | None = None, poll_seconds: float = 0.2, runner: JobRunner | None = None):
        from .features import DEFAULT_CACHE

        self.jobs_dir, self.runs_dir = Path(jobs_dir), Path(runs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.limits = limits or Limits()
        self.cache_dir = DEFAULT_CACHE if cache_dir is None else cache_dir
        self.runner = runner or from_env()
        self._lock = threading.RLock()
        self._events_lock = threading.Lock()  # the events cache's alone: a page never waits on the dispatcher
        self._shared = SharedLock(self.jobs_dir / LOCK_FILE)  # other servers' managers on this folder too
        self.lease = Lease(self.jobs_dir, self._shared)
        self._running: dict[str, Running] = {}  # what this server dispatched, while it runs
        self._pids: dict[str, int | None] = {}  # each running job's worker pid, as last written to job.json
        self._stop_requested: dict[str, float] = {}
        self._trained_since: dict[str, float] = {}  # when a stopping worker's first batch was seen
        self._event_cache: dict[str, tuple[int, list[Event]]] = {}
        self._records: dict[Path, tuple[tuple[int, int, int], Job]] = {}  # job.json -> (its stat, the record)
        self._tried_lease = time.monotonic()
        if self.lease.acquire():  # nobody dispatches this folder: a (re)start, as with one server
            self._mark_interrupted(ACTIVE, "the server restarted while this job was queued or running")
        self._closing = threading.Event()
        self._look_now = threading.Event()  # a job was queued here, or a slot freed: list at the next tick
        self._listed = 0.0  # when the dispatcher last looked for queued jobs (time.monotonic())
        self._poll = poll_seconds
        self._thread = threading.Thread(target=self._loop, name="job-dispatcher", daemon=True)
        self._thread.start()

    # ----- reading -----
    def _job_file(self, job_id: str) -> Path:
        if not (isinstance(job_id, str) and job_id.isalnum() and len(job_id) <= 32):
            raise JobError(f"invalid job id {job_id!r}")
        return self.jobs_dir / job_id / JOB_FILE

    def _record(self, path: Path) -> Job | None:
        """A job.json, read again only when it changed. Every session and the dispatcher list the jobs
        every few seconds; most records stay as they are, and a stat costs a fraction of a read."""
        try:
            stat = os.stat(path)
        except OSError:
            self._records.pop(path, None)
            return None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)  # write_atomic replaces the file: a new inode
        known = self._records.get(path)
        if known is None or known[0] != key:
            job = read_job(path)
            if job is None:
                return None
            known = self._records[path] = (key, job)
        return copy.copy(known[1])  # callers set .position on theirs

    def get(self, job_id: str) -> Job:
        job = self._record(self._job_file(job_id))
        if job is None:
            raise JobError(f"no job {job_id!r}")
        if job.state == JobState.QUEUED:
            job.position = self._queue_position(job_id)
        return job

    def jobs(self, owner: str | None = None) -> list[Job]:
        found = [job for job in map(self._record, self.jobs_dir.glob(f"*/{JOB_FILE}")) if job]
        found.sort(key=lambda j: j.submitted)
        queued = [j for j in found if j.state == JobState.QUEUED]  # positions count everyone's jobs
        for position, job in enumerate(queued, 1):
            job.position = position
        return [j for j in found if owner is None or j.owner == owner]

    def _queue_position(self, job_id: str) -> int:
        queued = [j.id for j in self.jobs() if j.state == JobState.QUEUED]
        return queued.index(job_id) + 1 if job_id in queued else 0

    def events(self, job_id: str) -> list[Event]:
        """All progress events so far; read incrementally, so polling every second stays cheap."""
        path = self._job_file(job_id).parent / EVENTS_FILE
        with self._events_lock:
            offset, cached = self._event_cache.get(job_id, (0, []))
            try:
                with open(path, encoding="utf-8") as f:
                    f.seek(offset)
                    chunk = f.read()
            except FileNotFoundError:
                return []
            complete, _, _ = chunk.rpartition("\n")  # a half-written last line waits for the next read
            if complete:
                cached = cached + [parse_event(line) for line in complete.split("\n") if line]
                offset += len(complete.encode("utf-8")) + 1
            self._event_cache[job_id] = (offset, cached)
            return list(cached)

    # ----- acting -----
    def submit(self, config: Config, data: str, owner: str, name: str | None = None, *, nickname: str | None = None,
               challenge: str | None = None, exercise: Exercise | None = None) -> str:
        """Queue a training. `exercise`: the exercise the student works under, whose fixed fields the config
        must keep (checked here, whatever made the config); `nickname` and `challenge` go on the class board.
        Raises JobError with a message for the student; nothing is queued then."""
        self.limits.check(config)
        try:
            if exercise is not None:
                exercise.check(config)
            nickname = check_nickname(nickname)
            challenge = check_id(challenge)
        except (ExerciseError, NicknameError, ChallengeError) as error:
            raise JobError(str(error)) from error
        name = runs.check_name(name) if name else runs.new_name(config.cell)
        with self._lock, self._shared:
            mine = [j for j in self.jobs(owner) if j.state in ACTIVE]
            if len(mine) >= self.limits.max_queued_per_session:
                raise JobError(f"you already have {len(mine)} job(s) queued or running; the limit per session is "
                               f"{self.limits.max_queued_per_session} (SENTIMENT_MAX_JOBS_PER_SESSION)")
            if (self.runs_dir / name).exists() or any(j.name == name and j.state in ACTIVE for j in self.jobs()):
                raise JobError(f"a run named {name!r} already exists; choose another name")
            job_id = uuid.uuid4().hex[:12]
            (self.jobs_dir / job_id).mkdir()
            job = Job(id=job_id, owner=owner, name=name, data=data, config=config.to_dict(),
                      state=JobState.QUEUED, submitted=time.time(), server=os.getpid(),
                      run_path=str(self.runs_dir / name), cache_dir=str(self.cache_dir) if self.cache_dir else None,
                      max_train_samples=self.limits.max_train_samples, key=secrets.token_urlsafe(12),
                      nickname=nickname, challenge=challenge, exercise=exercise.to_dict() if exercise else None)
            write_atomic(self._job_file(job_id), job.to_json())
        self._look_now.set()
        return job_id

    def owner_from_link(self, job_id: str, key: str | None) -> str | None:
        """The owner of a job whose link carries its secret key (the owner's own address bar), else None:
        a job's id alone lets anyone watch it, never act on it."""
        try:
            job = self.get(job_id)
        except JobError:
            return None
        if not job.key or not isinstance(key, str) or not hmac.compare_digest(key.encode(), job.key.encode()):
            return None
        return job.owner

    def stop(self, job_id: str, by: Actor) -> Job:
        """Stop a running job (it saves what it learned) or cancel a queued one: for the student who started
        it, or the teacher; from any server on the folder: the `stop` flag file tells the dispatching one, which
        tells the worker (see `_watch`). Raises JobError (no such job) or people.NotAllowed; nothing changes
        then."""
        with self._lock, self._shared:
            job = self.get(job_id)
            if not by.may_act_on(owner=job.owner):
                raise NotAllowed("this job is another student's: only they, or the teacher, can stop it")
            if job.state == JobState.QUEUED:
                return self._update(job_id, state=JobState.CANCELLED, ended=time.time())
            if job.state == JobState.RUNNING:
                (self._job_file(job_id).parent / STOP_FILE).touch()
                return self._update(job_id, state=JobState.STOPPING)
            return job

    def clear_class(self, by: Actor) -> dict[str, int]:
        """The teacher's reset between classes: stop every active job, delete every user run (pinned ones
        stay) and forget every ended job. Raises people.NotAllowed without the teacher token."""
        by.require_teacher("clearing the class")
        active = [job for job in self.jobs() if job.state in ACTIVE]
        for job in active:  # a running one still saves what it learned: its run comes after this
            self.stop(job.id, by)
        deleted = 0
        for path in runs.run_dirs(self.runs_dir):
            if not (path / ".pinned").exists():
                runs.delete_run(path.name, self.runs_dir, by)
                deleted += 1
        forgotten = 0
        with self._lock, self._shared:
            for job in self.jobs():
                if job.state in FINAL:
                    shutil.rmtree(self.jobs_dir / job.id, ignore_errors=True)
                    self._records.pop(self._job_file(job.id), None)
                    self._event_cache.pop(job.id, None)
                    forgotten += 1
        return {"stopped": len(active), "deleted": deleted, "forgotten": forgotten}

    cancel = stop

    def _claim(self, job: Job) -> None:
        """Record in the job's saved run who made it and for which challenge (runs.STUDENT_FILE)."""
        if job.run and Path(job.run).is_dir():
            runs.write_student(Path(job.run), owner_tag(job.owner), job.nickname, job.challenge)

    def _update(self, job_id: str, **changes) -> Job:
        with self._lock, self._shared:
            job = read_job(self._job_file(job_id))
            if job is None:
                raise JobError(f"no job {job_id!r}")
            job = job.replace(**changes)
            write_atomic(self._job_file(job_id), job.to_json())
            return job

    def _mark_interrupted(self, states: tuple[JobState, ...], why: str, spare=()) -> None:
        """Jobs the previous dispatcher left in `states` will not finish: say so, never call them done.
        `spare`: ids of jobs this server runs itself."""
        with self._lock, self._shared:
            for path in self.jobs_dir.glob(f"*/{JOB_FILE}"):
                job = read_job(path)
                if job and job.state in states and job.id not in spare:
                    result = read_result(path.parent / RESULT_FILE)
                    if result:  # it finished while nobody was watching
                        job = job.replace(state=result.state, run=result.run, error=result.error)
                        self._claim(job)
                    else:
                        job = job.replace(state=JobState.INTERRUPTED, ended=time.time(), error=why)
                    write_atomic(path, job.to_json())

    # ----- the dispatcher thread -----
    def _loop(self) -> None:
        while not self._closing.wait(self._poll):
            try:
                self._tick()
            except Exception:  # keep dispatching whatever one job did
                traceback.print_exc()

    def _kill_after(self, job_id: str, asked: float) -> float:
        """When a worker asked to stop has had its grace: from its first batch (when it can first see the
        flag) or the request, whichever came later; before any batch, the startup grace; once it has
        stopped training (its end event), the time to save."""
        events = latest_attempt(self.events(job_id))
        if any(isinstance(event, EndEvent) for event in events):
            return asked + SAVE_GRACE_SECONDS
        if job_id not in self._trained_since:
            if not any(isinstance(event, BatchEvent) for event in events):
                return asked + STARTUP_GRACE_SECONDS
            self._trained_since[job_id] = time.monotonic()
        return max(asked, self._trained_since[job_id]) + STOP_GRACE_SECONDS

    def _dispatching(self) -> bool:
        """Whether this server starts the folder's jobs now. A standby tries for the lease once a second; on
        taking it over, the jobs the previous dispatcher was running are marked interrupted (their workers
        went with it), and the queue carries on. A dispatcher whose heartbeat came late takes its lease back
        if nobody else did; if another server did, it lets its jobs go (that server marked them)."""
        if self.lease.held:
            return True
        if time.monotonic() - self._tried_lease < 1.0:
            return False
        self._tried_lease = time.monotonic()
        if self.lease.acquire():
            self._mark_interrupted((JobState.RUNNING, JobState.STOPPING),
                                   "the app server running this job went away while it ran", spare=self._running)
            return True
        for handle in self._running.values():
            handle.kill()
        self._running.clear()
        return False

    def _tick(self) -> None:
        with self._lock:
            if not self._dispatching():
                return
            for job_id, handle in list(self._running.items()):
                ended = handle.poll()
                if ended is None:
                    self._watch(job_id, handle)
                    continue
                del self._running[job_id]
                self._finish(job_id, ended)
                self._look_now.set()
            # Queued jobs are looked for when a slot is free: at once after a submit here or a job's end,
            # else each LIST_SECONDS (another server may have queued one), not at every tick.
            if not (self._look_now.is_set() or time.monotonic() - self._listed >= LIST_SECONDS):
                return
            self._look_now.clear()
            self._listed = time.monotonic()
            free = self.limits.max_concurrent - len(self._running)
            queued = [j for j in self.jobs() if j.state == JobState.QUEUED] if free > 0 else []
            if not queued:
                return
            try:
                slots = self.runner.slots()  # a Ray cluster's trainers, maybe fewer since a node went
            except RunnerError as error:
                return self._fail(queued, str(error))
            if slots is not None:
                free = min(free, slots - len(self._running))
            for job in queued[:max(free, 0)]:
                self._start(job)

    def _watch(self, job_id: str, handle: Running) -> None:
        """A running job: pass a stop request on (made on any server), kill a worker that ignores it past
        its grace, and keep the worker's pid in the record."""
        if job_id not in self._stop_requested and (self.jobs_dir / job_id / STOP_FILE).exists():
            self._stop_requested[job_id] = time.monotonic()
            handle.stop()
        asked = self._stop_requested.get(job_id)
        if asked and time.monotonic() > self._kill_after(job_id, asked):
            handle.kill()
        if handle.pid != self._pids.get(job_id):
            self._pids[job_id] = handle.pid
            self._update(job_id, pid=handle.pid)

    def _start(self, job: Job) -> None:
        with self._shared:
            current = read_job(self._job_file(job.id))
            if current is None or current.state != JobState.QUEUED:  # cancelled on another server meanwhile
                return
            try:
                handle = self.runner.start(current, self.jobs_dir / job.id)
            except RunnerError as error:
                self._update(job.id, state=JobState.FAILED, error=str(error), ended=time.time())
                return
            self._running[job.id] = handle
            self._pids[job.id] = handle.pid
            self._update(job.id, state=JobState.RUNNING, started=time.time(), pid=handle.pid)

    def _fail(self, queued: list[Job], why: str) -> None:
        """The runner cannot start anything (e.g. no Ray cluster): queued jobs fail saying why, not wait."""
        for job in queued:
            with self._shared:
                if (current := read_job(self._job_file(job.id))) and current.state == JobState.QUEUED:
                    self._update(job.id, state=JobState.FAILED, error=why, ended=time.time())

    def _finish(self, job_id: str, ended: Ended) -> None:
        asked = self._stop_requested.pop(job_id, None)
        self._trained_since.pop(job_id, None)
        self._pids.pop(job_id, None)
        job = read_job(self._job_file(job_id))
        result = ended.result
        if ended.lost and job is not None and not asked and job.attempt < MAX_ATTEMPTS:
            # Back in the queue at its place (the queue is ordered by submission), from scratch.
            attempt = job.attempt + 1
            with open(self.jobs_dir / job_id / EVENTS_FILE, "a", encoding="utf-8") as events:
                events.write(AttemptEvent(attempt, f"the worker was lost ({result.error}); "
                                                   "queued again at its place").to_json() + "\n")
            self._update(job_id, state=JobState.QUEUED, attempt=attempt, started=None, pid=None)
            return
        error = result.error
        if ended.lost and error:
            error = f"the worker was lost on attempt {job.attempt if job else MAX_ATTEMPTS}: {error}"
        self._claim(self._update(job_id, state=result.state, run=result.run, error=error, metrics=result.metrics,
                                 ended=time.time()))
        runs.prune(self.runs_dir)

    def kill_worker(self, job_id: str) -> None:
        """For tests and admins: the hard way a worker can die (on Ray, a forced cancel)."""
        with self._lock:
            handle = self._running.get(job_id)
        if handle is not None:
            handle.kill()

    def wait(self, job_id: str, timeout: float = 120.0) -> Job:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if job.state in FINAL:
                return job
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} still {self.get(job_id).state} after {timeout} s")

    def shutdown(self, kill: bool = True) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        with self._lock:
            for handle in self._running.values():
                if kill:
                    handle.kill()
            self._running.clear()
            self.runner.close()
        self.lease.release()


if __name__ == "__main__":
    _worker(sys.argv[1])
