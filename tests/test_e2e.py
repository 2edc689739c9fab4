"""End to end: the real app server (`streamlit run`) driven by a headless Debian chromium through Playwright.

One server per module, with its runs, jobs and data cache in a temporary folder (artifacts/runs is never
touched); one fresh browser context (= one Streamlit session) per test. Chromium is never downloaded:
without /usr/bin/chromium these tests are skipped, unless REQUIRE_BROWSER=1 (CI), which makes that a failure.
On a failure, a full-page screenshot and the server log's tail are saved in the test's tmp_path.

    python -m pytest tests/test_e2e.py -q
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from app import inputs, run_picker, texts
from benchmarks.appserver import CHROMIUM_ARGS, AppServer, chromium, full_page_screenshot, wait_idle
from sentiment_core import runs

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 60_000  # per Playwright wait: the machine is shared, so be patient
SHIPPED = sorted(p for p in runs.SHIPPED_DIR.iterdir() if (p / "manifest.json").is_file()) \
    if runs.SHIPPED_DIR.is_dir() else []
needs_shipped = pytest.mark.skipif(not SHIPPED, reason="no shipped run in artifacts/shipped")
EXCEPTION = "[data-testid='stException']"
PROGRESS = re.compile(r"epoch (\d+)/(\d+), batch (\d+)/(\d+)")


def no_browser(reason: str):
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}. Install Debian's chromium (apt-get install chromium) "
                    "and the playwright package (pip install -r requirements-dev.txt).", pytrace=False)
    pytest.skip(reason=reason)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser():
    executable = chromium()
    if executable is None:
        no_browser("no chromium at /usr/bin/chromium (set CHROMIUM to another path)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        no_browser("the playwright package is not installed")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        except Exception as error:  # a chromium that cannot start is the same as none
            no_browser(f"chromium at {executable} does not start: {error}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    """`streamlit run streamlit_app.py` on a free port; runs/jobs/cache in a temporary folder."""
    app = AppServer.start(tmp_path_factory.mktemp("e2e-server"))
    yield app
    app.stop()


@pytest.fixture
def page(browser, server, request, tmp_path):
    """A fresh browser session. On failure: tmp_path/failure.png and tmp_path/server.log."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    tab.errors = []  # uncaught JavaScript errors
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    # No pytest_runtest_makereport hook needed: the session's failure count goes up when this test's
    # setup or call fails, before this fixture is torn down.
    failed_before = request.session.testsfailed
    yield tab
    if request.session.testsfailed > failed_before:  # this test's setup or call failed
        try:
            full_page_screenshot(tab, tmp_path / "failure.png")
            print(f"\nscreenshot of the failure: {tmp_path / 'failure.png'}")
        except Exception as error:
            print(f"\nno screenshot: {error}")
        (tmp_path / "server.log").write_text(server.log_tail(20_000), encoding="utf-8")
        print(f"server log: {tmp_path / 'server.log'}")
    context.close()


# ---------------------------------------------------------------- helpers
def open_page(tab, server: AppServer, path: str = "") -> None:
    tab.goto(f"{server.url}/{path}")
    wait_idle(tab)
    tab.locator("h1").first.wait_for()


def navigate(tab, title: str) -> None:
    """Switch page through the sidebar navigation (same session, no reload)."""
    tab.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    wait_idle(tab)


def assert_clean(tab) -> None:
    assert tab.locator(EXCEPTION).count() == 0, tab.locator(EXCEPTION).all_inner_texts()
    assert not tab.errors, tab.errors


def commit_text(tab, key: str, text: str) -> None:
    """Type into a text area or input and apply it (Ctrl+Enter for a text area, Enter for an input)."""
    box = tab.locator(f".st-key-{key} textarea, .st-key-{key} input").first
    box.fill(text)
    box.press("Control+Enter" if box.evaluate("e => e.tagName") == "TEXTAREA" else "Enter")
    wait_idle(tab)


