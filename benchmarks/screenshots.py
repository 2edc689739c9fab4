"""Full-page screenshots of every page, and the time from `streamlit run` to the first prediction on Home.

    python benchmarks/screenshots.py                 # into /tmp/screens
    python benchmarks/screenshots.py logs/screens    # anywhere else

Starts its own server (runs, jobs and cache in a temporary folder, never artifacts/runs) and drives
Debian's chromium headless: Home with a prediction, Train while a tiny job runs (live charts), Predict
with word shading, Inside the RNN, Compare (the shipped model next to the job's run) and Runs.
Needs a shipped run in artifacts/shipped for Home, Predict and Inside to show a model.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.appserver import CHROMIUM_ARGS, AppServer, chromium, full_page_screenshot, wait_idle  # noqa: E402

TIMEOUT_MS = 120_000
CHART = "[data-testid='stVegaLiteChart']"


def state_line(page) -> str:
    line = page.locator("[data-testid='stMarkdownContainer']", has_text="State:")
    return line.first.inner_text() if line.count() else ""


def wait_charts(page, count: int) -> None:
    """Until `count` Altair charts are drawn (vega-embed puts a canvas or an svg in each)."""
    page.locator(f"{CHART} canvas, {CHART} svg.marks").nth(count - 1).wait_for()
    page.wait_for_timeout(500)


def commit(page, key: str, text: str) -> None:
    box = page.locator(f".st-key-{key} textarea, .st-key-{key} input").first
    box.fill(text)
    box.press("Control+Enter" if box.evaluate("e => e.tagName") == "TEXTAREA" else "Enter")
    wait_idle(page)


def navigate(page, title: str) -> None:
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    wait_idle(page)
    page.locator("h1").first.wait_for()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="/tmp/screens", help="folder for the PNG files")
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    executable = chromium()
    if executable is None:
        sys.exit("no chromium at /usr/bin/chromium (apt-get install chromium, or set CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="sentiment-screens-") as tmp:
        server = AppServer.start(Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": args.width, "height": 1000})
                page.set_default_timeout(TIMEOUT_MS)
                shots: dict[str, Path] = {}

                def shoot(name: str) -> None:
                    assert page.locator("[data-testid='stException']").count() == 0, f"exception on {name}"
                    shots[name] = out / f"{len(shots) + 1:02d}-{name}.png"
                    full_page_screenshot(page, shots[name])

                # Home: the example review is scored as soon as the page is drawn
                page.goto(server.url)
                page.locator("[data-testid='stMetricValue']").nth(1).wait_for()
                first_prediction = time.monotonic() - server.started_at
                wait_idle(page)
                shoot("home")

                # Train: a tiny job with a small batch, so that it is still running when the charts are up
                navigate(page, "Train")
                commit(page, "hp_batch_size", "2")
                commit(page, "train_name", "screenshot-run")
                page.locator(".st-key-train_button button").click()
                page.wait_for_url(re.compile(r"[?&]job=\w+"))
                wait_charts(page, 2)  # batch loss and accuracy
                deadline = time.monotonic() + 30  # after the first epoch the epoch curves join them
                while page.locator(CHART).count() < 4 and "running" in state_line(page) \
                        and time.monotonic() < deadline:
                    page.wait_for_timeout(200)
                shoot("train-running")
                page.get_by_text("The run is saved as screenshot-run").wait_for(timeout=300_000)

                # Predict with word shading
                navigate(page, "Predict")
                commit(page, "predict_text", "The acting was wonderful and the story moving, but the ending "
                                             "felt rushed and a little dull.")
                page.locator(".st-key-predict_button button").click()
                wait_idle(page)
                page.locator("[data-testid='stMarkdownContainer'] span[title]").first.wait_for()
                page.locator("[data-testid='stDataFrame']").first.wait_for()
                shoot("predict")

                # Inside the RNN: as it reads, hidden state, trajectory, gates, units, gradients
                navigate(page, "Inside the RNN")
                wait_charts(page, 5)
                shoot("inside")

                navigate(page, "Compare")
                wait_charts(page, 2)
                page.locator("[data-testid='stDataFrame']").nth(1).wait_for()
                shoot("compare")

                navigate(page, "Runs")
                page.locator("[data-testid='stDataFrame']").first.wait_for()
                shoot("runs")
                browser.close()
        finally:
            server.stop()
    for name, path in shots.items():
        print(f"{name:14} {path}")
    print(f"time from `streamlit run` to the first prediction shown on Home: {first_prediction:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
