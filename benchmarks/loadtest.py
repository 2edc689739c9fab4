"""A classroom in one command: N sessions predicting and training at once on one app server.

    python benchmarks/loadtest.py --sessions 3                      # smoke run (browsers), about a minute
    python benchmarks/loadtest.py --sessions 30                     # 30 protocol clients, bounded by --timeout
    python benchmarks/loadtest.py --sessions 3 --client protocol    # the same scenario without a browser
    python benchmarks/loadtest.py --sessions 6 --runner ray         # jobs on a local Ray cluster (Ray installed)

Localhost only, bounded in sessions and time. It starts its own server (runs, jobs and data cache in a
temporary folder; SENTIMENT_MAX_TRAININGS = --max-trainings, default the number of cores), and its
sessions (students) start --stagger seconds apart. `--runner ray` starts a Ray cluster on 127.0.0.2 first
(benchmarks/ray_cluster.py: a head and --max-trainings worker nodes, one `trainer` each) and the server
with SENTIMENT_RUNNER=ray; the job workers measured are then the Ray tasks' processes on the worker nodes,
and the Ray cluster's own processes (raylets, GCS, agents, idle workers) are reported apart.
Two kinds of client (--client):

- browser (default up to 8 sessions): ONE headless Debian chromium through Playwright, one browser
  context (= one Streamlit session) per student. The end-to-end check: it draws every page, so the
  browsers cost more CPU than the server; keep it to a few sessions.
- protocol (default above 8): benchmarks/streamlit_client.py speaks Streamlit's websocket protocol as the
  browser does (rerun_script with the page, the widget states, button triggers, and each fragment's
  run_every auto-reruns), without drawing anything, so 30 or 100 of them cost the server what 30 or 100
  tabs would, and little else.

Each session:

1. opens Home and scores a review typed in its text box (latency: from Ctrl+Enter to the score shown);
2. goes to Train and submits a tiny job (tiny preset, 1 epoch, bundled sample, its own run name);
3. goes to Predict and scores --predictions reviews while its job is queued or running (latency: from
   the Predict click to the score shown; each is tagged with its job's state at that moment);
4. goes back to Train and watches the live job until it ends, as a student would (--watch none: stays
   on Predict, page left alone, while this script polls the job's file). The job's state and progress
   bar refresh every 3 s, its curves every 10.1 s and the jobs tables every 21.1 s (the page's run_every
   fragments).

Before the sessions, one session scores the same reviews on the idle server: the baseline.
Every expected score is computed here with the same model on NumPy, so a latency ends when exactly that
value is on the page. A sampler thread records the resident memory of the server and of its job workers
every 0.5 s. At the end the job.json files give queue waits and final states, and every finished job's
run must load with sentiment_core.runs.load_run ("lost runs" otherwise). Prints a markdown table and
one JSON line. Needs a shipped run in artifacts/shipped (the app's default model).

Besides those, it reports:
- server CPU-seconds per session-minute: the server process's own CPU (psutil; not its job workers)
  while at least one session is waiting for its job (step 4), divided by the minutes sessions spent
  waiting: what a watching student costs. Other sessions' page loads and predictions count when they
  overlap that window (with queued jobs, a small part); the browser's own page loads stay outside it;
- stale pages: sessions whose job had ended on disk (job.json) while the page still did not show the
  final state 5 s later; and the time from a job's end (`ended` in job.json) to its final state shown
  (the browser polls its page once a second, the protocol client sees each message as it comes);
- each page's latency under load: from a request (page change, a value set, a click) to the end of the
  run it started; for the protocol client also each live fragment's, from the auto-rerun due to its
  run's end. The browser's include a 0.3 s settle and the drawing;
- the largest single training worker's peak RSS, and the load generator's own CPU (this process, and
  for browsers Playwright's driver and chromium).

Errors are counted by kind: browser exception (uncaught JavaScript), stException (a traceback on a page),
timeout (a step over --step-timeout, or a session cut at --timeout), bad job link (the address bar's
?job= is not the session's job), wrong job shown / stale page (the Train page shows another job, or
still shows the job as active a minute after it ended), model changed (the page switched models while
scoring), failed jobs. The exit code is 0 only when every session completed without one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import inputs, run_picker, texts  # noqa: E402
from benchmarks.appserver import APP_IDLE, CHROMIUM_ARGS, AppServer, chromium  # noqa: E402
from benchmarks.streamlit_client import StreamlitSession  # noqa: E402
from sentiment_core import runs  # noqa: E402
from sentiment_core.protocol import FINAL, JOB_FILE, JobState, read_job  # noqa: E402

REVIEWS = [
    "A dreadful, boring, awful waste of time. The worst film I have seen this year.",
    "One of the best films of the decade: moving, funny and beautifully acted.",
    "The plot was thin but the actors saved it, and the music was lovely.",
    "I wanted to like it, but it was slow, predictable and far too long.",
    "A charming little comedy with a great cast and a clever script.",
    "Terrible dialogue, wooden acting and a story that goes nowhere.",
]
EXCEPTION = "[data-testid='stException']"
# Done when the expected score is on the page, or when the page says it now uses another model (the
# selected run disappeared: another session deleted it, or artifacts/shipped changed under the server).
SHOWN = """([expected, model]) => [...document.querySelectorAll("[data-testid='stMetricValue']")]
    .some(e => e.innerText.trim() === expected) || ![...document.querySelectorAll(
    "[data-testid='stCaptionContainer']")].some(e => e.innerText.startsWith("Model: " + model + " "))"""
SCORE_SHOWN = """expected => [...document.querySelectorAll("[data-testid='stMetricValue']")]
    .some(e => e.innerText.trim() === expected)"""
MODEL = re.compile(r"^Model: (\S+) ")
MODEL_MARKDOWN = re.compile(r"^Model: \*\*(.+?)\*\*")  # the same caption as the protocol client reads it
STATE = re.compile(r"State:\s*\S+\s+(\w+)")  # 'State: <icon> <state> — <progress>' (markdown: '**' around)
STALE_AFTER = 60.0  # seconds a page may lag behind its job's final state before that counts as an error
STALE_PAGE = 5.0  # seconds after which a page that does not show its job's end counts as a stale page


# ---------------------------------------------------------------- measuring
class MemorySampler(threading.Thread):
    """Peak RSS of the server, of the sum of its children (job workers), and of both at once; and the CPU
    seconds used by the server, its workers and the load generator (this process, Playwright's driver
    and chromium), which shares the machine's cores with the server."""

    def __init__(self, pid: int, every: float = 0.5, workers: Callable[[], list[psutil.Process]] | None = None,
                 cluster: Callable[[], list[psutil.Process]] | None = None):
        super().__init__(daemon=True, name="rss-sampler")
        self.process, self.every = psutil.Process(pid), every
        self.workers = workers or (lambda: self.process.children(recursive=True))  # job workers (Ray: its tasks)
        self.cluster = cluster  # a Ray cluster's own processes, when jobs run there
        self.peak_server = self.peak_workers = self.peak_total = self.peak_worker = self.peak_cluster = 0
        self.peak_worker_count = 0
        self.samples = 0
        self.cpu: dict[str, dict[int, float]] = {"server": {}, "workers": {}, "load generator": {},
                                                 **({"ray cluster": {}} if cluster is not None else {})}
        self._halt = threading.Event()

    def _cpu(self, group: str, process: psutil.Process) -> None:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            self.cpu[group][process.pid] = times.user + times.system  # a process's own, not its children's

    def cpu_seconds(self) -> dict[str, float]:
        return {group: round(sum(by_pid.values()), 1) for group, by_pid in self.cpu.items()}

    def generator_cpu(self) -> float:
        """The load generator's CPU-seconds so far (as of the last sample, ended processes included)."""
        return sum(list(self.cpu["load generator"].values()))

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                server = self.process.memory_info().rss
                children = self.workers()
            except psutil.Error:
                break
            cluster = self.cluster() if self.cluster is not None else []
            if cluster:
                self.peak_cluster = max(self.peak_cluster, _rss(cluster))
                for process in cluster:
                    self._cpu("ray cluster", process)
            mine = {p.pid for p in cluster} | {p.pid for p in children}  # a Ray cluster's nodes are our children
            workers = 0
            for child in children:
                with contextlib.suppress(psutil.Error):  # it may have just ended
                    rss = child.memory_info().rss
                    workers += rss
                    self.peak_worker = max(self.peak_worker, rss)
                self._cpu("workers", child)
            self._cpu("server", self.process)
            me = psutil.Process()
            self._cpu("load generator", me)
            for child in me.children():  # Playwright's driver, and chromium under it; not the server
                if child.pid != self.process.pid and child.pid not in mine:
                    self._cpu("load generator", child)
                    with contextlib.suppress(psutil.Error):
                        for process in child.children(recursive=True):
                            self._cpu("load generator", process)
            self.peak_server = max(self.peak_server, server)
            self.peak_workers = max(self.peak_workers, workers)
            self.peak_total = max(self.peak_total, server + workers)
            self.peak_worker_count = max(self.peak_worker_count, len(children))
            self.samples += 1
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


