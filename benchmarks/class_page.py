"""How long the Class page takes to draw with hundreds of runs on disk (#16).

Trains one tiny run on the bundled sample (once; kept in --out), then writes --runs copies of it in the real
run format (every file, a manifest with their SHA-256, a student record), each with its own hyperparameters,
test metrics, parameter count, training time, student and challenge. The copies share the tiny run's weights,
so they are for the board, not for Compare. Then it draws the Class page with Streamlit's AppTest: the first
draw (every run's metadata read), the next draws (nothing changed), a draw after one run changed, and a draw
with a filter; and counts the NPZ files opened while drawing (weights or insights: there should be none).

    python benchmarks/class_page.py --runs 500 [--out /tmp/class-bench] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAMES = ["Ana", "Bob", "Chen", "Dara", "Eli", "Fatou", "Gus", "Hana", "Ivo", "Jin", "Kai", "Lea", "Mo", "Nia"]


def base_run(out: Path) -> Path:
    """A tiny run trained on the sample (about half a minute), reused from an earlier call."""
    base = out / "base" / "tiny"
    if not (base / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "sentiment_core", "train", "--preset", "tiny", "--data", "sample",
                        "--epochs", "1", "--no-keras-file", "--out", str(base)], cwd=ROOT, check=True,
                       env={**os.environ, "SENTIMENT_CACHE": str(out / "cache")})
    return base


def write_copies(base: Path, runs_dir: Path, count: int, seed: int = 0) -> None:
    """`count` runs like `base`, each with its own config, metrics, meta and student, checksummed as a run."""
    from sentiment_core import runs
    from sentiment_core.challenges import CHALLENGES
    from sentiment_core.config import Config
    from sentiment_core.people import owner_tag

    rng = random.Random(seed)
    config = json.loads((base / "config.json").read_text())
    metrics = json.loads((base / "metrics.json").read_text())
    meta = json.loads((base / "meta.json").read_text())
    runs_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        changed = Config.from_dict(config).replace(
            cell=rng.choice(["simple_rnn", "lstm", "gru"]), units=rng.choice([8, 16, 32, 64, 128]),
            layers=rng.choice([1, 1, 2]), bidirectional=rng.random() < 0.3, dropout=rng.choice([0.0, 0.2, 0.5]),
            embedding_dim=rng.choice([16, 32, 64]), maxlen=rng.choice([60, 100, 200, 400]),
            optimizer=rng.choice(["adam", "rmsprop"]), learning_rate=rng.choice([5e-4, 1e-3, 2e-3, 5e-3]),
            batch_size=rng.choice([32, 64, 128]), epochs=rng.randint(1, 10), seed=i).to_dict()
        accuracy = rng.uniform(0.5, 0.9)
        folder = runs_dir / f"class-{i:04d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=runs_dir))
        for name in ("vocab.json", "weights.npz", "history.json", "insights.npz", "card.md"):
            if (base / name).is_file():
                os.link(base / name, tmp / name)  # the same bytes: a hard link is as real as a copy
        documents = {"config.json": changed,
                     "metrics.json": {**metrics, "accuracy": accuracy, "n": rng.choice([1000, 25000]),
                                      "slices": {"long": {"min_words": 200, "n": 300, "accuracy": accuracy - 0.05},
                                                 "short": {"max_words": 99, "n": 500, "accuracy": accuracy}}},
                     "meta.json": {**meta, "name": folder.name, "config": changed,
                                   "parameters": rng.randint(10_000, 3_000_000),
                                   "timings": {"train_seconds": rng.uniform(5, 600), "evaluate_seconds": 0.3}}}
        for name, document in documents.items():
            (tmp / name).write_text(json.dumps(document, indent=1), encoding="utf-8")
        manifest = {"files": {p.name: runs._sha256(p) for p in sorted(tmp.iterdir())}}
        (tmp / runs.MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        challenge = rng.choice([None, None, *(c.id for c in CHALLENGES)])
        runs.write_student(tmp, owner_tag(f"session-{i % 40}"), rng.choice([*NAMES, None]), challenge)
        os.replace(tmp, folder)


def draw(at) -> float:
    start = time.perf_counter()
    at.run()
    took = time.perf_counter() - start
    assert not at.exception, [e.value for e in at.exception]
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "class-bench")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs_dir = args.out / f"runs-{args.runs}"
    os.environ["SENTIMENT_RUNS_DIR"] = str(runs_dir)
    os.environ["SENTIMENT_JOBS_DIR"] = str(args.out / "jobs")
    base = base_run(args.out)
    if not runs_dir.is_dir() or len(list(runs_dir.iterdir())) != args.runs:
        shutil.rmtree(runs_dir, ignore_errors=True)
        start = time.perf_counter()
        write_copies(base, runs_dir, args.runs)
        print(f"wrote {args.runs} runs in {time.perf_counter() - start:.1f} s")

    import numpy as np
    from streamlit.testing.v1 import AppTest

    from sentiment_core import runs

    opened = []
    real_load = np.load
    np.load = lambda *a, **k: opened.append(str(a[0])) or real_load(*a, **k)

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    at.switch_page("app_pages/home.py")
    at.run()  # imports and the Home page's model: not the Class page's cost
    opened.clear()
    at.switch_page("app_pages/class.py")
    first = draw(at)
    rows = len(at.dataframe[0].value)
    npz = len(opened)
    again = [draw(at) for _ in range(args.repeats)]
    changed = []
    for i in range(args.repeats):
        runs.write_student(runs_dir / f"class-{i:04d}", "changed", f"Changed {i}", None)
        changed.append(draw(at))
    at.multiselect(key="class_cells").set_value(["LSTM"])
    filtered = draw(at)
    print(f"Class page with {args.runs} runs on disk ({rows} rows with the shipped ones), AppTest, "
          f"{os.cpu_count()} cores:")
    print(f"  first draw (every run's metadata read): {first:.3f} s")
    print(f"  next draws, nothing changed: median {statistics.median(again):.3f} s "
          f"(min {min(again):.3f}, max {max(again):.3f})")
    print(f"  a draw after one run changed: median {statistics.median(changed):.3f} s")
    print(f"  a draw with a filter (LSTM only, {len(at.dataframe[0].value)} rows): {filtered:.3f} s")
    print(f"  NPZ files (weights, insights) opened while drawing: {npz}")


if __name__ == "__main__":
    main()
