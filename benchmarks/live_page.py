"""What one refresh of a live Train page costs the server: the job view of a running job, rerun in-process.

A watching session reruns the state and progress bar every 3 s and the curves every 10.1 s (the page's
`run_every` fragments); both are timed here together, in-process, without Streamlit's own cost per
rerun (benchmarks/watch_cost.py measures the real server). The job is synthetic: a folder with
`--batches` batch events and the epochs they span, written through the job protocol, as a worker would.

    python benchmarks/live_page.py [--batches 1600] [--epochs 6] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from sentiment_core.config import PRESETS  # noqa: E402
from sentiment_core.protocol import (  # noqa: E402
    EVENTS_FILE,
    JOB_FILE,
    BatchEvent,
    EpochEvent,
    Job,
    JobState,
    StartEvent,
    write_atomic,
)

# The manager is made once, before the job exists: a new one would mark a running job with no worker
# as interrupted, as after a server restart.
SCRIPT = """
from pathlib import Path
import streamlit as st
from app import job_view
from sentiment_core.jobs import JobManager
manager = st.cache_resource(lambda: JobManager(Path({folder!r}), Path({folder!r}) / "runs", poll_seconds=3600))()
job_view.status(manager, "live")
job_view.curves(manager, "live")
"""


def write_job(folder: Path, batches: int, epochs: int) -> None:
    """A running job with `batches` batch events over `epochs` epochs, the last one under way."""
    job_dir = folder / "live"
    job_dir.mkdir(parents=True)
    now = time.time()
    job = Job(id="live", owner="bench", name="live", data="sample", config=PRESETS["tiny"].to_dict(),
              state=JobState.RUNNING, submitted=now - 60, started=now - 60)
    write_atomic(job_dir / JOB_FILE, job.to_json())
    per_epoch = max(batches // epochs, 1)
    lines = [StartEvent(epochs=epochs + 1, steps_per_epoch=per_epoch, samples=per_epoch * 64).to_json()]
    for step in range(1, batches + 1):
        epoch, within = divmod(step - 1, per_epoch)
        lines.append(BatchEvent(epoch=epoch + 1, step=within + 1, global_step=step, loss=1 / step ** 0.3,
                                accuracy=1 - 0.5 / step ** 0.2, seconds=step * 0.01).to_json())
        if within + 1 == per_epoch:
            lines.append(EpochEvent(epoch=epoch + 1, loss=0.4, accuracy=0.8, val_loss=0.45, val_accuracy=0.78,
                                    seconds=3.0).to_json())
    (job_dir / EVENTS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=1600)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        at = AppTest.from_string(SCRIPT.format(folder=folder), default_timeout=120)
        at.run()  # makes the manager
        write_job(Path(folder), args.batches, args.epochs)
        at.run()  # the first drawing imports Altair and builds what later reruns reuse
        assert not at.exception and not at.error, (at.exception, at.error)
        charts = len(at.get("vega_lite_chart"))
        cpu, wall = [], []
        for _ in range(args.repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            at.run()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        assert not at.exception, at.exception
    print(f"live job view, {args.batches} batches over {args.epochs} epochs, {charts} charts, "
          f"{args.repeats} reruns: CPU median {statistics.median(cpu) * 1000:.1f} ms, "
          f"wall median {statistics.median(wall) * 1000:.1f} ms per rerun")


if __name__ == "__main__":
    main()
