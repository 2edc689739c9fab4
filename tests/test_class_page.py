"""The Class page and the class rules on the Train and Runs pages, through AppTest (#16).

Runs are the shipped `notebook` written again with a student and a challenge (tests/test_class.py's clone);
no job is trained: the job manager here trains nothing at once (SENTIMENT_MAX_TRAININGS=0).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app import frames, state
from sentiment_core.config import PRESETS
from sentiment_core.people import MAX_NICKNAME
from tests.test_app import TIMEOUT, shut_down_managers, texts
from tests.test_class import TOKEN, clone, needs_notebook

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture(autouse=True)
def folders(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SENTIMENT_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("SENTIMENT_MAX_TRAININGS", "0")
    monkeypatch.delenv("SENTIMENT_TEACHER_TOKEN", raising=False)
    yield tmp_path
    shut_down_managers(tmp_path)


def session(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def board(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value


# ---------------------------------------------------------------- the board
@needs_notebook
def test_the_board_ranks_marks_challenges_filters_and_downloads(folders):
    runs_dir = folders / "runs"
    clone(runs_dir / "ana-small", "ana", "small-and-accurate", meta={"parameters": 40_000},
          metrics={"accuracy": 0.87}, nickname="Ana")
    clone(runs_dir / "bob-big", "bob", "small-and-accurate", nickname="Bob")  # 322,113 parameters
    clone(runs_dir / "nobody", "cy", config=dict(cell="lstm"), metrics={"accuracy": 0.5})
    at = session("class")
    table = board(at)
    assert list(table["run"]) == ["best", "ana-small", "notebook", "bob-big", "nobody"]  # 90.2, 87, 85.6, 85.6, 50
    by_run = table.set_index("run")
    assert by_run.loc["ana-small", "student"] == "Ana" and by_run.loc["nobody", "student"] == "anonymous"
    assert by_run.loc["notebook", "student"] == "reference (shipped)"
    assert by_run.loc["ana-small", "result"] == "passed" and by_run.loc["bob-big", "result"] == "failed"
    assert "322,113 parameters" in by_run.loc["bob-big", "why"] and pd.isna(by_run.loc["nobody", "result"])
    assert table["test accuracy"].is_monotonic_decreasing
    assert by_run.loc["nobody", "Cell"] == "LSTM" and by_run.loc["ana-small", "Units"] == 32
    assert any("1 passed, 1 failed" in e.label for e in at.expander)
    assert len(at.get("vega_lite_chart")) == 1
    assert at.get("download_button")[0].proto.label == "Download the board as CSV"
    csv = pd.read_csv(io.BytesIO(frames.board_csv(table)))
    assert "path" not in csv.columns and len(csv) == 5 and set(csv["student"]) >= {"Ana", "Bob", "anonymous"}
    # filters
    at.multiselect(key="class_students").set_value(["Ana"]).run()
    assert set(board(at)["run"]) == {"ana-small", "best", "notebook"}
    at.toggle(key="class_references").set_value(False).run()
    assert list(board(at)["run"]) == ["ana-small"]
    at.multiselect(key="class_students").set_value([]).run()
    at.multiselect(key="class_cells").set_value(["LSTM"]).run()
    assert list(board(at)["run"]) == ["nobody"]
    at.selectbox(key="class_x").set_value("Learning rate").run()
    assert not at.exception and len(at.get("vega_lite_chart")) == 1
    # a chosen row opens in Compare (the selection callback leaves its row for the next draw)
    at.session_state["class_open"] = 0
    at.run()
    assert at.multiselect(key="compare_runs").value == [str(runs_dir / "nobody")]


# ---------------------------------------------------------------- the teacher
@needs_notebook
def test_teacher_token_off_wrong_and_right(folders, monkeypatch):
    clone(folders / "runs" / "ana-run", "ana", nickname="Ana")
    at = session("class")
    assert any("no teacher token" in i for i in texts(at.info)) and not at.text_input
    monkeypatch.setenv("SENTIMENT_TEACHER_TOKEN", TOKEN)
    at = session("class")
    at.text_input(key="class_token").input("wrong guess")
    at.button[0].click().run()  # the form's submit button
    assert any("not the teacher token" in e for e in texts(at.error))
    assert "teacher_token" not in at.session_state
    assert not any(b.key == "class_delete" for b in at.button)
    at.text_input(key="class_token").input(TOKEN)
    at.button[0].click().run()
    assert any("Signed in as the teacher" in s for s in texts(at.success)), texts(at.error)
    assert TOKEN not in str(dict(at.query_params))
    at.selectbox(key="class_delete_pick").set_value("ana-run").run()
    at.checkbox(key="class_delete_confirm").check().run()
    at.button(key="class_delete").click().run()
    assert any("Deleted ana-run" in s for s in texts(at.success)) and not (folders / "runs" / "ana-run").exists()


# ---------------------------------------------------------------- jobs: another student's, and the teacher
def test_a_student_cannot_stop_another_students_job(monkeypatch):
    monkeypatch.setenv("SENTIMENT_TEACHER_TOKEN", TOKEN)
    ana = session("train")
    ana.text_input(key="train_name").input("ana-job").run()
    ana.button(key="train_button").click().run()
    job_id, key = ana.query_params["job"], ana.query_params["key"]
    assert ana.button(key="stop_button")
    # Bob sees the job's id in the tables and opens it: he can watch it, not stop it
    bob = session("train", job=job_id)
    assert not any(b.key == "stop_button" for b in bob.button)
    assert any("another student's job" in c for c in texts(bob.caption))
    assert "key" not in bob.query_params
    # with the owner's key (Ana's own address bar, in a new tab) the job is hers again
    again = session("train", job=job_id, key=key)
    assert again.button(key="stop_button")
    # the teacher, signed in on the Class page, may stop it
    teacher = session("class")
    teacher.text_input(key="class_token").input(TOKEN)
    teacher.button[0].click().run()
    teacher.button(key="class_stop").click().run()
    assert any("is cancelled" in s for s in texts(teacher.success)), texts(teacher.error)


# ---------------------------------------------------------------- an exercise link
def test_a_locked_link_fixes_its_fields_and_the_job_keeps_them(folders):
    at = session("train", preset="notebook", lock="cell,units", hide="members")
    assert any("Exercise" in i for i in texts(at.info))
    cell, units = at.selectbox(key="hp_cell"), at.number_input(key="hp_units")
    assert cell.disabled and units.disabled and cell.value == "simple_rnn" and units.value == 32
    assert at.selectbox(key="preset").disabled and at.selectbox(key="preset").value == "notebook"
    assert not any(s.key == "hp_members" for s in at.slider)
    at.slider(key="hp_dropout").set_value(0.3).run()  # what is not fixed can change
    at.session_state["hp_cell"] = "lstm"  # what a tampered browser could send
    at.session_state["hp_members"] = 3
    at.run()
    assert at.selectbox(key="hp_cell").value == "simple_rnn"
    at.text_input(key="train_nickname").input("Ana").run()
    at.button(key="train_button").click().run()
    assert not at.error, texts(at.error)
    job = state.job_manager().get(at.query_params["job"])
    assert (job.config["cell"], job.config["units"], job.config["members"], job.config["dropout"]) == \
        ("simple_rnn", 32, PRESETS["notebook"].members, 0.3)
    assert job.nickname == "Ana" and job.exercise["locked"] == ["cell", "units"]


@pytest.mark.parametrize("query, message", [
    (dict(lock="cell,not_a_field"), "lock= names no hyperparameter: 'not_a_field'"),
    (dict(preset="<script>", lock="cell"), "is not a preset")])
def test_a_bad_exercise_link_is_refused_and_changes_nothing(query, message):
    at = session("train", **query)
    assert any(message in e and "Nothing was changed" in e for e in texts(at.error)), texts(at.error)
    assert not at.selectbox(key="hp_cell").disabled and at.selectbox(key="preset").value == "tiny"


def test_hostile_names_block_train_with_a_message():
    at = session("train")
    for name, message in (("<b>x</b>", "not '<'"), ("a\x00b", "control"), ("Ana <3", "not '<'")):
        at.session_state["train_nickname"] = name  # as a forged browser message would set it
        at.run()
        assert any(message in e for e in texts(at.error)), (name, texts(at.error))
        assert at.button(key="train_button").disabled
    assert state.job_manager().jobs() == []
    at.session_state["train_nickname"] = "x" * 10_000  # Streamlit cuts it to the widget's max_chars
    at.run()
    assert at.text_input(key="train_nickname").value == "x" * MAX_NICKNAME
