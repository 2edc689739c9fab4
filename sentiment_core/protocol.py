"""The job protocol: the one contract that crosses a process boundary. Standard library only.

A job folder is written by one process and read by others: the server's JobManager
writes `job.json`, a worker process appends `events.jsonl` and writes `result.json`,
and the pages of every browser session, the CLI's progress bar and the load test
read them, possibly from an older or newer version of this code. So the folder's
format lives here, once, as types: writers go through `to_json`, readers through
`from_dict`/`parse_event`, and the JSON field names stay those of the files already
on disk. A reader never crashes on what a newer writer adds: unknown fields are
ignored (or, in `job.json`, kept), and an unknown event kind becomes `UnknownEvent`.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import MISSING, dataclass, field, fields, replace
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import ClassVar

# The files of one job folder.
JOB_FILE = "job.json"  # the record; written by the manager only
EVENTS_FILE = "events.jsonl"  # progress, one JSON object a line, appended by the worker
RESULT_FILE = "result.json"  # the worker's last word
STOP_FILE = "stop"  # a flag: the worker stops after the current batch


class JobState(StrEnum):
    """Where a job is. A str, so `state == "done"` and JSON keep working."""

    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def icon(self) -> str:
        return ICONS[self]


ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.STOPPING)
FINAL = tuple(state for state in JobState if state not in ACTIVE)
ICONS = {JobState.QUEUED: ":material/hourglass_top:", JobState.RUNNING: ":material/directions_run:",
         JobState.STOPPING: ":material/pan_tool:", JobState.DONE: ":material/check_circle:",
         JobState.STOPPED: ":material/stop_circle:", JobState.FAILED: ":material/error:",
         JobState.CANCELLED: ":material/cancel:", JobState.INTERRUPTED: ":material/warning:"}


@cache
def _fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A dataclass's required and optional field names (cached: this runs for every event line read)."""
    names = [(f.name, f.default is MISSING and f.default_factory is MISSING) for f in fields(cls)]
    return tuple(n for n, required in names if required), tuple(n for n, required in names if not required)


def _from_dict(cls, document: dict, **overrides):
    """Unknown keys are ignored (a newer writer's); a missing optional one takes its default."""
    required, optional = _fields(cls)
    values = {name: document[name] for name in required}  # KeyError: not a record of this kind
    values.update({name: document[name] for name in optional if name in document})
    return cls(**{**values, **overrides})


# ---------------------------------------------------------------- job.json
@dataclass
class Job:
    """One job's record. `position` (in the queue) is worked out by whoever lists the jobs, never stored."""

    # Left out while they hold their default: pid and metrics are written once known, attempt from the
    # second on, the class fields only when set, so older files write back as they were.
    omit_default: ClassVar[tuple[str, ...]] = ("pid", "metrics", "key", "nickname", "challenge", "exercise", "attempt")
    id: str
    owner: str
    name: str
    data: str
    config: dict
    state: JobState
    submitted: float
    started: float | None = None
    ended: float | None = None
    run: str | None = None  # the saved run's folder, once there is one
    error: str | None = None
    server: int | None = None  # the manager's process id
    run_path: str | None = None  # where the worker saves the run
    cache_dir: str | None = None
    max_train_samples: int | None = None
    pid: int | None = None  # the worker's process id, once started
    metrics: dict | None = None  # the run's test metrics, once done
    key: str | None = None  # the secret of the owner's job link (?job=...&key=...): it gives the session back
    nickname: str | None = None  # the student's display name (people.check_nickname)
    challenge: str | None = None  # the id of the challenge it was submitted for (challenges.CHALLENGES)
    exercise: dict | None = None  # the exercise it was submitted under (exercise.Exercise.to_dict)
    attempt: int = 1  # 2 once its worker or node was lost and it was queued again (see AttemptEvent)
    extra: dict = field(default_factory=dict)  # fields a newer server wrote: kept, so a rewrite loses nothing
    position: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.state = JobState(self.state)  # ValueError for a state this code does not know

    @classmethod
    def from_dict(cls, document: dict) -> Job:
        required, optional = _fields(cls)
        return _from_dict(cls, document, position=None,
                          extra={k: v for k, v in document.items() if k not in required and k not in optional})

    def to_dict(self) -> dict:
        document = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "position")}
        defaults = {f.name: f.default for f in fields(self)}
        for name in self.omit_default:
            if document[name] == defaults[name]:
                del document[name]
        return {**document, **self.extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def replace(self, **changes) -> Job:
        return replace(self, **changes)


# ---------------------------------------------------------------- result.json
@dataclass
class JobResult:
    """What the worker says at the end; the manager copies it into the job record."""

    state: JobState
    run: str | None = None
    metrics: dict | None = None  # accuracy, loss, roc_auc on the test split
    error: str | None = None
    traceback: str | None = None

    def __post_init__(self) -> None:
        self.state = JobState(self.state)

    @classmethod
    def from_dict(cls, document: dict) -> JobResult:
        return _from_dict(cls, document)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


# ---------------------------------------------------------------- events.jsonl
class _Event:
    """JSON for every event kind: {"type": kind, **fields}; `omit_none` fields are left out when unset."""

    type: ClassVar[str]
    omit_none: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict:
        document = {"type": self.type, **self.__dict__}
        for name in self.omit_none:
            if document[name] is None:
                del document[name]
        return document

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, document: dict):
        return _from_dict(cls, document)


