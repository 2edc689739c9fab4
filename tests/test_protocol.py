"""The job protocol: every record and event survives JSON, old files still read, newer ones do not crash a reader."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sentiment_core import protocol
from sentiment_core.jobs import JobManager, Limits
from sentiment_core.protocol import (
    ACTIVE,
    FINAL,
    BatchEvent,
    EndEvent,
    EpochEvent,
    Job,
    JobResult,
    JobState,
    StartEvent,
    StatusEvent,
    UnknownEvent,
    parse_event,
)

EVENTS = [StatusEvent("loading and encoding sample"),
          StartEvent(epochs=2, steps_per_epoch=50, samples=1600, parameters=4913),
          BatchEvent(epoch=1, step=3, global_step=3, loss=0.69, accuracy=0.5, seconds=1.25),
          EpochEvent(epoch=1, loss=0.68, accuracy=0.55, val_loss=0.67, val_accuracy=0.6, seconds=2.5,
                     grad_norms=[0.1, 0.2]),
          EpochEvent(epoch=2, loss=0.6, accuracy=0.7, seconds=2.0),  # no validation, no probe
          EndEvent(stopped_early=True, stopped_by_user=False, best_epoch=1, seconds=5.0),
          EndEvent(stopped_early=False, stopped_by_user=True, best_epoch=None, seconds=1.0)]

# Lines as the worker wrote them before this module existed (json.dumps of plain dicts).
OLD_LINES = [
    '{"type": "status", "message": "prepared in 0.3 s (cache hit)"}',
    '{"type": "start", "epochs": 1, "steps_per_epoch": 50, "samples": 1600, "parameters": 4913}',
    '{"type": "batch", "epoch": 1, "step": 7, "global_step": 7, "loss": 0.6931, "accuracy": 0.5, '
    '"seconds": 1.4}',
    '{"type": "epoch", "epoch": 1, "loss": 0.69, "accuracy": 0.52, "val_loss": 0.68, "val_accuracy": 0.55, '
    '"seconds": 2.5, "grad_norms": [0.1, 0.2, 0.3]}',
    '{"type": "end", "stopped_early": false, "stopped_by_user": false, "best_epoch": null, "seconds": 3.0}',
]

# A finished job.json as JobManager wrote it before (fields in the order they were added).
OLD_JOB = {"id": "6b8135db8fcb", "owner": "x", "name": "fmt", "data": "sample", "config": {"cell": "gru"},
           "state": "done", "submitted": 1.5, "started": 2.5, "ended": 9.5, "run": "/runs/fmt", "error": None,
           "server": 42, "run_path": "/runs/fmt", "cache_dir": "/cache", "max_train_samples": 25000, "pid": 43,
           "metrics": {"accuracy": 0.7, "loss": 0.6, "roc_auc": 0.8}}


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_every_event_round_trips_through_json(event):
    assert parse_event(event.to_json()) == event
    assert json.loads(event.to_json())["type"] == event.type


def test_old_event_lines_read_and_write_back_unchanged():
    events = [parse_event(line) for line in OLD_LINES]
    assert [type(e) for e in events] == [StatusEvent, StartEvent, BatchEvent, EpochEvent, EndEvent]
    assert events[2].global_step == 7 and events[3].grad_norms == [0.1, 0.2, 0.3] and events[4].best_epoch is None
    assert [e.to_json() for e in events] == OLD_LINES


def test_unset_optional_fields_are_left_out_as_before():
    assert set(EpochEvent(epoch=1, loss=0.5, accuracy=0.5).to_dict()) == {"type", "epoch", "loss", "accuracy",
                                                                         "seconds"}
    assert "best_epoch" in EndEvent(False, False, None, 1.0).to_dict()  # always written, null when none


@pytest.mark.parametrize("line", ['{"type": "checkpoint", "path": "/x"}',  # a newer worker's kind
                                  '{"type": "batch", "epoch": 1}',  # a known kind missing fields
                                  '{"no type": 1}', '[1, 2]', 'not json', '{"type": ["odd"]}'])
def test_what_a_reader_cannot_read_becomes_an_unknown_event(line):
    event = parse_event(line)
    assert isinstance(event, UnknownEvent)
    if line.startswith("{") and '"checkpoint"' in line:
        assert event.type == "checkpoint" and event.to_json() == line  # kept whole


def test_new_fields_in_a_known_event_are_ignored():
    line = '{"type": "batch", "epoch": 1, "step": 1, "global_step": 1, "loss": 0.7, "accuracy": 0.5, ' \
           '"seconds": 1.0, "learning_rate": 0.001}'
    assert parse_event(line) == BatchEvent(1, 1, 1, 0.7, 0.5, 1.0)


def test_states_active_final_and_icons():
    assert set(ACTIVE) | set(FINAL) == set(JobState) and not set(ACTIVE) & set(FINAL)
    assert set(protocol.ICONS) == set(JobState) and all(s.icon.startswith(":material/") for s in JobState)
    assert "done" in FINAL and JobState("queued") in ACTIVE and f"{JobState.DONE}" == "done"


def test_job_record_round_trips_and_old_files_write_back_unchanged():
    job = Job.from_dict(OLD_JOB)
    assert job.state is JobState.DONE and job.metrics["accuracy"] == 0.7 and job.pid == 43
    assert Job.from_dict(json.loads(job.to_json())) == job
    assert job.to_json() == json.dumps(OLD_JOB, indent=1)
    queued = {k: v for k, v in OLD_JOB.items() if k not in ("pid", "metrics")} | {"state": "queued"}
    assert Job.from_dict(queued).to_dict() == queued  # pid and metrics are written once known


def test_job_record_keeps_fields_it_does_not_know_and_never_stores_the_queue_position():
    job = Job.from_dict({**OLD_JOB, "priority": 3}).replace(position=2)
    assert job.extra == {"priority": 3}
    assert json.loads(job.to_json())["priority"] == 3 and "position" not in job.to_dict()


def test_result_round_trips():
    for result in (JobResult(JobState.DONE, run="/runs/a", metrics={"accuracy": 0.8}),
                   JobResult(JobState.FAILED, error="boom", traceback="Traceback ...")):
        assert JobResult.from_dict(json.loads(result.to_json())) == result
    assert list(JobResult(JobState.DONE, run="/r", metrics={}).to_dict()) == ["state", "run", "metrics"]


def test_a_manager_reads_old_files_and_survives_unknown_events_and_states(tmp_path):
    jobs = tmp_path / "jobs"
    old, odd = jobs / OLD_JOB["id"], jobs / "0123456789ab"
    old.mkdir(parents=True)
    odd.mkdir()
    (old / protocol.JOB_FILE).write_text(json.dumps(OLD_JOB, indent=1))
    (old / protocol.EVENTS_FILE).write_text("\n".join([*OLD_LINES[:3], '{"type": "checkpoint"}', *OLD_LINES[3:]])
                                            + "\n" + OLD_LINES[2][:20])  # a half-written last line waits
    (odd / protocol.JOB_FILE).write_text(json.dumps({**OLD_JOB, "id": odd.name, "state": "paused"}))
    manager = JobManager(jobs, tmp_path / "runs", Limits(max_concurrent=0), cache_dir=tmp_path / "cache")
    try:
        assert [j.id for j in manager.jobs()] == [OLD_JOB["id"]]  # a state this code does not know: skipped
        assert manager.get(OLD_JOB["id"]).run == "/runs/fmt"
        events = manager.events(OLD_JOB["id"])
        assert [e.type for e in events] == ["status", "start", "batch", "checkpoint", "epoch", "end"]
        assert isinstance(events[3], UnknownEvent)
    finally:
        manager.shutdown()


def test_protocol_is_standard_library_only():
    code = ("import sys, sentiment_core.protocol; "
            "bad = [m for m in ('numpy', 'streamlit', 'keras', 'jax') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