def metrics(tab) -> dict[str, str]:
    found = {}
    for metric in tab.locator("[data-testid='stMetric']").all():
        label = metric.locator("[data-testid='stMetricLabel']").inner_text().strip()
        found[label] = metric.locator("[data-testid='stMetricValue']").inner_text().strip()
    return found


def job_line(tab) -> str:
    line = tab.locator("[data-testid='stMarkdownContainer']", has_text="State:")
    return line.first.inner_text().strip() if line.count() else ""


def job_state(tab) -> str:
    """'running', 'done'... from 'State: <icon> <state> — <progress>'."""
    match = re.search(r"State:\s*\S+\s+(\w+)", job_line(tab))
    return match.group(1) if match else ""


def job_step(tab) -> int | None:
    """Batches done so far, from the progress text, or None before the first batch."""
    match = PROGRESS.search(job_line(tab))
    if not match:
        return None
    epoch, _, batch, steps = map(int, match.groups())
    return (epoch - 1) * steps + batch


def wait_for_state(tab, states: tuple[str, ...], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert tab.locator(EXCEPTION).count() == 0, tab.locator(EXCEPTION).all_inner_texts()
        if job_state(tab) in states:
            return job_state(tab)
        tab.wait_for_timeout(250)
    raise AssertionError(f"job still {job_line(tab)!r} after {timeout} s; wanted {states}")


def wait_for_steps(tab, more_than: int, timeout: float) -> int:
    """Poll the live progress until more than `more_than` batches are done; returns that count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = job_step(tab)
        if step is not None and step > more_than:
            return step
        assert job_state(tab) in ("queued", "running"), job_line(tab)
        tab.wait_for_timeout(250)
    raise AssertionError(f"no progress past batch {more_than} in {timeout} s: {job_line(tab)!r}")


def set_training(tab, name: str, batch_size: int, epochs: int | None = None, early_stopping: bool = True) -> None:
    """On Train, from the tiny preset: a small batch (so that an epoch lasts seconds), epochs, a run name."""
    assert "tiny" in selected(tab, "preset")
    assert "sample" in selected(tab, "train_data").lower()
    commit_text(tab, "hp_batch_size", str(batch_size))
    if epochs is not None:
        slider = tab.locator(".st-key-hp_epochs input[type=range]")
        slider.press("Home")  # 1, then one step per arrow press
        for _ in range(epochs - 1):
            slider.press("ArrowRight")
        wait_idle(tab)
        assert slider.get_attribute("value") == str(epochs)
    box = tab.locator(".st-key-hp_early_stopping input[type=checkbox]")
    if box.is_checked() != early_stopping:
        tab.locator(".st-key-hp_early_stopping label").click()
        wait_idle(tab)
    assert box.is_checked() == early_stopping
    commit_text(tab, "train_name", name)


def start_training(tab) -> str:
    click_button(tab, "train_button")
    tab.wait_for_url(re.compile(r"[?&]job=\w+"))
    wait_idle(tab)
    assert_clean(tab)
    return re.search(r"[?&]job=(\w+)", tab.url).group(1)


def selected(tab, key: str) -> str:
    """A selectbox's shown value."""
    return tab.locator(f".st-key-{key} input[role='combobox']").input_value()


def click_button(tab, key: str) -> None:
    """Click the button with this key. A fragment that redraws every second (the live job) may briefly
    hold its old and new element both: take the first visible one."""
    tab.locator(f".st-key-{key} button").filter(visible=True).first.click()


def select_options(tab, key: str) -> list[str]:
    """The options of a selectbox, read from its open dropdown."""
    tab.locator(f".st-key-{key} input[role='combobox']").click()
    options = tab.locator("[role='option']")
    options.first.wait_for()
    texts = [t.strip() for t in options.all_inner_texts()]
    tab.keyboard.press("Escape")
    return texts


# ---------------------------------------------------------------- the tests
@needs_shipped
def test_home_scores_a_typed_review(page, server):
    open_page(page, server)
    model = run_picker.default_run(runs.list_runs(server.base / "runs", runs.SHIPPED_DIR))
    page.locator("[data-testid='stMetricValue']").first.wait_for()
    before = metrics(page)
    assert before["Label"] in ("positive", "negative")

    review = "A dreadful, boring, awful waste of time. The worst film I have seen this year."
    commit_text(page, "home_text", review)
    page.wait_for_function(
        "before => document.querySelector('[data-testid=\"stMetricValue\"]')?.innerText.trim() !== before",
        arg=before["Probability positive"])

    from sentiment_core.inference import Engine  # the same run the app picked, scored here on NumPy

    engine = Engine.from_run(runs.load_run(model))
    expected = float(engine.predict(inputs.prepare_reviews([review], engine.config.truncating).texts)[0])
    shown = metrics(page)
    assert shown["Probability positive"] == f"{expected:.1%}"
    assert shown["Label"] == texts.label(expected) == "negative"
    captions = page.locator("[data-testid='stCaptionContainer']").all_inner_texts()
    assert any(c.startswith(f"Model: {Path(model).name} ") for c in captions), captions
    assert_clean(page)


def test_train_shows_live_progress_and_saves_the_run(page, server):
    open_page(page, server, "train")
    # 12 epochs of 1,600 batches of 1: long enough that the page is seen redrawing mid-run even when a busy
    # 2-core machine delays the first redraw (a 2-epoch run once finished between two looks, and 6 epochs of
    # batches of 2 did once the workers trained on huge pages: ~0.6 s an epoch)
    set_training(page, "e2e-live", batch_size=1, epochs=12, early_stopping=False)
    job_id = start_training(page)
    assert job_state(page) in ("queued", "running")
    assert page.locator("[data-testid='stMarkdownContainer']", has_text=f"Job {job_id}").count()

    first = wait_for_steps(page, 0, timeout=180)  # the worker imports Keras, encodes, compiles...
    second = wait_for_steps(page, first, timeout=60)  # ...then the page redraws itself every second
    assert second > first
    page.locator("[data-testid='stVegaLiteChart']").nth(1).wait_for()  # batch loss and accuracy, live
    assert page.locator("[data-testid='stProgress']").count()

    assert wait_for_state(page, ("done", "failed", "stopped"), timeout=240) == "done", job_line(page)
    page.get_by_text("The run is saved as e2e-live").wait_for()
    wait_idle(page)  # the finished page is drawn by a full rerun, which may still be under way
    assert "Test accuracy" in metrics(page)
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 5  # 2 batch, 2 epoch, confusion matrix
    assert_clean(page)

    run = runs.load_run(server.base / "runs" / "e2e-live")  # on disk, complete and intact
    assert run.meta["status"] == "complete" and len(run.history["epochs"]) == 12

    navigate(page, "Runs")
    assert "e2e-live" in select_options(page, "runs_pick")
    assert "e2e-live" in select_options(page, "model")  # the sidebar's model selector, on every page
    assert_clean(page)


def test_job_survives_a_page_switch_and_stops(page, server, browser):
    open_page(page, server, "train")
    set_training(page, "e2e-stop", batch_size=1, epochs=20, early_stopping=False)  # 32,000 batches
    job_id = start_training(page)
    before = wait_for_steps(page, 0, timeout=180)

    navigate(page, "Predict")
    page.get_by_role("heading", name="Predict").wait_for()
    assert_clean(page)
    page.wait_for_timeout(1500)  # the job keeps training meanwhile

    navigate(page, "Train")
    page.wait_for_url(re.compile(rf"[?&]job={job_id}"))  # the page put the job link back in the address bar
    assert page.locator("[data-testid='stMarkdownContainer']", has_text=f"Job {job_id}").count()
    after = wait_for_steps(page, before, timeout=60)
    assert job_state(page) == "running" and after > before

    click_button(page, "stop_button")
    clicked = time.monotonic()
    assert wait_for_state(page, ("stopped", "done", "failed"), timeout=60) == "stopped", job_line(page)
    took = time.monotonic() - clicked
    print(f"stopped {took:.1f} s after the click")
    assert took < 30, f"the job took {took:.1f} s to stop and save"
    page.get_by_text("The run is saved as e2e-stop").wait_for()
    assert_clean(page)

    run = runs.load_run(server.base / "runs" / "e2e-stop")
    assert run.meta["status"] == "stopped" and len(run.history["epochs"]) < 20

    # the job link opens the same job from another browser session
    other = browser.new_context().new_page()
    try:
        other.goto(f"{server.url}/train?job={job_id}")
        wait_idle(other)
        other.get_by_text("The run is saved as e2e-stop").wait_for(timeout=TIMEOUT_MS)
        assert job_state(other) == "stopped"
        assert other.locator(EXCEPTION).count() == 0
    finally:
        other.context.close()


@needs_shipped
def test_predict_shades_words_and_explains_empty_input(page, server):
    open_page(page, server, "predict")
    commit_text(page, "predict_text", "Wonderful acting and a great story, but the ending was painfully slow.")
    click_button(page, "predict_button")
    wait_idle(page)
    page.get_by_text("Which words pushed the score").wait_for()
    page.locator("[data-testid='stMarkdownContainer'] span[title]").first.wait_for()
    page.locator("[data-testid='stMetricValue']").nth(1).wait_for()
    shown = metrics(page)
    assert re.fullmatch(r"\d{1,3}\.\d%", shown["Probability positive"])
    assert shown["Label"] in ("positive", "negative")
    shaded = page.locator("[data-testid='stMarkdownContainer'] span[title]")
    assert shaded.count() >= 10
    titles = [shaded.nth(i).get_attribute("title") for i in range(shaded.count())]
    assert any(t.startswith("wonderful: +") for t in titles), titles  # raised the probability
    assert all(re.fullmatch(r"\S+: [+-]\d\.\d{3}( \(unknown word\))?", t) for t in titles), titles
    wonderful = shaded.filter(has_text=re.compile(r"^wonderful$")).first
    assert "background: rgba(26, 152, 80," in wonderful.get_attribute("style")  # shaded green
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    assert_clean(page)

    commit_text(page, "predict_text", "   ")
    click_button(page, "predict_button")
    wait_idle(page)
    page.locator("[data-testid='stAlert']", has_text="nothing to score").wait_for()
    assert page.locator("[data-testid='stMetric']").count() == 0
    assert page.locator("[data-testid='stMarkdownContainer'] span[title]").count() == 0
    assert_clean(page)


@needs_shipped
def test_no_word_reviews_get_a_message_not_a_traceback(page, server):
    """A visitor's first keystrokes on the hosted demo: on the old main `...` crashed the default `best`."""
    open_page(page, server)
    page.locator("[data-testid='stMetricValue']").first.wait_for()
    for text in ("...", "<br /><br />", "xqzzyv plorbnik"):
        commit_text(page, "home_text", text)
        page.locator("[data-testid='stAlert']", has_text="No word the model knows").wait_for()
        assert page.locator("[data-testid='stMetric']").count() == 0
        assert_clean(page)
    commit_text(page, "home_text", "A wonderful film.")
    page.locator("[data-testid='stMetricValue']").first.wait_for()
    assert_clean(page)

    navigate(page, "Inside")
    page.locator("[data-testid='stVegaLiteChart']").first.wait_for()
    commit_text(page, "inside_text", "!!! ???")
    page.locator("[data-testid='stAlert']", has_text="No word the model knows").wait_for()
    assert_clean(page)
    commit_text(page, "inside_text", "not good at all")
    page.get_by_text("Sentiment as it reads").first.wait_for()
    assert_clean(page)


@needs_shipped
def test_class_page_board_csv_and_a_click_to_compare(page, server):
    from tests.test_class import clone

    clone(server.base / "runs" / "ana-small", "ana", "small-and-accurate", meta={"parameters": 40_000},
          metrics={"accuracy": 0.87}, nickname="Ana")
    open_page(page, server, "class")
    grid = page.locator(".st-key-class_board [data-testid='stDataFrame']")
    grid.wait_for()
    wait_idle(page)  # the chart comes after the board
    here = len(runs.run_dirs(server.base / "runs"))  # earlier tests on this server saved runs too
    total = here + len(SHIPPED)
    assert page.get_by_text(f"Leaderboard: {total} of {total} runs ({here} trained here)").count()
    assert page.locator("[data-testid='stVegaLiteChart']").count() == 1
    assert page.get_by_text("this server has no teacher token").count()  # no SENTIMENT_TEACHER_TOKEN here
    with page.expect_download() as download:
        page.locator(".st-key-class_csv button").click()
    csv = Path(download.value.path()).read_text(encoding="utf-8")
    assert csv.startswith("run,student,yours,test accuracy") and "ana-small,Ana,False,0.87" in csv
    assert "passed" in csv.splitlines()[2] and str(server.base) not in csv  # ranked 2nd; no server paths
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 + 17)  # the second row's selector: ana-small
    page.get_by_role("heading", name="Compare runs").wait_for()
    wait_idle(page)
    assert "ana-small" in page.locator(".st-key-compare_runs").inner_text()
    assert_clean(page)


