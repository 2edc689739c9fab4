"""The class engine (#16): names, the teacher token, who may stop or delete what, exercise locks, challenges,
and the board's summaries. Jobs here are never trained (SENTIMENT_MAX_TRAININGS is 0 for their manager);
challenge runs are real run files: the shipped `notebook` written again with other metrics, and one tiny
run trained on the sample for the long/short-review accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sentiment_core import board, challenges, runs
from sentiment_core.config import PRESETS, Config
from sentiment_core.exercise import Exercise, ExerciseError
from sentiment_core.jobs import JobError, JobManager, Limits
from sentiment_core.people import (
    MAX_NICKNAME,
    Actor,
    NicknameError,
    NotAllowed,
    check_nickname,
    is_teacher_token,
    owner_tag,
    teacher_token_set,
)

TOKEN = "correct horse battery staple"
NOTEBOOK = runs.SHIPPED_DIR / "notebook"
needs_notebook = pytest.mark.skipif(not (NOTEBOOK / "manifest.json").is_file(), reason="no shipped notebook run")


# ---------------------------------------------------------------- names
@pytest.mark.parametrize("name, kept", [("Ana", "Ana"), ("  Zoë B.  ", "Zoë B."), ("李小龙", "李小龙"),
                                        ("team_7-b", "team_7-b"), ("", None), ("   ", None), (None, None),
                                        ("x" * MAX_NICKNAME, "x" * MAX_NICKNAME)])
def test_good_names_are_kept(name, kept):
    assert check_nickname(name) == kept


@pytest.mark.parametrize("name, message", [
    ("<b>Ana</b>", "not '<'"), ("<script>x</script>", "not '<'"), ("[me](http://x)", "not '['"),
    ("Ana **bold**", "not '*'"), ("x" * 10_000, "at most 24 characters; this one has 10,000"),
    ("x" * (MAX_NICKNAME + 1), "at most 24"), ("Ana\x00", "control"), ("Ana\nBob", "control"),
    ("Ana\u202eboB", "control or invisible"), ("Ana\u200b", "control or invisible"), ("anonymous", "reserved"),
    ("Teacher", "reserved"), ("=cmd()", "not '='"), ("-x", "letter or a digit"), (".hidden", "letter or a digit"),
    ("a  b", "two spaces"),
    (42, "must be text")])
def test_hostile_names_are_refused_with_a_reason(name, message):
    with pytest.raises(NicknameError, match=message.replace("*", r"\*").replace("(", r"\(").replace("[", r"\[")):
        check_nickname(name)


# ---------------------------------------------------------------- the teacher token
def test_no_token_configured_means_no_teacher(monkeypatch):
    monkeypatch.delenv("SENTIMENT_TEACHER_TOKEN", raising=False)
    assert not teacher_token_set() and not is_teacher_token("") and not is_teacher_token("anything")
    with pytest.raises(NotAllowed, match="no teacher token"):
        Actor("me", "anything").require_teacher("clearing the class")
    monkeypatch.setenv("SENTIMENT_TEACHER_TOKEN", "   ")  # blank is no token
    assert not teacher_token_set() and not is_teacher_token("   ")


def test_the_token_is_checked_in_constant_time_and_never_printed(monkeypatch):
    monkeypatch.setenv("SENTIMENT_TEACHER_TOKEN", TOKEN)
    calls = []
    import hmac

    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert is_teacher_token(TOKEN) and calls
    for wrong in ("", TOKEN[:-1], TOKEN + " ", TOKEN.upper(), None, 123):
        assert not is_teacher_token(wrong)
    teacher = Actor("t", TOKEN)
    assert teacher.teacher and TOKEN not in repr(teacher) and TOKEN not in str(teacher)
    with pytest.raises(NotAllowed, match="wrong or missing"):
        Actor("s", "guess").require_teacher("clearing the class")


# ---------------------------------------------------------------- exercises
def test_an_exercise_link_fixes_its_fields():
    exercise = Exercise.from_query("notebook", "cell,units", "members")
    assert exercise == Exercise("notebook", ("cell", "units"), ("members",))
    assert exercise.values() == {"cell": "simple_rnn", "units": 32, "members": 1}
    exercise.check(PRESETS["notebook"].replace(dropout=0.2, epochs=3))  # the rest is free
    for change in (dict(cell="lstm"), dict(units=64), dict(members=2)):
        with pytest.raises(ExerciseError, match="this exercise fixes"):
            exercise.check(PRESETS["notebook"].replace(**change))
    assert Exercise.from_dict(exercise.to_dict()) == exercise
    assert Exercise.from_query(None, "cell", None).values() == {"cell": Config().cell}  # no preset: the defaults


@pytest.mark.parametrize("query, message", [
    (("notebook", "cell,bogus", None), "lock= names no hyperparameter: 'bogus'"),
    ((None, None, "../etc/passwd"), "hide= names no hyperparameter"),
    (("nope", None, None), "preset='nope' is not a preset"),
    ((None, "cell," * 1000, None), "too long"),
    (("x" * 5000, None, None), "too long")])
def test_a_bad_exercise_link_is_refused(query, message):
    with pytest.raises(ExerciseError, match=message):
        Exercise.from_query(*query)


# ---------------------------------------------------------------- jobs: who may submit and stop what
@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "jobs", tmp_path / "runs", Limits(max_concurrent=0, max_queued_per_session=5),
                   cache_dir=tmp_path / "cache", poll_seconds=0.05)
    yield m
    m.shutdown()


TINY = PRESETS["tiny"]


def test_a_forged_config_straight_to_submit_breaks_the_lock_and_is_refused(manager):
    exercise = Exercise.from_query("notebook", "cell,units", "members")
    with pytest.raises(JobError, match="Cell \\(cell\\) must stay 'simple_rnn', got 'lstm'"):
        manager.submit(PRESETS["notebook"].replace(cell="lstm"), "sample", "ana", exercise=exercise)
    with pytest.raises(JobError, match="members"):
        manager.submit(PRESETS["notebook"].replace(members=3), "sample", "ana", exercise=exercise)
    assert manager.jobs() == []  # nothing queued, nothing written
    job_id = manager.submit(PRESETS["notebook"].replace(epochs=2), "sample", "ana", exercise=exercise)
    assert manager.get(job_id).exercise == exercise.to_dict()


@pytest.mark.parametrize("field, value, message", [("nickname", "<img src=x>", "not '<'"),
                                                   ("nickname", "x" * 10_000, "at most 24"),
                                                   ("nickname", "a\x07b", "control"),
                                                   ("challenge", "../../etc", "no challenge")])
def test_hostile_submissions_are_refused_and_nothing_is_queued(manager, field, value, message):
    with pytest.raises(JobError, match=message):
        manager.submit(TINY, "sample", "ana", **{field: value})
    assert manager.jobs() == [] and not [p for p in manager.jobs_dir.iterdir() if p.is_dir()]  # no job folder


def test_only_its_student_or_the_teacher_stops_a_job(manager, monkeypatch):
    monkeypatch.setenv("SENTIMENT_TEACHER_TOKEN", TOKEN)
    ana = manager.submit(TINY, "sample", "ana-session", nickname="Ana", challenge="small-and-accurate")
    bob = manager.submit(TINY, "sample", "bob-session")
    for intruder in (Actor("bob-session"), Actor("bob-session", "wrong token"), Actor("")):
        with pytest.raises(NotAllowed, match="another student's"):
            manager.stop(ana, intruder)
    assert manager.get(ana).state == "queued"
    assert manager.stop(ana, Actor("ana-session")).state == "cancelled"
    assert manager.stop(bob, Actor("teacher", TOKEN)).state == "cancelled"
    job = manager.get(ana)
    assert job.nickname == "Ana" and job.challenge == "small-and-accurate"


@pytest.mark.parametrize("forged", ["../../etc", "a/b", "", "x" * 100, "ab cd", None, "..", "a1b2c3d4e5f6g"])
def test_forged_job_ids_are_refused(manager, forged):
    manager.submit(TINY, "sample", "ana")
    with pytest.raises(JobError):
        manager.stop(forged, Actor("ana"))
    assert manager.owner_from_link(forged, "anything") is None
    assert [j.state for j in manager.jobs()] == ["queued"]


def test_a_job_link_gives_the_session_back_only_with_its_key(manager):
    job_id = manager.submit(TINY, "sample", "ana-session")
    key = manager.get(job_id).key
    assert key and len(key) >= 16
    assert manager.owner_from_link(job_id, key) == "ana-session"
    for wrong in (None, "", key[:-1], key + "x", job_id):
        assert manager.owner_from_link(job_id, wrong) is None


def test_clearing_the_class_needs_the_token(manager, monkeypatch, tmp_path):
    for name in ("r1", "r2", "kept"):
        (manager.runs_dir / name).mkdir(parents=True)
    (manager.runs_dir / "kept" / ".pinned").touch()
    job_id = manager.submit(TINY, "sample", "ana")
    monkeypatch.delenv("SENTIMENT_TEACHER_TOKEN", raising=False)
    with pytest.raises(NotAllowed, match="no teacher token"):
        manager.clear_class(Actor("ana"))
    monkeypatch.setenv("SENTIMENT_TEACHER_TOKEN", TOKEN)
    with pytest.raises(NotAllowed, match="wrong or missing"):
        manager.clear_class(Actor("ana", "guess"))
    assert sorted(p.name for p in manager.runs_dir.iterdir()) == ["kept", "r1", "r2"]
    assert manager.get(job_id).state == "queued"
    done = manager.clear_class(Actor("teacher", TOKEN))
    assert done == {"stopped": 1, "deleted": 2, "forgotten": 1}
    assert [p.name for p in manager.runs_dir.iterdir()] == ["kept"] and manager.jobs() == []


# ---------------------------------------------------------------- runs on the board and their challenges
def clone(target: Path, owner: str | None = None, challenge: str | None = None, config: dict | None = None,
          metrics: dict | None = None, meta: dict | None = None, history=None, nickname: str | None = None) -> Path:
    """The shipped notebook run written again as a real run (checksummed), with changes."""
    run = runs.load_run(NOTEBOOK)
    runs.write_run(target, run.config.replace(**(config or {})), run.vocab, run.weights,
                   history if history is not None else run.history, {**run.metrics, **(metrics or {})},
                   {**run.meta, **(meta or {})}, run.insights)
    if owner:
        runs.write_student(target, owner_tag(owner), nickname, challenge)
    runs.load_run(target)  # intact
    return target


def verdicts(runs_dir: Path) -> dict[str, challenges.Verdict | None]:
    found = board.class_runs(runs_dir, runs_dir.parent / "none", challenges.READS_GRADIENTS).runs
    return {r.name: challenges.verdict(r, found) for r in found}


def slices(long: float, short: float) -> dict:
    return {"slices": {"long": {"min_words": 200, "n": 3000, "accuracy": long},
                       "short": {"max_words": 99, "n": 6000, "accuracy": short}}}


@needs_notebook
def test_challenges_pass_and_fail_on_run_files(tmp_path):
    d = tmp_path / "runs"
    small = "small-and-accurate"
    clone(d / "shipped-as-is", "ana", small)  # 85.62% but 322,113 parameters
    clone(d / "small-enough", "ana", small, meta={"parameters": 48_000})
    clone(d / "small-on-sample", "ana", small, meta={"parameters": 48_000}, metrics={"n": 1000})
    history = json.loads((NOTEBOOK / "history.json").read_text())
    clone(d / "no-vanishing", "bob", "vanishing-gradients", history=history)  # at most 5x
    vanishing = {**history, "grad_norms": [{"epoch": 0, "norms": [2e-6] + [1e-3] * 98 + [4e-3]}]}
    clone(d / "vanishing", "bob", "vanishing-gradients", history=vanishing)
    clone(d / "no-probe", "bob", "vanishing-gradients", history={**history, "grad_norms": []})
    long = "forgets-long-reviews"
    clone(d / "rnn", "cy", long, config=dict(cell="simple_rnn", maxlen=400), metrics=slices(0.62, 0.86))
    clone(d / "lstm", "cy", long, config=dict(cell="lstm", maxlen=400), metrics=slices(0.80, 0.88))
    clone(d / "lone-rnn", "dee", long, config=dict(cell="simple_rnn"), metrics=slices(0.62, 0.86))
    clone(d / "close-rnn", "eve", long, config=dict(cell="simple_rnn"), metrics=slices(0.75, 0.86))
    clone(d / "close-lstm", "eve", long, config=dict(cell="lstm"), metrics=slices(0.80, 0.88))
    clone(d / "old-lstm", "fay", long, config=dict(cell="lstm"))  # no slices stored
    clone(d / "for-nothing", "fay")
    found = verdicts(d)
    words = {name: v.word if v else None for name, v in found.items()}
    assert words == {"shipped-as-is": "failed", "small-enough": "passed", "small-on-sample": "failed",
                     "no-vanishing": "failed", "vanishing": "passed", "no-probe": "not checkable",
                     "rnn": "passed", "lstm": "passed", "lone-rnn": "failed", "close-rnn": "failed",
                     "close-lstm": "failed", "old-lstm": "not checkable", "for-nothing": None}
    assert "322,113 parameters" in found["shipped-as-is"].reason
    assert "2,000x" in found["vanishing"].reason and "before training" in found["vanishing"].reason
    assert "+18.0%" in found["rnn"].reason and "no LSTM run of yours" in found["lone-rnn"].reason


@needs_notebook
def test_the_board_reads_metadata_only_and_again_only_when_a_run_changed(tmp_path, monkeypatch):
    d = tmp_path / "runs"
    clone(d / "a", "ana", nickname="Ana")
    clone(d / "b")
    (d / "broken").mkdir()
    (d / "broken" / "meta.json").write_text("{not json")
    opened = []
    real_load, real_read = np.load, Path.read_text
    monkeypatch.setattr(np, "load", lambda *a, **k: opened.append(str(a[0])) or real_load(*a, **k))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: opened.append(self.name) or real_read(self, *a, **k))
    first = board.class_runs(d, NOTEBOOK.parent)
    by_name = {r.name: r for r in first.runs}
    assert {r.name for r in first.runs[:2]} == {"best", "notebook"} and by_name["notebook"].shipped
    assert by_name["a"].nickname == "Ana" and by_name["a"].owner == owner_tag("ana") and by_name["b"].owner is None
    assert by_name["a"].parameters == 322_113 and by_name["a"].accuracy == pytest.approx(0.8562, abs=1e-4)
    assert "cannot be read" in by_name["broken"].error
    assert not any(name.endswith((".npz", "vocab.json", "history.json")) for name in opened), opened
    opened.clear()
    again = board.class_runs(d, NOTEBOOK.parent)
    assert again.runs == first.runs and again.key == first.key and opened == []
    runs.write_student(d / "b", owner_tag("bob"), "Bob")
    third = board.class_runs(d, NOTEBOOK.parent)
    assert third.key != first.key and {r.name: r.nickname for r in third.runs}["b"] == "Bob"
    assert sorted(set(opened)) == [".student.json", "config.json", "meta.json", "metrics.json"]


def test_a_trained_run_stores_accuracy_on_long_and_short_reviews(trained, sample_halves):
    """On a real run: the stored slices are those of the run's own predictions, recomputed here."""
    from sentiment_core.inference import Engine

    run = trained(cell="gru")
    stored = run.metrics["slices"]
    engine = Engine.from_run(run)
    _, test = sample_halves
    ids = engine.encode(list(test.texts))
    words = (ids != 0).sum(axis=1)
    p = engine.predict_ids(ids)
    for name, inside in (("long", words >= 200), ("short", words < 100)):
        keep = inside & ~np.isnan(p)
        assert stored[name]["n"] == int(keep.sum())
        if keep.any():
            expected = float(((p[keep] >= 0.5) == (np.asarray(test.labels)[keep] == 1)).mean())
            assert stored[name]["accuracy"] == pytest.approx(expected)
    assert stored["long"]["n"] == 0 and stored["long"]["accuracy"] is None  # it reads at most 40 words
    assert stored["short"]["n"] == run.metrics["n"]