class WatchMeter:
    """The server's own CPU while at least one session waits for its job, and the session-seconds spent
    waiting: their ratio is what a watching student costs. Called from the one event loop."""

    def __init__(self, pid: int, generator_cpu):
        self.process, self.generator_cpu = psutil.Process(pid), generator_cpu  # generator_cpu() -> CPU-seconds
        self.watching = 0
        self.cpu_s = self.own_cpu_s = self.session_s = 0.0  # the server's, the load generator's; session-seconds
        self._cpu0 = (0.0, 0.0)

    def _cpu(self) -> tuple[float, float]:
        try:
            server = self.process.cpu_times()
        except psutil.Error:
            return self._cpu0
        return server.user + server.system, self.generator_cpu()

    def start(self) -> float:
        if self.watching == 0:
            self._cpu0 = self._cpu()
        self.watching += 1
        return time.monotonic()

    def stop(self, started: float) -> None:
        self.session_s += time.monotonic() - started
        self.watching -= 1
        if self.watching == 0:
            server, me = self._cpu()
            self.cpu_s += server - self._cpu0[0]
            self.own_cpu_s += me - self._cpu0[1]

    @contextlib.contextmanager
    def watch(self):
        started = self.start()
        try:
            yield
        finally:
            self.stop(started)

    def per_session_minute(self, cpu_s: float) -> float | None:
        return round(cpu_s / (self.session_s / 60), 3) if self.session_s > 0 else None


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    page_latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    sessions_completed: int = 0
    stale_pages: int = 0  # sessions whose page lagged more than STALE_PAGE behind their job's end
    shown_after_end: list[float] = field(default_factory=list)  # job's `ended` to its final state shown

    def latency(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    def page(self, kind: str, seconds: float) -> None:
        self.page_latencies.setdefault(kind, []).append(seconds)

    def error(self, kind: str, detail: str) -> None:
        self.errors.setdefault(kind, []).append(detail[:300])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# ---------------------------------------------------------------- one student
class Scorer:
    """The score the app shows for a review with a given run, computed here on NumPy (cached per run)."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = runs_dir
        self._engines: dict[tuple[str, float], object] = {}

    def __call__(self, model: str, review: str) -> str:
        from sentiment_core.inference import Engine

        path = self.runs_dir / model if (self.runs_dir / model).is_dir() else runs.SHIPPED_DIR / model
        key = (str(path), (path / "manifest.json").stat().st_mtime)
        if key not in self._engines:
            self._engines[key] = Engine.from_run(runs.load_run(path))
        engine = self._engines[key]
        return f"{float(engine.predict(inputs.prepare_reviews([review], engine.config.truncating).texts)[0]):.1%}"


class Student:
    """What both kinds of session share: a name, a job, the reviews it types, and the job's file."""

    def __init__(self, index: int, args, server: AppServer, expected: Scorer, tally: Tally, jobs_dir: Path,
                 meter: WatchMeter | None = None):
        self.i, self.args, self.server = index, args, server
        self.expected, self.tally, self.jobs_dir, self.meter = expected, tally, jobs_dir, meter
        self.name = f"load-{index:03d}"
        self.job_id: str | None = None
        self.failed_at = ""
        self.shown = ""  # the score on the page now
        self.model = ""  # the run the page says it uses
        self.step = "starting"
        self.stale_counted = False
        self.page_prefix = "idle server: " if index < 0 else ""  # the baseline's pages are kept apart

    def page(self, kind: str, seconds: float) -> None:
        self.tally.page(self.page_prefix + kind, seconds)

    def review(self, k: int) -> str:
        """A review no other session sends (the app caches word shading per text, and real students
        type different things); consecutive ones score differently, so each result is unambiguous."""
        text = f"{REVIEWS[(self.i + k) % len(REVIEWS)]} Seen by student {self.i + 1} on day {k + 1}."
        while self.expected(self.model, text) == self.shown:
            text += " Really."
        return text

    def job_deadline(self) -> float:
        """When to give up waiting for this session's job. A queued job waits for every job before it (100
        tiny jobs two at a time: ~20 min), so it is the run's --timeout (which cuts every session anyway),
        not one step's."""
        return time.monotonic() + self.args.timeout

    def job(self):
        return read_job(self.jobs_dir / self.job_id / JOB_FILE) if self.job_id else None

    def job_state(self) -> str:
        job = self.job()
        return job.state if job else "unknown"

    def training_now(self) -> bool:
        """Whether any job on the server is running (read from the job files)."""
        jobs = map(read_job, self.jobs_dir.glob(f"*/{JOB_FILE}"))
        return any(job and job.state in (JobState.RUNNING, JobState.STOPPING) for job in jobs)

    def jobs_named(self) -> list[str]:
        return [job.id for job in map(read_job, self.jobs_dir.glob(f"*/{JOB_FILE}")) if job and job.name == self.name]

    def final_shown(self) -> None:
        """The page shows the job's final state now: how long after the job ended."""
        job = self.job()
        if job and job.ended:
            self.tally.shown_after_end.append(time.time() - job.ended)

    def other_job_shown(self, header: str, since: float | None, where: str = "") -> float | None:
        """Since when the Train page has shown another student's job (`header`: its "Job <id>: <name>"),
        or None while it shows this session's; past STALE_AFTER / 4 that is an error."""
        if not header or header.startswith(f"Job {self.job_id}: "):
            return None
        since = since or time.monotonic()
        if time.monotonic() - since > STALE_AFTER / 4:
            self.tally.error("wrong job shown", f"session {self.i}: its job is {self.job_id} ({self.name}) but "
                             f"the Train page shows {header!r}{where}")
            raise RuntimeError("stale page")
        return since

    def lagging(self) -> float | None:
        """Seconds since the job ended on disk (the page does not show it yet); counts a stale page once."""
        job = self.job()
        if not job or job.state not in FINAL or not job.ended:
            return None
        late = time.time() - job.ended
        if late > STALE_PAGE and not self.stale_counted:
            self.stale_counted = True
            self.tally.stale_pages += 1
        return late

    def watching(self):
        return self.meter.watch() if self.meter else contextlib.nullcontext()

    async def wait_quietly(self) -> None:
        """Stay on Predict without touching the page until the job file says the job ended."""
        self.step = "wait for the job (page left alone)"
        deadline = self.job_deadline()
        with self.watching():
            while self.job_state() not in FINAL:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {self.job_id} still {self.job_state()}")
                await asyncio.sleep(1)


class Session(Student):
    """A student in a browser tab (one Playwright context)."""

    def __init__(self, index: int, browser, args, server: AppServer, expected: Scorer, tally: Tally,
                 jobs_dir: Path, meter: WatchMeter | None = None):
        super().__init__(index, args, server, expected, tally, jobs_dir, meter)
        self.browser = browser
        self.js_errors: list[str] = []

    async def idle(self, page) -> None:
        await page.wait_for_timeout(300)
        await page.wait_for_selector(APP_IDLE, state="attached")

    async def check(self, page, where: str) -> None:
        count = await page.locator(EXCEPTION).count()
        if count:
            text = " | ".join(await page.locator(EXCEPTION).all_inner_texts())
            self.tally.error("stException", f"session {self.i} on {where}: {text}")
            raise RuntimeError(f"exception on {where}")

    async def navigate(self, page, title: str) -> None:
        started = time.monotonic()
        await page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
        await self.idle(page)
        await page.locator("h1").first.wait_for()
        self.page(f"{title} (open)", time.monotonic() - started)

    async def read_model(self, page) -> str:
        caption = page.locator("[data-testid='stCaptionContainer']", has_text="Model:").first
        await caption.wait_for()
        match = MODEL.match((await caption.inner_text()).strip())
        self.model = match.group(1) if match else ""
        return self.model

    async def await_score(self, page, review: str, kind: str, started: float, model: str) -> bool:
        """Wait for `review`'s score with `model`; False when the page switched to another model meanwhile."""
        expected = self.expected(model, review)
        while True:
            await page.wait_for_function(SHOWN, arg=[expected, model], polling=50)
            elapsed = time.monotonic() - started
            if await page.evaluate(SCORE_SHOWN, expected) or await self.read_model(page) != model:
                break  # else the caption was only being redrawn
        if self.model != model:
            self.tally.error("model changed", f"session {self.i}: the page switched from {model} to {self.model} "
                             "while scoring (its run disappeared)")
            self.shown = ""
            return False
        self.tally.latency(kind, elapsed)
        self.shown = expected
        return True

    async def predict_home(self, page, review: str, kind: str | None) -> None:
        model = await self.read_model(page)
        box = page.locator(".st-key-home_text textarea")
        await box.fill(review)
        if kind is None:
            kind = "home, under load, " + ("trainings running" if self.training_now() else "no training running")
        started = time.monotonic()
        await box.press("Control+Enter")
        await self.await_score(page, review, kind, started, model)
        await self.check(page, "Home")

    async def predict_page(self, page, review: str, kind: str | None = None) -> None:
        box = page.locator(".st-key-predict_text textarea")
        await box.fill(review)
        await box.press("Control+Enter")  # apply the text; the score comes with the button
        await self.idle(page)
        model = await self.read_model(page)
        if kind is None:
            kind = f"predict while job {self.job_state()}"
        started = time.monotonic()
        await page.locator(".st-key-predict_button button").filter(visible=True).first.click()
        if not await self.await_score(page, review, kind, started, model):
            return
        await page.locator("[data-testid='stMarkdownContainer'] span[title]").first.wait_for()  # word shading
        await self.check(page, "Predict")

    async def run(self) -> None:
        context = await self.browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(self.args.step_timeout * 1000)
        page = await context.new_page()
        page.on("pageerror", lambda error: self.js_errors.append(str(error)))
        try:
            await self.steps(page)
        except (Exception, asyncio.CancelledError) as error:
            self.failed_at = f"step {self.step!r}, url {page.url}, {type(error).__name__}"
            if self.args.keep:  # evidence: what the student would have seen
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(page.screenshot(path=str(self.args.keep / f"session-{self.i:03d}.png")),
                                           10)
            raise
        finally:
            for error in self.js_errors:
                self.tally.error("browser exception", f"session {self.i}: {error}")
            await context.close()

    async def steps(self, page) -> None:
        self.step = "open Home"
        await page.goto(self.server.url)
        await page.locator("[data-testid='stMetricValue']").nth(1).wait_for()  # the example review's score
        await self.idle(page)
        self.shown = self.expected(await self.read_model(page), texts.EXAMPLE_REVIEW)
        self.step = "predict on Home"
        await self.predict_home(page, self.review(0), None)

        self.step = "submit a job on Train"
        await self.navigate(page, "Train")
        slider = page.locator(".st-key-hp_epochs input[type=range]")
        await slider.press("Home")  # 1 epoch
        await self.idle(page)
        assert await slider.get_attribute("value") == "1"
        name = page.locator(".st-key-train_name input")
        await name.fill(self.name)
        await name.press("Enter")
        await self.idle(page)
        await page.locator(".st-key-train_button button").filter(visible=True).first.click()
        await page.wait_for_url(re.compile(r"[?&]job="))
        self.job_id = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query).get("job", [""])[0]
        await self.check(page, "Train")
        if not re.fullmatch(r"[0-9a-f]{12}", self.job_id) or self.job_state() == "unknown":
            mine = self.jobs_named()
            self.tally.error("bad job link", f"session {self.i}: the address bar says job={self.job_id!r} "
                             f"({page.url}); its job is {mine}")
            if self.args.keep:
                await page.screenshot(path=str(self.args.keep / f"session-{self.i:03d}-job-link.png"), full_page=True)
            self.job_id = mine[0] if mine else self.job_id

        self.step = "predict on Predict"
        await self.navigate(page, "Predict")
        self.shown = ""
        for k in range(self.args.predictions):
            if k and self.job_state() in FINAL:
                break
            await self.predict_page(page, self.review(k + 1))

        if self.args.watch == "none":
            await self.wait_quietly()
        else:
            await self.watch_on_train(page)
        self.tally.sessions_completed += 1

    async def watch_on_train(self, page) -> None:
        """Back to Train, watching the live job (state every 3 s, curves every 10.1 s) until the page says it ended."""
        self.step = "watch the job on Train"
        with self.watching():
            await self.navigate(page, "Train")
            match = await self.watch_page(page)
        if match.group(1) == "done":
            await page.get_by_text(f"The run is saved as {self.name}").wait_for()
        await self.check(page, "Train (job ended)")

    async def watch_page(self, page) -> re.Match:
        deadline = self.job_deadline()
        state_line = page.locator("[data-testid='stMarkdownContainer']", has_text="State:")
        header = page.locator("h3", has_text=re.compile(r"^Job \w+: "))
        ended_on_server = wrong_since = None
        while True:
            line = (await state_line.first.inner_text()) if await state_line.count() else ""
            shown = (await header.first.inner_text()) if await header.count() else ""
            wrong_since = self.other_job_shown(shown, wrong_since, f"; url {page.url}")
            match = STATE.search(line)
            if match and match.group(1) in FINAL and wrong_since is None:
                self.final_shown()
                return match
            self.lagging()
            if ended_on_server is None and self.job_state() in FINAL:
                ended_on_server = time.monotonic()
            if ended_on_server is not None and time.monotonic() - ended_on_server > STALE_AFTER:
                self.tally.error("stale page", f"session {self.i}: job {self.job_id} is {self.job_state()} "
                                 f"on the server, but {STALE_AFTER:.0f} s later the page still shows {line!r}")
                raise RuntimeError("stale page")
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {self.job_id} still {self.job_state()} on the page: {line!r}")
            await self.check(page, "Train (live job)")
            await page.wait_for_timeout(1000)


