"""What watching a training live costs the server, and how soon a page shows that it ended.

N sessions of Streamlit's websocket protocol (benchmarks/streamlit_client.py, as a browser tab speaks
it) each open the Train page on a job of their own and keep watching while the job's events arrive at
a worker's pace. The jobs are synthetic (their events are written here, through the job protocol), so
the only process doing work is the app server, and its CPU is what is measured: per watching session,
as a share of one core and as CPU-seconds per session-minute. Then the jobs end, two at a time (as on
a server that trains two at once) a second apart while the other pages go on watching, and each
page is timed until it shows the final state ("stale" past 5 s).

    python benchmarks/watch_cost.py [--sessions 30] [--seconds 60] [--batches-per-second 8]

Prints one line of figures and, with --json-out, writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from appserver import AppServer  # noqa: E402
from streamlit_client import StreamlitSession  # noqa: E402

from sentiment_core.config import PRESETS  # noqa: E402
from sentiment_core.protocol import (  # noqa: E402
    EVENTS_FILE,
    JOB_FILE,
    RESULT_FILE,
    BatchEvent,
    EndEvent,
    EpochEvent,
    Job,
    JobState,
    StartEvent,
    read_job,
    write_atomic,
)

STALE_AFTER = 5.0  # seconds from a job's end to its final state on the page
REVIEWS = ["A wonderful, moving film with a great cast and a story that stays with you.",
           "Dreadful and boring, a waste of two hours; the plot makes no sense at all.",
           "Not bad at all: the second half drags, but the acting is excellent."]


def p95(values: list[float]) -> float | None:
    """The 95th percentile, as the value at that rank (None for no values)."""
    return round(sorted(values)[int(0.95 * (len(values) - 1))], 3) if values else None


class SyntheticJobs:
    """Running jobs whose events are appended here, at a worker's pace, as a training would write them."""

    def __init__(self, jobs_dir: Path, count: int, rate: float, steps_per_epoch: int = 32, epochs: int = 50):
        self.jobs_dir, self.rate, self.steps, self.epochs = jobs_dir, rate, steps_per_epoch, epochs
        self.ids = [f"watch{k:03d}" for k in range(count)]
        self.step = 0
        self._stop = threading.Event()
        now = time.time()
        for job_id in self.ids:
            folder = jobs_dir / job_id
            folder.mkdir(parents=True)
            write_atomic(folder / JOB_FILE, Job(
                id=job_id, owner=f"owner-{job_id}", name=job_id, data="sample", config=PRESETS["tiny"].to_dict(),
                state=JobState.RUNNING, submitted=now, started=now).to_json())
            self._append(job_id, [StartEvent(epochs=epochs, steps_per_epoch=steps_per_epoch,
                                             samples=steps_per_epoch * 64, parameters=40_000)])
        self._thread = threading.Thread(target=self._feed, daemon=True)

    def _append(self, job_id: str, events: list) -> None:
        with open(self.jobs_dir / job_id / EVENTS_FILE, "a", encoding="utf-8") as f:
            f.write("".join(event.to_json() + "\n" for event in events))

    def _feed(self) -> None:
        while not self._stop.wait(1 / self.rate):
            self.step += 1
            epoch, within = divmod(self.step - 1, self.steps)
            events = [BatchEvent(epoch=epoch + 1, step=within + 1, global_step=self.step,
                                 loss=0.7 / self.step ** 0.2, accuracy=1 - 0.5 / self.step ** 0.1,
                                 seconds=self.step / self.rate)]
            if within + 1 == self.steps:
                events.append(EpochEvent(epoch=epoch + 1, loss=0.5, accuracy=0.75, val_loss=0.55,
                                         val_accuracy=0.72, seconds=self.steps / self.rate))
            for job_id in self.ids:
                self._append(job_id, events)

    def start(self) -> None:
        self._thread.start()

    def stop_feeding(self) -> None:
        self._stop.set()
        self._thread.join()

    def end(self, job_ids: list[str]) -> float:
        """These jobs end as a worker ends one (end event, result, record); returns when."""
        ended = time.time()
        for job_id in job_ids:
            folder = self.jobs_dir / job_id
            self._append(job_id, [EndEvent(stopped_early=False, stopped_by_user=False, best_epoch=1, seconds=60.0)])
            write_atomic(folder / RESULT_FILE, json.dumps({"state": "done"}))
            job = read_job(folder / JOB_FILE)
            write_atomic(folder / JOB_FILE, job.replace(state=JobState.DONE, ended=ended).to_json())
        return ended


def shows(session: StreamlitSession, state: str) -> bool:
    return any(text.startswith("State:") and state in text for text in session.texts())


