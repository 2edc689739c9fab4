"""A classroom in one command: N browser sessions predicting and training at once on one app server.

    python benchmarks/loadtest.py --sessions 3        # smoke run, about a minute
    python benchmarks/loadtest.py                     # 30 sessions, bounded by --timeout (15 min)

Localhost only, bounded in sessions and time. It starts its own server (runs, jobs and data cache in a
temporary folder; SENTIMENT_MAX_TRAININGS = --max-trainings, default the number of cores) and drives
it from ONE headless Debian chromium with one browser context (= one Streamlit session) per student,
started --stagger seconds apart. Each session:

1. opens Home and scores a review typed in its text box (latency: from Ctrl+Enter to the score shown);
2. goes to Train and submits a tiny job (tiny preset, 1 epoch, bundled sample, its own run name);
3. goes to Predict and scores --predictions reviews while its job is queued or running (latency: from
   the Predict click to the score shown; each is tagged with its job's state at that moment);
4. goes back to Train and watches the live job until it ends, as a student would (--watch none: stays
   on Predict, page left alone, while this script polls the job's file).

Before the sessions, one session scores the same reviews on the idle server: the baseline.
Every expected score is computed here with the same model on NumPy, so a latency ends when exactly that
value is on the page. A sampler thread records the resident memory of the server and of its job workers
every 0.5 s. At the end the job.json files give queue waits and final states, and every finished job's
run must load with sentiment_core.runs.load_run ("lost runs" otherwise). Prints a markdown table and
one JSON line. Needs a shipped run in artifacts/shipped (the app's default model).

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
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import inputs, run_picker, texts  # noqa: E402
from benchmarks.appserver import APP_IDLE, CHROMIUM_ARGS, AppServer, chromium  # noqa: E402
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
STALE_AFTER = 60.0  # seconds a page may lag behind its job's final state before that counts as an error


# ---------------------------------------------------------------- measuring
class MemorySampler(threading.Thread):
    """Peak RSS of the server, of the sum of its children (job workers), and of both at once; and the CPU
    seconds used by the server, its workers and the load generator (this process, Playwright's driver
    and chromium), which shares the machine's cores with the server."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True, name="rss-sampler")
        self.process, self.every = psutil.Process(pid), every
        self.peak_server = self.peak_workers = self.peak_total = 0
        self.peak_worker_count = 0
        self.samples = 0
        self.cpu: dict[str, dict[int, float]] = {"server": {}, "workers": {}, "load generator": {}}
        self._halt = threading.Event()

    def _cpu(self, group: str, process: psutil.Process) -> None:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            self.cpu[group][process.pid] = times.user + times.system  # a process's own, not its children's

    def cpu_seconds(self) -> dict[str, float]:
        return {group: round(sum(by_pid.values()), 1) for group, by_pid in self.cpu.items()}

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                server = self.process.memory_info().rss
                children = self.process.children(recursive=True)
            except psutil.Error:
                break
            workers = 0
            for child in children:
                with contextlib.suppress(psutil.Error):  # it may have just ended
                    workers += child.memory_info().rss
                self._cpu("workers", child)
            self._cpu("server", self.process)
            me = psutil.Process()
            self._cpu("load generator", me)
            for child in me.children():  # Playwright's driver, and chromium under it; not the server
                if child.pid != self.process.pid:
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


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    sessions_completed: int = 0

    def latency(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

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


class Session:
    def __init__(self, index: int, browser, args, server: AppServer, expected: Scorer, tally: Tally,
                 jobs_dir: Path):
        self.i, self.browser, self.args, self.server = index, browser, args, server
        self.expected, self.tally, self.jobs_dir = expected, tally, jobs_dir
        self.name = f"load-{index:03d}"
        self.job_id: str | None = None
        self.js_errors: list[str] = []
        self.failed_at = ""
        self.shown = ""  # the score on the page now
        self.model = ""  # the run the page says it uses
        self.step = "starting"

    def review(self, k: int) -> str:
        """A review no other session sends (the app caches word shading per text, and real students
        type different things); consecutive ones score differently, so each result is unambiguous."""
        text = f"{REVIEWS[(self.i + k) % len(REVIEWS)]} Seen by student {self.i + 1} on day {k + 1}."
        while self.expected(self.model, text) == self.shown:
            text += " Really."
        return text

    def job_state(self) -> str:
        job = read_job(self.jobs_dir / self.job_id / JOB_FILE) if self.job_id else None
        return job.state if job else "unknown"

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
        await page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
        await self.idle(page)
        await page.locator("h1").first.wait_for()

    def training_now(self) -> bool:
        """Whether any job on the server is running (read from the job files)."""
        jobs = map(read_job, self.jobs_dir.glob(f"*/{JOB_FILE}"))
        return any(job and job.state in (JobState.RUNNING, JobState.STOPPING) for job in jobs)

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
            mine = [job.id for job in map(read_job, self.jobs_dir.glob(f"*/{JOB_FILE}"))
                    if job and job.name == self.name]
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

    async def wait_quietly(self) -> None:
        """Stay on Predict without touching the page until the job file says the job ended."""
        self.step = "wait for the job (page left alone)"
        deadline = time.monotonic() + self.args.step_timeout * 5
        while self.job_state() not in FINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {self.job_id} still {self.job_state()}")
            await asyncio.sleep(1)

    async def watch_on_train(self, page) -> None:
        """Back to Train, watching the live job (charts redrawn every second) until the page says it ended."""
        self.step = "watch the job on Train"
        await self.navigate(page, "Train")
        deadline = time.monotonic() + self.args.step_timeout * 5
        state_line = page.locator("[data-testid='stMarkdownContainer']", has_text="State:")
        header = page.locator("h3", has_text=re.compile(r"^Job \w+: "))
        ended_on_server = wrong_since = None
        while True:
            line = (await state_line.first.inner_text()) if await state_line.count() else ""
            shown = (await header.first.inner_text()) if await header.count() else ""
            if shown and not shown.startswith(f"Job {self.job_id}: "):  # another student's job
                wrong_since = wrong_since or time.monotonic()
                if time.monotonic() - wrong_since > STALE_AFTER / 4:
                    self.tally.error("wrong job shown", f"session {self.i}: its job is {self.job_id} "
                                     f"({self.name}) but the Train page shows {shown!r}; url {page.url}")
                    raise RuntimeError("stale page")
            else:
                wrong_since = None
            match = re.search(r"State:\s*\S+\s+(\w+)", line)  # 'State: <icon> <state> — <progress>'
            if match and match.group(1) in FINAL and wrong_since is None:
                break
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
        if match.group(1) == "done":
            await page.get_by_text(f"The run is saved as {self.name}").wait_for()
        await self.check(page, "Train (job ended)")


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


async def drive(args, server: AppServer, expected, tally: Tally, jobs_dir: Path) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            await baseline(browser, args, server, expected, tally, jobs_dir)
            sessions = [Session(i, browser, args, server, expected, tally, jobs_dir) for i in range(args.sessions)]

            async def one(session: Session) -> None:
                await asyncio.sleep(session.i * args.stagger)
                try:
                    await session.run()
                except asyncio.CancelledError:
                    tally.error("timeout", f"session {session.i}: cancelled at the total timeout; "
                                f"{session.failed_at}")
                    raise
                except Exception as error:
                    if str(error) == "stale page":
                        return  # already counted
                    kind = "timeout" if "Timeout" in type(error).__name__ else "session error"
                    tally.error(kind, f"session {session.i}: {session.failed_at}: {str(error)[:200]}")

            tasks = [asyncio.create_task(one(s)) for s in sessions]
            _, pending = await asyncio.wait(tasks, timeout=args.timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
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


def report(args, tally: Tally, jobs: dict, sampler: MemorySampler, wall: float) -> dict:
    mib = 1024 * 1024
    lat = {kind: {"n": len(v), "p50": percentile(v, 50), "p95": percentile(v, 95)}
           for kind, v in sorted(tally.latencies.items())}
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
    }
    rows = [
        ("sessions (completed every step)", f"{args.sessions} ({tally.sessions_completed})"),
        ("waiting for the job", "on Train, live" if args.watch == "train" else "on Predict, page left alone"),
        ("trainings at once (SENTIMENT_MAX_TRAININGS)", str(args.max_trainings)),
        ("jobs submitted / done", f"{jobs['submitted']} / {done}"),
        ("job final states", ", ".join(f"{k} {v}" for k, v in sorted(jobs["states"].items()))),
        ("errors", ", ".join(f"{k} {v}" for k, v in errors.items() if v) or "none"),
        ("queue wait p50 / p95", f"{fmt(result['queue_wait_p50_s'])} / {fmt(result['queue_wait_p95_s'])}"),
        ("job run time p50 (start to saved)", fmt(result["job_run_p50_s"])),
    ]
    for kind, stats in lat.items():
        rows.append((f"latency: {kind} (n={stats['n']}) p50 / p95", f"{fmt(stats['p50'])} / {fmt(stats['p95'])}"))
    rows += [
        ("peak RSS server", f"{result['peak_rss_server_mib']} MiB"),
        (f"peak RSS job workers (sum, up to {sampler.peak_worker_count} at once)",
         f"{result['peak_rss_workers_mib']} MiB"),
        ("peak RSS server + workers", f"{result['peak_rss_total_mib']} MiB"),
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
    parser.add_argument("--sessions", type=int, default=30, help="browser sessions (students), 1 to 100")
    parser.add_argument("--max-trainings", type=int, default=os.cpu_count() or 1,
                        help="SENTIMENT_MAX_TRAININGS for the server (default: number of cores)")
    parser.add_argument("--predictions", type=int, default=3, help="Predict-page scores per session (1 to 3)")
    parser.add_argument("--stagger", type=float, default=0.5, help="seconds between session starts")
    parser.add_argument("--timeout", type=float, default=900, help="total seconds for all sessions")
    parser.add_argument("--step-timeout", type=float, default=180, help="seconds for one browser step")
    parser.add_argument("--watch", choices=["train", "none"], default="train",
                        help="train: each session watches its live job on Train (charts redrawn every second) "
                             "until it ends; none: it stays on Predict and this script polls the job file")
    parser.add_argument("--json-out", type=Path, help="also write the JSON result here")
    parser.add_argument("--keep", type=Path, help="keep the server's folder (log, jobs, runs) here")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 100 or not 1 <= args.predictions <= 3 or args.timeout > 3600:
        parser.error("--sessions 1..100, --predictions 1..3, --timeout at most 3600")
    if chromium() is None:
        sys.exit("no chromium at /usr/bin/chromium (apt-get install chromium, or set CHROMIUM)")
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sentiment-load-"))
    model = run_picker.default_run(runs.list_runs(base / "runs", runs.SHIPPED_DIR))  # what the server will pick
    if model is None or not str(model).startswith(str(runs.SHIPPED_DIR)):
        sys.exit("no shipped run in artifacts/shipped: the sessions need the app's default model")

    expected = Scorer(base / "runs")

    started = time.monotonic()
    server = AppServer.start(base, env={"SENTIMENT_MAX_TRAININGS": str(args.max_trainings)})
    sampler = MemorySampler(server.process.pid)
    sampler.start()
    tally = Tally()
    try:
        asyncio.run(drive(args, server, expected, tally, base / "jobs"))
    except KeyboardInterrupt:
        tally.error("interrupted", "Ctrl+C")
    finally:
        wall = time.monotonic() - started
        sampler.stop()
        jobs = job_summary(base / "jobs")  # before stopping: stop() would not change a job.json anyway
        server.stop()
    result = report(args, tally, jobs, sampler, wall)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    ok = not tally.errors and not jobs["failed"] and not jobs["lost"] and tally.sessions_completed == args.sessions
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
