"""Inside's "What it forgets" (connectivity per word, and over many reviews per run) and the Runs page's
Python script, through AppTest; with a run without insights and a run deleted while it is picked."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from test_app import SHIPPED, app_folders, needs_shipped, new_app, on_page, texts  # noqa: F401 (fixture)

from sentiment_core import runs


def copy_of_notebook(name: str, without_insights: bool = False) -> Path:
    """The shipped notebook as a user run, optionally without its insights.npz (a valid run, still)."""
    target = Path(os.environ["SENTIMENT_RUNS_DIR"]) / name
    shutil.copytree(runs.SHIPPED_DIR / "notebook", target)
    if without_insights:
        (target / "insights.npz").unlink()
        manifest = json.loads((target / "manifest.json").read_text())
        del manifest["files"]["insights.npz"]
        (target / "manifest.json").write_text(json.dumps(manifest))
    runs.load_run(target)
    return target


def chart_specs(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


@needs_shipped
def test_inside_shows_what_each_word_still_counts_and_the_curve_per_run():
    at = on_page(new_app(), "inside")
    at.text_area(key="inside_text").input("not good at all, but the music was great and I loved it").run()
    assert not at.exception and not at.error and not at.warning, texts(at.warning)
    headers = texts(at.header)
    assert headers.index("Sentiment as it reads") + 1 == headers.index("What it forgets")
    assert "What it forgets, over many reviews" in headers
    bars = [s for s in chart_specs(at) if s.get("encoding", {}).get("y", {}).get("field") == "connectivity"]
    assert len(bars) == 1
    picked = at.multiselect(key="inside_forget_runs").value
    assert len(picked) == min(2, len(SHIPPED))  # the model and one more run, for a comparison at first sight
    lines = [s for s in chart_specs(at) if s.get("encoding", {}).get("x", {}).get("field") == "distance"]
    assert len(lines) == 1
    assert any("reviews, distances 1-100" in c for c in texts(at.caption))


@needs_shipped
def test_inside_works_for_a_run_without_insights_and_one_deleted_while_picked():
    bare = copy_of_notebook("no-insights", without_insights=True)
    at = new_app()
    at.sidebar.selectbox(key="model").set_value(str(bare)).run()
    on_page(at, "inside")
    assert "What it forgets" in texts(at.header) and not at.error
    assert any("no saved reference reviews" in i for i in texts(at.info))
    other = copy_of_notebook("to-delete")
    at.multiselect(key="inside_forget_runs").set_value([str(bare), str(other)]).run()
    assert not at.exception
    shutil.rmtree(Path(os.environ["SENTIMENT_RUNS_DIR"]) / "to-delete")  # gone from under the page
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.multiselect(key="inside_forget_runs").value == [str(bare)]


@needs_shipped
def test_runs_page_offers_the_python_script_or_says_why_not():
    at = on_page(new_app(), "runs")
    for run in SHIPPED:
        at.selectbox(key="runs_pick").set_value(str(run)).run()
        assert not at.exception and not at.error
        scripts = [b for b in at.get("download_button") if b.proto.label == "Download as a Python script"]
        if runs.load_run(run).config.members > 1:
            assert not scripts and any("members = " in c for c in texts(at.caption))
        else:
            assert len(scripts) == 1 and any(f"python {run.name}.py train" in c for c in texts(at.caption))