async def baseline(browser, args, server, expected, tally, jobs_dir) -> None:
    """The same predictions on an idle server, one session alone."""
    session = Session(-1, browser, args, server, expected, tally, jobs_dir)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(args.step_timeout * 1000)
    page = await context.new_page()
    try:
        await page.goto(server.url)
        await page.locator("[data-testid='stMetricValue']").nth(1).wait_for()
        await session.idle(page)
        session.shown = expected(await session.read_model(page), texts.EXAMPLE_REVIEW)
        for k in range(3):
            await session.predict_home(page, session.review(k), "home, idle server")
        await session.navigate(page, "Predict")
        session.shown = ""
        for k in range(3):
            await session.predict_page(page, session.review(k + 3), "predict, idle server")
    finally:
        await context.close()


# ---------------------------------------------------------------- one student, without a browser
class ProtocolSession(Student):
    """A student as a StreamlitSession (benchmarks/streamlit_client.py): the same steps, over the websocket."""

    def __init__(self, index: int, args, server: AppServer, expected: Scorer, tally: Tally, jobs_dir: Path,
                 meter: WatchMeter | None = None):
        super().__init__(index, args, server, expected, tally, jobs_dir, meter)
        self.client: StreamlitSession | None = None

    def check(self, where: str) -> None:
        """An exception on the page (or the client's own failure, e.g. a closed websocket) ends the session."""
        if self.client.exceptions:
            shown = [e for e in self.client.exceptions if not e.startswith("client: ")]
            self.tally.error("stException" if shown else "session error",
                             f"session {self.i} on {where}: {' | '.join(self.client.exceptions)}")
            raise RuntimeError(f"exception on {where}")

    def read_model(self) -> str:
        caption = self.client.find_text("Model: ") or ""
        match = MODEL_MARKDOWN.match(caption)
        self.model = match.group(1) if match else ""
        return self.model

    async def timed(self, page: str, action) -> None:
        self.page(page, await action)

    async def score(self, action, review: str, kind: str, page: str) -> bool:
        """Run `action` (a set or a click); the latency ends when `review`'s score is shown. False when the
        page switched to another model meanwhile."""
        model = self.read_model()
        expected = self.expected(model, review)
        client = self.client
        started = time.monotonic()
        task = asyncio.create_task(self.timed(page, action))
        try:
            shown_at = await client.wait_for(lambda: (any(v == expected for _, v in client.metrics())
                                                      or self.read_model() != model) and time.monotonic())
        finally:
            await task  # its own error first, if it had one
        if self.model != model:
            self.tally.error("model changed", f"session {self.i}: the page switched from {model} to {self.model} "
                             "while scoring (its run disappeared)")
            self.shown = ""
            return False
        self.tally.latency(kind, shown_at - started)
        self.shown = expected
        return True

    async def predict_home(self, review: str, kind: str | None) -> None:
        if kind is None:
            kind = "home, under load, " + ("trainings running" if self.training_now() else "no training running")
        await self.score(self.client.set("home_text", review), review, kind, "Home (score a review)")
        self.check("Home")

    async def predict_page(self, review: str, kind: str | None = None) -> None:
        await self.timed("Predict (type a review)", self.client.set("predict_text", review))
        if kind is None:
            kind = f"predict while job {self.job_state()}"
        scored = await self.score(self.client.click("predict_button"), review, kind, "Predict (score a review)")
        if scored and not any("<span" in t and "title=" in t for t in self.client.texts()):
            raise RuntimeError("no word shading on Predict")
        self.check("Predict")

    async def goto(self, page: str) -> None:
        await self.timed(f"{page} (open)", self.client.goto(page))
        self.check(page)

    async def run(self) -> None:
        self.client = StreamlitSession(self.server.url, timeout=self.args.step_timeout)
        try:
            await self.steps()
        except (Exception, asyncio.CancelledError) as error:
            self.failed_at = f"step {self.step!r}, {type(error).__name__}"
            raise
        finally:
            if self.args.keep and (self.failed_at or self.stale_counted):  # evidence: what the session saw
                lines = [*self.client.log, "page:", *self.client.texts()]
                (self.args.keep / f"session-{self.i:03d}.log").write_text("\n".join(lines), encoding="utf-8")
            await self.client.close()

    async def open_home(self) -> None:
        self.page("Home (open)", await self.client.connect())
        self.check("Home")
        self.shown = self.expected(self.read_model(), texts.EXAMPLE_REVIEW)

    async def steps(self) -> None:
        client = self.client
        self.step = "open Home"
        await self.open_home()
        self.step = "predict on Home"
        await self.predict_home(self.review(0), None)

        self.step = "submit a job on Train"
        await self.goto("Train")
        await self.timed("Train (set a value)", client.set("hp_epochs", 1))
        await self.timed("Train (set a value)", client.set("train_name", self.name))
        await self.timed("Train (submit)", client.click("train_button"))
        self.check("Train")
        self.job_id = urllib.parse.parse_qs(client.query_string).get("job", [""])[0]
        if not re.fullmatch(r"[0-9a-f]{12}", self.job_id) or self.job_state() == "unknown":
            mine = self.jobs_named()
            self.tally.error("bad job link", f"session {self.i}: the query string says job={self.job_id!r} "
                             f"({client.query_string!r}); its job is {mine}; page: {client.texts()[-3:]}")
            self.job_id = mine[0] if mine else self.job_id

        self.step = "predict on Predict"
        await self.goto("Predict")
        self.shown = ""
        for k in range(self.args.predictions):
            if k and self.job_state() in FINAL:
                break
            await self.predict_page(self.review(k + 1))

        if self.args.watch == "none":
            await self.wait_quietly()
        else:
            await self.watch_on_train()
        self.tally.sessions_completed += 1

    def page_state(self) -> tuple[str, str]:
        """(the job header, the state word) the Train page shows now."""
        header = next((t for t in self.client.texts() if re.match(r"^Job \w+: ", t)), "")
        match = STATE.search((self.client.find_text("State:") or "").replace("*", ""))
        return header, match.group(1) if match else ""

    async def watch_on_train(self) -> None:
        """Back to Train: the client reruns the live job every second and the jobs table every 5 s, as the
        page's fragments ask, until the page shows the job's final state."""
        self.step = "watch the job on Train"
        with self.watching():
            await self.goto("Train")
            state = await self.watch_page()
        if state == "done":  # the results come later in the same run
            saved = f"The run is saved as **{self.name}**"
            try:
                await self.client.wait_for(lambda: any(saved in t for t in self.client.texts()))
            except TimeoutError:
                raise RuntimeError(f"job {self.job_id} done, but the Train page does not name its run") from None
        self.check("Train (job ended)")

    async def watch_page(self) -> str:
        deadline = self.job_deadline()
        wrong_since = None
        seen = ("", "")  # the job's state on disk and on the page, for the session's log

        def ended_shown() -> bool:
            header, state = self.page_state()
            return header.startswith(f"Job {self.job_id}: ") and state in FINAL

        while True:
            with contextlib.suppress(TimeoutError):
                await self.client.wait_for(ended_shown, timeout=0.5)
            header, state = self.page_state()
            if (self.job_state(), state) != seen:
                seen = (self.job_state(), state)
                self.client.note(f"job {seen[0]} on disk, {seen[1] or '?'} on the page")
            if ended_shown():
                self.final_shown()
                return state
            wrong_since = self.other_job_shown(header, wrong_since)
            late = self.lagging()
            if late is not None and late > STALE_AFTER:
                self.tally.error("stale page", f"session {self.i}: job {self.job_id} is {self.job_state()} on "
                                 f"the server, but {late:.0f} s after it ended the page still shows {state!r}")
                raise RuntimeError("stale page")
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {self.job_id} still {self.job_state()}; the page shows {state!r}")
            self.check("Train (live job)")