@needs_shipped
def test_editor_edit_moves_the_score_and_a_suggested_flip_flips_it(page, server):
    open_page(page, server, "edit")
    commit_text(page, "edit_text", "A wonderful film with great acting and a moving story. I loved it.")
    page.get_by_text("Edited", exact=True).wait_for()
    before = metrics(page)
    assert before["Original"] == before["Edited"]
    picker = page.locator(".st-key-edit_position input[role='combobox']")
    assert picker.input_value() == "1: a"  # the new review's first word, not the default review's ("1: i")
    picker.click()
    page.locator("[role='option']", has_text="2: wonderful").first.click()
    commit_text(page, "edit_word", "terrible")
    click_button(page, "edit_apply")
    wait_idle(page)
    page.wait_for_function("before => [...document.querySelectorAll('[data-testid=\"stMetricValue\"]')]"
                           ".some(e => e.innerText.trim() !== before)", arg=before["Edited"])
    after = metrics(page)
    assert after["Original"] == before["Original"] and after["Edited"] != before["Edited"]
    outlined = page.locator("[data-testid='stMarkdownContainer'] span[style*='outline']")
    assert outlined.first.inner_text() == "terrible"
    assert picker.input_value() == "2: terrible"  # the word now at the picked position, not the one replaced
    click_button(page, "edit_flip")
    wait_idle(page)
    click_button(page, "edit_apply_flip")
    wait_idle(page)
    page.locator("[data-testid='stAlert']", has_text="The label flipped").wait_for()
    flipped = metrics(page)
    assert (float(flipped["Original"].split("%")[0]) >= 50) != (float(flipped["Edited"].split("%")[0]) >= 50)
    assert_clean(page)


@needs_shipped
def test_inside_draws_what_the_model_forgets(page, server):
    """The connectivity bars under the sentiment-as-it-reads curve, and the curve over many reviews per run."""
    open_page(page, server, "inside")
    commit_text(page, "inside_text", "A dull start, but the second half was wonderful and the cast was great.")
    page.get_by_role("heading", name="What it forgets", exact=True).wait_for()
    page.get_by_role("heading", name="What it forgets, over many reviews").wait_for()
    page.get_by_text("reviews, distances 1-").first.wait_for()  # the caption under the drawn curve
    charts = page.locator("[data-testid='stVegaLiteChart']")
    assert charts.count() >= 6
    for chart in (charts.nth(0), charts.nth(1), charts.last):  # as it reads, the bars under it, the curve
        chart.scroll_into_view_if_needed()
        chart.locator("canvas, svg").first.wait_for()  # vega-embed drew it
    assert_clean(page)
