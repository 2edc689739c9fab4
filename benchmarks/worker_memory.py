"""Peak resident memory of one training worker, and which phase of the training holds it.

    python benchmarks/worker_memory.py                                  # tiny on the bundled sample
    python benchmarks/worker_memory.py --preset notebook --data ../shared/data/imdb --repeat 2

A class of 30 shares one server, so each job's memory decides how many run at once. This starts
the very process a job gets (`python -m sentiment_core.jobs JOB_DIR`, from a job.json written
here), samples its RSS every 50 ms with psutil, and reads the phase marks the worker writes when
SENTIMENT_MEMORY_LOG is set (sentiment_core/memlog.py). Each run starts with an empty feature
cache (the costlier first run of a setting) unless --cache is given. The tokenizer's helper
processes, started on a large corpus, and the processes that train networks apart, are counted apart
(their phase marks, seed to grad probe, join the worker's in the table).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sentiment_core import footprint  # noqa: E402
from sentiment_core.config import PRESETS  # noqa: E402
from sentiment_core.memlog import ENV  # noqa: E402
from sentiment_core.protocol import JOB_FILE, RESULT_FILE, Job, JobState, read_result  # noqa: E402

MIB = 2**20


class Sampler(threading.Thread):
    """RSS of the worker (and, apart, of its children) every `every` seconds until it exits."""

    def __init__(self, pid: int, every: float = 0.05):
        super().__init__(daemon=True, name="rss-sampler")
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float, float]] = []  # (time, worker MiB, children MiB)

    def run(self) -> None:
        process = psutil.Process(self.pid)
        while True:
            try:
                rss = process.memory_info().rss
                children = process.children(recursive=True)
            except psutil.Error:
                return
            extra = 0
            for child in children:
                with contextlib.suppress(psutil.Error):  # it may have just ended
                    extra += child.memory_info().rss
            self.samples.append((time.time(), rss / MIB, extra / MIB))
            time.sleep(self.every)


def write_job(folder: Path, preset: str, data: str, cache: Path) -> Path:
    job = Job(id="bench", owner="benchmark", name="run", data=data, config=PRESETS[preset].to_dict(),
              state=JobState.RUNNING, submitted=time.time(), run_path=str(folder / "runs" / "memory-bench"),
              cache_dir=str(cache))
    job_dir = folder / "job"
    job_dir.mkdir(parents=True)
    (job_dir / JOB_FILE).write_text(job.to_json(), encoding="utf-8")
    return job_dir


def phases(marks: list[dict], samples: list[tuple[float, float, float]], started: float) -> list[dict]:
    """Each phase's peak sampled RSS, and RSS and the kernel's high-water mark as it ended."""
    bounds = [{"phase": "imports (Python, NumPy, Keras, JAX)", "time": started}, *marks]
    rows = []
    for here, after in zip(bounds, [*bounds[1:], None], strict=True):
        end = after["time"] if after else float("inf")
        inside = [s for s in samples if here["time"] <= s[0] < end]
        rows.append({"phase": here["phase"], "seconds": (end if after else here["time"]) - here["time"],
                     "peak": max((s[1] for s in inside), default=float("nan")),
                     "children": max((s[2] for s in inside), default=0.0),
                     "rss_at_end": after["rss_mib"] if after else float("nan"),
                     "high_water_at_end": after["peak_mib"] if after else float("nan")})
    return rows


def merge_repeated(rows: list[dict]) -> list[dict]:
    """The grad probe and fit alternate: one row per phase name, in order of first appearance."""
    merged: dict[str, dict] = {}
    for row in rows:
        if row["phase"] not in merged:
            merged[row["phase"]] = {**row, "times": 1}
            continue
        m = merged[row["phase"]]
        m["seconds"] += row["seconds"]
        m["times"] += 1
        m["peak"] = max(m["peak"], row["peak"])
        m["children"] = max(m["children"], row["children"])
        m["rss_at_end"], m["high_water_at_end"] = row["rss_at_end"], max(m["high_water_at_end"],
                                                                         row["high_water_at_end"])
    return list(merged.values())


def measure(preset: str, data: str, cache: Path | None, every: float, keep: Path | None = None,
            huge_pages: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="worker-memory-") as tmp:
        folder = Path(tmp)
        job_dir = write_job(folder, preset, data, cache or folder / "cache")
        log = folder / "memory.jsonl"
        env = {**os.environ, ENV: str(log), "PYTHONPATH": str(ROOT), "SENTIMENT_WORKER_NICE": "0"}
        env = footprint.with_huge_pages(env) if huge_pages else {**env, "GLIBC_TUNABLES": footprint.SMALL_PAGES}
        started = time.time()
        with open(job_dir / "worker.log", "wb") as out:
            worker = subprocess.Popen([sys.executable, "-m", "sentiment_core.jobs", str(job_dir)], cwd=ROOT,
                                      env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            sampler = Sampler(worker.pid, every)
            sampler.start()
            worker.wait()
        sampler.join()
        result = read_result(job_dir / RESULT_FILE)
        if worker.returncode or result is None or result.state != JobState.DONE:
            tail = (job_dir / "worker.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"the worker failed (exit {worker.returncode}): {result}\n{tail}")
        marks = [json.loads(line) for line in log.read_text().splitlines()]
        if keep:  # to compare the runs of two versions of the code
            shutil.copytree(result.run, keep)
        return {"seconds": time.time() - started, "metrics": result.metrics, "marks": marks,
                "phases": merge_repeated(phases(marks, sampler.samples, started)),
                "peak_sampled": max(s[1] for s in sampler.samples),
                "peak_kernel": marks[-1]["peak_mib"], "children": max(s[2] for s in sampler.samples),
                "tensorflow": any(m["tensorflow"] for m in marks), "modules": marks[-1]["modules"],
                "heavy": marks[-1].get("heavy", [])}


def report(preset: str, data: str, run: dict) -> None:
    print(f"\n{preset} on {data}: peak RSS {run['peak_kernel']:.0f} MiB (kernel high-water mark; sampled "
          f"{run['peak_sampled']:.0f}), child processes (tokenizer helpers, networks trained apart) "
          f"{run['children']:.0f} MiB, {run['seconds']:.0f} s, "
          f"tensorflow imported: {run['tensorflow']} (heavy modules: {', '.join(run['heavy']) or 'none'}; "
          f"{run['modules']} modules), test accuracy "
          f"{run['metrics']['accuracy']:.4f}")
    print("| phase | times | seconds | peak RSS in it, MiB | RSS at its end, MiB | high-water mark at its end, MiB |")
    print("|---|---|---|---|---|---|")
    for row in run["phases"]:
        print(f"| {row['phase']} | {row['times']} | {row['seconds']:.1f} | {row['peak']:.0f} | "
              f"{row['rss_at_end']:.0f} | {row['high_water_at_end']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--data", default="sample", help="a --data source (default: the bundled sample)")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each in a fresh worker")
    parser.add_argument("--cache", type=Path, help="a feature cache to use (default: an empty one per run)")
    parser.add_argument("--every", type=float, default=0.05, help="seconds between RSS samples")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--keep", type=Path, help="copy each saved run into this folder (run1, run2, ...)")
    parser.add_argument("--small-pages", action="store_true",
                        help="start the worker without huge pages (the app's runners start it with them)")
    args = parser.parse_args()
    measured = []
    for i in range(1, args.repeat + 1):
        run = measure(args.preset, args.data, args.cache, args.every, args.keep / f"run{i}" if args.keep else None,
                      huge_pages=not args.small_pages)
        report(args.preset, args.data, run)
        measured.append(run)
    peaks = [r["peak_kernel"] for r in measured]
    print(f"\npeak RSS over {len(peaks)} run(s): {', '.join(f'{p:.0f}' for p in peaks)} MiB")
    if args.json:
        args.json.write_text(json.dumps(measured, indent=1))


if __name__ == "__main__":
    main()
