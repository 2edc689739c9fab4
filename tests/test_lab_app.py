"""The 'Edit a review' page through AppTest: an edit moves the score, a suggested flip flips the label, bad
edits are refused in words, and the confident mistakes open in the editor and in Inside.

The shipped `notebook` run keeps these quick (the editor's speed with `best`: benchmarks/editor_latency.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_app import APP, TIMEOUT, charts, needs_shipped, texts

from app.edit_session import MAX_VERSIONS, EditSession
from sentiment_core import runs

NOTEBOOK = str(runs.SHIPPED_DIR / "notebook")
REVIEW = "A wonderful film with great acting and a moving story. I loved every minute of it."


def editor(review: str = REVIEW, model: str = NOTEBOOK) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.sidebar.selectbox(key="model").set_value(model).run()
    at.switch_page("app_pages/edit.py").run()
    at.text_area(key="edit_text").input(review).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def scores(at: AppTest) -> tuple[float, float]:
    """The original's and the edited version's probability, as the two metrics show them."""
    original, edited = (float(m.value.split("%")[0]) / 100 for m in at.metric[:2])
    return original, edited


def edit(at: AppTest, position: int, action: str, word: str = "") -> AppTest:
    at.selectbox(key="edit_position").set_value(position)
    at.selectbox(key="edit_action").set_value(action)
    at.text_input(key="edit_word").input(word)
    at.button(key="edit_apply").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@needs_shipped
def test_an_edit_changes_the_score_and_marks_the_word():
    at = editor()
    before = scores(at)
    assert before[0] == before[1] > 0.5
    edit(at, 1, "change to", "terrible")  # "wonderful" -> "terrible"
    original, edited = scores(at)
    assert original == before[0] and edited < original
    shaded = [m for m in texts(at.markdown) if "outline:2px" in m]
    assert shaded and "terrible" in shaded[0]
    edit(at, 0, "delete")
    edit(at, 0, "insert before", "not")
    assert at.session_state["edit_session"].current[:2] == ("not", "terrible")
    at.button(key="edit_undo").click().run()
    assert at.session_state["edit_session"].current[0] == "terrible"


@needs_shipped
def test_a_suggested_flip_flips_the_label():
    at = editor()
    at.button(key="edit_flip").click().run()
    assert any("deletion(s) flip the label" in m for m in texts(at.markdown)), texts(at.markdown)
    at.button(key="edit_apply_flip").click().run()
    original, edited = scores(at)
    assert (original >= 0.5) != (edited >= 0.5)
    assert any("The label flipped" in s for s in texts(at.success))
    at.button(key="edit_swaps").click().run()
    assert not at.exception


@needs_shipped
def test_bad_edits_get_words_not_tracebacks():
    at = editor("great")
    edit(at, 0, "change to", "xqzzyv")  # no word left that the model knows
    assert any("No word the model knows" in w for w in texts(at.warning)), texts(at.warning)
    assert at.session_state["edit_session"].current == ("great",)
    edit(at, 0, "delete")
    assert any("only word" in w for w in texts(at.warning))
    edit(at, 0, "change to", "!!!")
    assert any("holds no word" in w for w in texts(at.warning))
    at.text_area(key="edit_text").input("...").run()
    assert any("No word the model knows" in i for i in texts(at.info))


@needs_shipped
def test_a_run_deleted_mid_edit_is_named(tmp_path):
    copy = Path(runs.import_zip(runs.to_zip(Path(NOTEBOOK)), "doomed", Path(runs.RUNS_DIR)))
    try:
        at = editor(model=str(copy))
        edit(at, 1, "change to", "terrible")
    finally:
        shutil.rmtree(copy)  # gone from under the page, as when the teacher deletes it
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("has been deleted" in w for w in texts(at.warning)), texts(at.warning)
    assert at.session_state["edit_session"].current[1] == "terrible"


def test_edit_history_stays_bounded():
    session = EditSession("x", "run", (("a",),))
    for k in range(5_000):
        session = session.push(("a", str(k)))
    assert len(session.versions) == MAX_VERSIONS and session.edits == 5_000
    assert session.original == ("a",) and session.current == ("a", "4999")
    assert session.undo().current == ("a", "4998") and session.reset().versions == (("a",),)


@needs_shipped
def test_mistakes_view_and_opening_a_review():
    at = editor()
    at.button_group(key="lab_view").set_value("Confident mistakes").run()
    at.button(key="mistakes_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert charts(at) == 1
    table = at.dataframe[0].value
    assert len(table) == 20 and list(table["rank"]) == list(range(1, 21))
    wrong = (table["probability"] >= 0.5) != (table["label"] == "positive")
    assert wrong.all()
    chosen = at.session_state["mistakes_pick"]
    at.button(key="mistakes_edit").click().run()
    assert at.session_state["lab_view"] == "Edit a review"
    opened = at.text_area(key="edit_text").value
    assert texts_start(opened, table["review"].iloc[chosen])
    at.button_group(key="lab_view").set_value("Confident mistakes").run()
    at.button(key="mistakes_inside").click().run()  # AppTest does not follow st.switch_page: go there by hand
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page("app_pages/inside.py").run()
    assert at.text_area(key="inside_text").value == opened


def texts_start(full: str, shown: str) -> bool:
    return " ".join(full.split()).startswith(shown.rstrip("…"))


if __name__ == "__main__":
    pytest.main([__file__, "-x", "-q"])