async def keep_training(server: AppServer, until: float, done: list[str]) -> None:
    """A student who trains the Train page's default (tiny, on the sample) again and again until `until`,
    watching each job live: a real worker process on the server, as in class."""
    async with StreamlitSession(f"{server.url}/train", timeout=300) as s:
        while time.monotonic() < until:
            await s.click("train_button")
            try:
                await s.wait_for(lambda: any(shows(s, st) for st in ("done", "failed", "stopped")),
                                 timeout=max(until - time.monotonic(), 1) + 120)
            except (TimeoutError, ConnectionError):
                return
            done.append(next(t for t in s.texts() if t.startswith("State:")))


async def keep_predicting(server: AppServer, until: float, seconds: list[float]) -> None:
    """A visitor on Predict who scores a review every couple of seconds; each score's latency, from the
    click to the page showing it."""
    async with StreamlitSession(f"{server.url}/predict", timeout=120) as s:
        k = 0
        while time.monotonic() < until:
            await s.set("predict_text", REVIEWS[k % len(REVIEWS)])
            started = time.monotonic()
            await s.click("predict_button")
            if any(label == "Probability positive" for label, _ in s.metrics()):
                seconds.append(time.monotonic() - started)
            k += 1
            await asyncio.sleep(2)


async def watch(server: AppServer, sessions: int, seconds: float, warmup: float = 10.0,
                batches_per_second: float = 8.0, stagger: float = 0.1, debug: bool = False,
                trainings: int = 0, predicting: int = 0, ending_together: int = 2, ending_every: float = 1.0) -> dict:
    """Figures for `sessions` pages watching their jobs for `seconds` (after `warmup`), then the jobs' end,
    `ending_together` every `ending_every` seconds. Meanwhile `trainings` students train real models and
    `predicting` visitors score reviews on Predict."""
    # The job manager is made at the Train page's first drawing, and marks jobs it finds running as
    # interrupted (a server restart): open the page once before the jobs exist.
    async with StreamlitSession(f"{server.url}/train", timeout=120):
        pass
    jobs = SyntheticJobs(server.base / "jobs", sessions, batches_per_second)
    process = psutil.Process(server.process.pid)
    me = psutil.Process()
    sessions = [StreamlitSession(f"{server.url}/train?job={job_id}", timeout=120) for job_id in jobs.ids]
    for session in sessions:
        await session.connect()
        await asyncio.sleep(stagger)
    for session in sessions:
        await session.wait_for(lambda s=session: shows(s, "running"), timeout=60)
    jobs.start()
    until = time.monotonic() + warmup + seconds
    trained, predicted = [], []
    memory = {"server": 0, "worker": 0, "together": 0}

    async def sample_memory() -> None:
        """Peaks of the server's resident memory, the largest worker's, and all of them together."""
        while True:
            with contextlib.suppress(psutil.Error):
                server_rss = process.memory_info().rss
                workers = [c.memory_info().rss for c in process.children(recursive=True)]
                for key, value in (("server", server_rss), ("worker", max(workers, default=0)),
                                   ("together", server_rss + sum(workers))):
                    memory[key] = max(memory[key], value)
            await asyncio.sleep(0.5)

    sampling = asyncio.create_task(sample_memory())
    others = [asyncio.create_task(keep_training(server, until, trained)) for _ in range(trainings)]
    others += [asyncio.create_task(keep_predicting(server, until, predicted)) for _ in range(predicting)]
    await asyncio.sleep(warmup)
    for session in sessions:
        session.fragment_seconds.clear()
    cpu0, own0, t0 = sum(process.cpu_times()[:2]), sum(me.cpu_times()[:2]), time.monotonic()
    bytes0 = sum(s.bytes_in for s in sessions)
    await asyncio.sleep(seconds)
    cpu1, own1, t1 = sum(process.cpu_times()[:2]), sum(me.cpu_times()[:2]), time.monotonic()
    bytes1 = sum(s.bytes_in for s in sessions)
    by_interval: dict[float, list[float]] = {}  # a fragment's run_every -> its auto-reruns' latencies
    for s in sessions:
        for interval, xs in s.fragment_seconds.items():
            by_interval.setdefault(interval, []).extend(xs)
    latencies = [x for xs in by_interval.values() for x in xs]
    await asyncio.gather(*others, return_exceptions=True)
    sampling.cancel()

    # Jobs end a few at a time, as on a server that trains that many at once (SENTIMENT_MAX_TRAININGS),
    # while the other pages go on watching theirs.
    jobs.stop_feeding()
    shown: list[float | None] = []

    async def final(session: StreamlitSession, ended: float) -> None:
        try:
            await session.wait_for(lambda: shows(session, "done"), timeout=STALE_AFTER * 6)
            shown.append(time.time() - ended)
        except (TimeoutError, ConnectionError):
            shown.append(None)

    waiting = []
    for start in range(0, len(sessions), ending_together):
        ended = jobs.end(jobs.ids[start:start + ending_together])
        waiting += [asyncio.create_task(final(s, ended)) for s in sessions[start:start + ending_together]]
        await asyncio.sleep(ending_every)
    await asyncio.gather(*waiting)
    if debug:
        for s in sessions[:2]:
            print(s.texts(), list(s.log)[-15:], s.closed, s.exceptions)
    errors = [e for s in sessions for e in s.exceptions]
    for session in sessions:
        await session.close()
    minutes = (t1 - t0) / 60
    n = len(sessions)
    seen = [s for s in shown if s is not None]
    return {
        "sessions": n, "seconds": round(t1 - t0, 1), "batches_per_second": batches_per_second,
        "server_cpu_s": round(cpu1 - cpu0, 2),
        "server_core_per_session": round((cpu1 - cpu0) / (t1 - t0) / n, 5),
        "server_cpu_s_per_session_minute": round((cpu1 - cpu0) / n / minutes, 3),
        "load_generator_core": round((own1 - own0) / (t1 - t0), 4),
        "kib_per_session_minute": round((bytes1 - bytes0) / 1024 / n / minutes, 1),
        "refresh_seconds_p50": round(statistics.median(latencies), 3) if latencies else None,
        "refresh_seconds_p95": p95(latencies),
        "refresh_seconds_p95_by_interval": {f"{k:g} s": p95(v) for k, v in sorted(by_interval.items())},
        "refreshes_by_interval": {f"{k:g} s": len(v) for k, v in sorted(by_interval.items())},
        "end_shown_seconds_max": round(max(seen), 2) if seen else None,
        "end_shown_seconds_p50": round(statistics.median(seen), 2) if seen else None,
        "stale_pages": sum(1 for s in shown if s is None or s > STALE_AFTER),
        "trainings": trainings, "trainings_done": trained,
        "predict_seconds_p50": round(statistics.median(predicted), 3) if predicted else None,
        "predict_seconds_p95": round(sorted(predicted)[int(0.95 * (len(predicted) - 1))], 3) if predicted else None,
        "predictions": len(predicted),
        "server_peak_mib": round(memory["server"] / 2**20), "worker_peak_mib": round(memory["worker"] / 2**20),
        "server_and_workers_peak_mib": round(memory["together"] / 2**20),
        "errors": errors[:5],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60, help="measured watching time")
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--stagger", type=float, default=0.1, help="seconds between sessions opening")
    parser.add_argument("--batches-per-second", type=float, default=8, help="each job's pace (tiny on 2 cores: ~8)")
    parser.add_argument("--trainings", type=int, default=0, help="students training real models meanwhile")
    parser.add_argument("--predicting", type=int, default=0, help="visitors scoring reviews on Predict meanwhile")
    parser.add_argument("--max-trainings", type=int, default=2, help="SENTIMENT_MAX_TRAININGS of the server")
    parser.add_argument("--ending-together", type=int, default=2,
                        help="jobs that end at the same moment (a server trains SENTIMENT_MAX_TRAININGS at once)")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = AppServer.start(Path(folder), env={**os.environ, "SENTIMENT_MAX_TRAININGS": str(args.max_trainings)})
        try:
            result = asyncio.run(watch(server, args.sessions, args.seconds, args.warmup, args.batches_per_second,
                                       args.stagger, args.debug, args.trainings, args.predicting,
                                       args.ending_together))
        finally:
            server.stop()
    print(f"{result['sessions']} sessions watching for {result['seconds']} s: server "
          f"{result['server_core_per_session']:.4f} core per session "
          f"({result['server_cpu_s_per_session_minute']:.2f} CPU-s per session-minute); refresh p50/p95 "
          f"{result['refresh_seconds_p50']}/{result['refresh_seconds_p95']} s; end shown within "
          f"{result['end_shown_seconds_max']} s (stale pages: {result['stale_pages']}); load generator "
          f"{result['load_generator_core']:.3f} core; {result['kib_per_session_minute']} KiB per session-minute")
    if args.trainings or args.predicting:
        print(f"meanwhile {args.trainings} real trainings ({len(result['trainings_done'])} finished) and "
              f"{args.predicting} Predict visitors: {result['predictions']} scores, p50/p95 "
              f"{result['predict_seconds_p50']}/{result['predict_seconds_p95']} s; peak RSS: server "
              f"{result['server_peak_mib']} MiB, largest worker {result['worker_peak_mib']} MiB, together "
              f"{result['server_and_workers_peak_mib']} MiB")
    if result["errors"]:
        print("errors:", result["errors"])
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