@dataclass
class StatusEvent(_Event):
    """A line of what the worker is doing before training starts (loading data, encoding)."""

    type: ClassVar[str] = "status"
    message: str


@dataclass
class StartEvent(_Event):
    type: ClassVar[str] = "start"
    epochs: int
    steps_per_epoch: int
    samples: int
    parameters: int | None = None


@dataclass
class BatchEvent(_Event):
    type: ClassVar[str] = "batch"
    epoch: int
    step: int  # within the epoch, from 1
    global_step: int  # since the start, from 1
    loss: float
    accuracy: float
    seconds: float  # since training started


@dataclass
class EpochEvent(_Event):
    """One epoch's train and validation metrics; also a row of a run's saved history."""

    type: ClassVar[str] = "epoch"
    omit_none: ClassVar[tuple[str, ...]] = ("val_loss", "val_accuracy", "grad_norms")
    epoch: int
    loss: float
    accuracy: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    seconds: float = 0.0  # this epoch's
    grad_norms: list[float] | None = None  # ‖∂L/∂h_t‖ for t = 1..T, when the gradient probe is on


@dataclass
class EndEvent(_Event):
    """Training is over; evaluating and saving follow."""

    type: ClassVar[str] = "end"
    stopped_early: bool
    stopped_by_user: bool
    best_epoch: int | None
    seconds: float


@dataclass
class AttemptEvent(_Event):
    """The job starts again from scratch: its worker process or its node was lost (written by the manager).
    What came before belongs to the lost attempt; see `latest_attempt`."""

    type: ClassVar[str] = "attempt"
    attempt: int  # from 2
    reason: str


@dataclass
class UnknownEvent:
    """An event this code cannot read (a newer worker's kind, or a broken line): kept as it was, drawn nowhere."""

    type: str
    data: dict

    def to_dict(self) -> dict:
        return dict(self.data)

    def to_json(self) -> str:
        return json.dumps(self.data)


Event = StatusEvent | StartEvent | BatchEvent | EpochEvent | EndEvent | AttemptEvent | UnknownEvent
KINDS: dict[str, type[_Event]] = {kind.type: kind for kind in (StatusEvent, StartEvent, BatchEvent, EpochEvent,
                                                                EndEvent, AttemptEvent)}


def event_from_dict(document: dict) -> Event:
    kind_name = document.get("type")
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is not None:
        try:
            return kind.from_dict(document)
        except (KeyError, TypeError):  # a known kind missing a field: a page shows the rest
            pass
    return UnknownEvent(str(document.get("type", "")), document)


def latest_attempt(events: list[Event]) -> list[Event]:
    """The events of the job's current attempt: from its last AttemptEvent on (all of them if none).
    events.jsonl keeps a lost attempt's events; curves and progress must not splice them into the next."""
    starts = [i for i, event in enumerate(events) if isinstance(event, AttemptEvent)]
    return events[starts[-1]:] if starts else events


def parse_event(line: str) -> Event:
    """One line of events.jsonl. Never raises: what cannot be read becomes an UnknownEvent."""
    try:
        document = json.loads(line)
    except ValueError:
        return UnknownEvent("", {"line": line})
    return event_from_dict(document) if isinstance(document, dict) else UnknownEvent("", {"line": line})


# ---------------------------------------------------------------- files
def write_atomic(path: Path, text: str) -> None:
    """Readers in other processes see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read(path: Path, record):
    """`record.from_dict` of a JSON file, or None if it is missing or unreadable (being written by a crashed
    server, or holding a state unknown here)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        return record.from_dict(document) if isinstance(document, dict) and document else None
    except (OSError, KeyError, TypeError, ValueError):
        return None


def read_job(path: Path) -> Job | None:
    return _read(path, Job)


def read_result(path: Path) -> JobResult | None:
    return _read(path, JobResult)