async def protocol_baseline(args, server, expected, tally, jobs_dir) -> None:
    """The same predictions on an idle server, one protocol session alone."""
    session = ProtocolSession(-1, args, server, expected, tally, jobs_dir)
    session.client = StreamlitSession(server.url, timeout=args.step_timeout)
    try:
        await session.open_home()
        for k in range(3):
            await session.predict_home(session.review(k), "home, idle server")
        await session.goto("Predict")
        session.shown = ""
        for k in range(3):
            await session.predict_page(session.review(k + 3), "predict, idle server")
    finally:
        await session.client.close()


async def drive_protocol(args, server: AppServer, expected, tally: Tally, jobs_dir: Path, meter: WatchMeter) -> None:
    await protocol_baseline(args, server, expected, tally, jobs_dir)
    students = [ProtocolSession(i, args, server, expected, tally, jobs_dir, meter) for i in range(args.sessions)]
    try:
        await run_all(students, args, tally)
    finally:
        for student in students:  # the live fragments' latencies, from every client
            for interval, seconds in (student.client.fragment_seconds if student.client else {}).items():
                for value in seconds:
                    tally.page(f"Train (live fragment, every {interval:g} s)", value)


async def run_all(students: list[Student], args, tally: Tally) -> None:
    """Start each student --stagger seconds after the last; cut them all at --timeout."""

    async def one(student: Student) -> None:
        await asyncio.sleep(student.i * args.stagger)
        try:
            await student.run()
        except asyncio.CancelledError:
            tally.error("timeout", f"session {student.i}: cancelled at the total timeout; {student.failed_at}")
            raise
        except Exception as error:
            if str(error) == "stale page":
                return  # already counted
            kind = "timeout" if "Timeout" in type(error).__name__ else "session error"
            tally.error(kind, f"session {student.i}: {student.failed_at}: {type(error).__name__} {str(error)[:200]}")

    tasks = [asyncio.create_task(one(s)) for s in students]
    _, pending = await asyncio.wait(tasks, timeout=args.timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def drive(args, server: AppServer, expected, tally: Tally, jobs_dir: Path, meter: WatchMeter) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            await baseline(browser, args, server, expected, tally, jobs_dir)
            await run_all([Session(i, browser, args, server, expected, tally, jobs_dir, meter)
                           for i in range(args.sessions)], args, tally)
        finally:
            await browser.close()


# ---------------------------------------------------------------- after the run
def job_summary(jobs_dir: Path) -> dict:
    paths = list(jobs_dir.glob(f"*/{JOB_FILE}"))
    jobs = [job for job in map(read_job, paths) if job]
    waits = [j.started - j.submitted for j in jobs if j.started and j.submitted]
    durations = [j.ended - j.started for j in jobs if j.ended and j.started]
    states: dict[str, int] = {}
    for job in jobs:
        states[job.state] = states.get(job.state, 0) + 1
    if len(jobs) < len(paths):
        states["unreadable"] = len(paths) - len(jobs)
    lost = []
    for job in jobs:
        if job.state != JobState.DONE:
            continue
        try:
            if not job.run:
                raise runs.RunError("no run recorded")
            runs.load_run(job.run)
        except runs.RunError as error:
            lost.append(f"{job.name}: {error}")
    failed = [f"{j.name}: {j.error}" for j in jobs if j.state == JobState.FAILED]
    return {"submitted": len(paths), "states": states, "queue_waits": waits, "durations": durations,
            "lost": lost, "failed": failed}


def fmt(value: float | None, unit: str = "s") -> str:
    return "–" if value is None else f"{value:.2f} {unit}"


def stats(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}


def _rss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


def report(args, tally: Tally, jobs: dict, sampler: MemorySampler, meter: WatchMeter, wall: float) -> dict:
    mib = 1024 * 1024
    lat = {kind: stats(v) for kind, v in sorted(tally.latencies.items())}
    pages = {kind: stats(v) for kind, v in sorted(tally.page_latencies.items())}
    after_end = {**stats(tally.shown_after_end), "max": max(tally.shown_after_end, default=None)}
    done = jobs["states"].get("done", 0)
    errors = {kind: len(v) for kind, v in tally.errors.items()}
    errors["failed jobs"] = len(jobs["failed"])
    result = {
        "sessions": args.sessions, "sessions_completed": tally.sessions_completed, "watch": args.watch,
        "max_trainings": args.max_trainings, "jobs_submitted": jobs["submitted"], "jobs_done": done,
        "job_states": jobs["states"], "errors": errors,
        "queue_wait_p50_s": percentile(jobs["queue_waits"], 50),
        "queue_wait_p95_s": percentile(jobs["queue_waits"], 95),
        "job_run_p50_s": percentile(jobs["durations"], 50), "latency_s": lat,
        "peak_rss_server_mib": round(sampler.peak_server / mib),
        "peak_rss_workers_mib": round(sampler.peak_workers / mib),
        "peak_rss_total_mib": round(sampler.peak_total / mib), "peak_workers": sampler.peak_worker_count,
        "lost_runs": len(jobs["lost"]), "wall_s": round(wall, 1), "cores": os.cpu_count(),
        "cpu_s": sampler.cpu_seconds(),
        "client": args.client, "server_cpu_s_per_session_min": meter.per_session_minute(meter.cpu_s),
        "watching_session_min": round(meter.session_s / 60, 1), "server_cpu_s_watching": round(meter.cpu_s, 1),
        "stale_pages": tally.stale_pages, "final_state_shown_after_end_s": after_end,
        "page_latency_s": pages, "peak_rss_worker_mib": round(sampler.peak_worker / mib),
        "load_generator_cpu_s": sampler.cpu_seconds()["load generator"],
        "load_generator_cpu_s_per_session_min": meter.per_session_minute(meter.own_cpu_s),
        "runner": args.runner, "jobs_per_min": round(done / (wall / 60), 2) if wall else None,
        "peak_rss_ray_cluster_mib": round(sampler.peak_cluster / mib) if args.runner == "ray" else None,
    }
    rows = [
        ("sessions (completed every step)", f"{args.sessions} ({tally.sessions_completed})"),
        ("client", "Streamlit protocol (benchmarks/streamlit_client.py)" if args.client == "protocol"
         else "chromium through Playwright"),
        ("waiting for the job", "on Train, live" if args.watch == "train" else "on Predict, page left alone"),
        ("trainings at once (SENTIMENT_MAX_TRAININGS)", str(args.max_trainings)),
        ("where jobs run (SENTIMENT_RUNNER)", "local worker processes" if args.runner == "local" else
         f"Ray: {args.max_trainings} worker nodes with one trainer each, on 127.0.0.2"),
        ("jobs done per minute (over the wall time)", f"{result['jobs_per_min']:.2f}"),
        ("jobs submitted / done", f"{jobs['submitted']} / {done}"),
        ("job final states", ", ".join(f"{k} {v}" for k, v in sorted(jobs["states"].items()))),
        ("errors", ", ".join(f"{k} {v}" for k, v in errors.items() if v) or "none"),
        ("queue wait p50 / p95", f"{fmt(result['queue_wait_p50_s'])} / {fmt(result['queue_wait_p95_s'])}"),
        ("job run time p50 (start to saved)", fmt(result["job_run_p50_s"])),
    ]
    for kind, row in lat.items():
        rows.append((f"latency: {kind} (n={row['n']}) p50 / p95", f"{fmt(row['p50'])} / {fmt(row['p95'])}"))
    for kind, row in pages.items():
        rows.append((f"page: {kind} (n={row['n']}) p50 / p95", f"{fmt(row['p50'])} / {fmt(row['p95'])}"))
    rows += [
        ("stale pages (job ended, page still not showing it 5 s later)", str(tally.stale_pages)),
        (f"job end to final state shown (n={after_end['n']}) p50 / p95 / max",
         f"{fmt(after_end['p50'])} / {fmt(after_end['p95'])} / {fmt(after_end['max'])}"),
        ("server CPU per session-minute watching a job",
         f"{fmt(result['server_cpu_s_per_session_min'])} ({result['server_cpu_s_watching']} CPU-s over "
         f"{result['watching_session_min']} session-min)"),
        ("load generator CPU: in all; per session-minute watching",
         f"{fmt(result['load_generator_cpu_s'])}; {fmt(result['load_generator_cpu_s_per_session_min'])}"),
    ]
    rows += [
        ("peak RSS server", f"{result['peak_rss_server_mib']} MiB"),
        (f"peak RSS job workers (sum, up to {sampler.peak_worker_count} at once)",
         f"{result['peak_rss_workers_mib']} MiB"),
        ("peak RSS server + workers", f"{result['peak_rss_total_mib']} MiB"),
        ("peak RSS of one job worker", f"{result['peak_rss_worker_mib']} MiB"),
        *([("peak RSS of the Ray cluster's own processes (all nodes)", f"{result['peak_rss_ray_cluster_mib']} MiB")]
          if args.runner == "ray" else []),
        ("lost runs (done, but the run does not load)", str(len(jobs["lost"]))),
        ("wall time", f"{wall:.0f} s"),
        (f"CPU seconds used (of {wall * (os.cpu_count() or 1):.0f} = wall x {os.cpu_count()} cores)",
         ", ".join(f"{group} {seconds:.0f}" for group, seconds in result["cpu_s"].items())),
    ]
    print("\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    for kind, details in sorted(tally.errors.items()):
        for detail in details[:5]:
            print(f"  {kind}: {detail}", file=sys.stderr)
    for detail in jobs["failed"][:5] + jobs["lost"][:5]:
        print(f"  job: {detail}", file=sys.stderr)
    print(json.dumps(result))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30, help="sessions (students), 1 to 100")
    parser.add_argument("--client", choices=["protocol", "browser"],
                        help="protocol: Streamlit websocket clients (default above 8 sessions); browser: chromium "
                             "tabs through Playwright (default up to 8), the end-to-end check")
    parser.add_argument("--max-trainings", type=int, default=os.cpu_count() or 1,
                        help="SENTIMENT_MAX_TRAININGS for the server (default: number of cores)")
    parser.add_argument("--runner", choices=["local", "ray"], default="local",
                        help="where jobs run: local worker processes (default) or a Ray cluster started here "
                             "on 127.0.0.2 with --max-trainings worker nodes (needs requirements-ray.txt)")
    parser.add_argument("--predictions", type=int, default=3, help="Predict-page scores per session (1 to 3)")
    parser.add_argument("--stagger", type=float, default=0.5, help="seconds between session starts")
    parser.add_argument("--timeout", type=float, default=900,
                        help="total seconds for all sessions (100 sessions: 2400; their jobs take ~20 min)")
    parser.add_argument("--step-timeout", type=float, default=180, help="seconds for one step")
    parser.add_argument("--watch", choices=["train", "none"], default="train",
                        help="train: each session watches its live job on Train (state every 3 s, curves every 10.1 s) "
                             "until it ends; none: it stays on Predict and this script polls the job file")
    parser.add_argument("--json-out", type=Path, help="also write the JSON result here")
    parser.add_argument("--keep", type=Path, help="keep the server's folder (log, jobs, runs) here, and the "
                        "screenshot (browser) or recent reruns and page text (protocol) of sessions that failed")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 100 or not 1 <= args.predictions <= 3 or args.timeout > 3600:
        parser.error("--sessions 1..100, --predictions 1..3, --timeout at most 3600")
    args.client = args.client or ("browser" if args.sessions <= 8 else "protocol")
    if args.client == "browser" and args.sessions > 8:
        print(f"note: {args.sessions} browser sessions: chromium will use more CPU than the server "
              "(--client protocol measures the server alone)", file=sys.stderr)
    if args.client == "browser" and chromium() is None:
        sys.exit("no chromium at /usr/bin/chromium (apt-get install chromium, or set CHROMIUM)")
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sentiment-load-"))
    model = run_picker.default_run(runs.list_runs(base / "runs", runs.SHIPPED_DIR))  # what the server will pick
    if model is None or not str(model).startswith(str(runs.SHIPPED_DIR)):
        sys.exit("no shipped run in artifacts/shipped: the sessions need the app's default model")

    expected = Scorer(base / "runs")

    started = time.monotonic()
    env, cluster, workers, daemons = {"SENTIMENT_MAX_TRAININGS": str(args.max_trainings)}, None, None, None
    if args.runner == "ray":
        from benchmarks.ray_cluster import LocalCluster

        cluster = LocalCluster.start(base / "ray", workers=args.max_trainings)
        env.update(cluster.env, SENTIMENT_RUNNER="ray", SENTIMENT_RAY_ADDRESS=cluster.address)
        workers = cluster.task_workers

        def daemons() -> list[psutil.Process]:
            tasks = {p.pid for p in cluster.task_workers()}
            return [p for p in cluster.processes() if p.pid not in tasks]
    try:
        server = AppServer.start(base, env=env)
    except BaseException:
        if cluster is not None:
            cluster.stop()
        raise
    sampler = MemorySampler(server.process.pid, workers=workers, cluster=daemons)
    sampler.start()
    meter = WatchMeter(server.process.pid, sampler.generator_cpu)
    tally = Tally()
    try:
        run = drive_protocol if args.client == "protocol" else drive
        asyncio.run(run(args, server, expected, tally, base / "jobs", meter))
    except KeyboardInterrupt:
        tally.error("interrupted", "Ctrl+C")
    finally:
        wall = time.monotonic() - started
        sampler.stop()
        jobs = job_summary(base / "jobs")  # before stopping: stop() would not change a job.json anyway
        server.stop()
        if cluster is not None:
            cluster.stop()
    result = report(args, tally, jobs, sampler, meter, wall)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    ok = not tally.errors and not jobs["failed"] and not jobs["lost"] and tally.sessions_completed == args.sessions
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
