"""Test accuracy of the mean probability of runs trained apart (each with its own vocabulary, split and stopping).

    python benchmarks/average_runs.py --data ../shared/data/imdb artifacts/runs/single-42 artifacts/runs/single-43 ...

A run holds one vocabulary, so runs trained with different seeds (hence different validation tenths and
vocabularies) cannot be stacked into one ensemble run; this scores what such an ensemble would, on the
official test reviews and their short texts (sentiment_core/short_texts.py), each run reading with its own
vocabulary and calibration. The test split is only scored here, never used to choose.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sentiment_core import data, runs, short_texts  # noqa: E402
from sentiment_core.inference import Engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", default="sample")
    args = parser.parse_args()
    _, test = data.load_raw(args.data)
    short = [short_texts.shorten(t) for t in test.texts]
    whole_p, short_p = [], []
    print("| run | test accuracy | short texts |\n|---|---|---|")
    for path in args.runs:
        engine = Engine.from_run(runs.load_run(path))
        whole_p.append(engine.predict(test.texts))
        short_p.append(engine.predict(short))
        print(f"| {path.name} | {((whole_p[-1] > 0.5) == test.labels).mean():.2%} | "
              f"{((short_p[-1] > 0.5) == test.labels).mean():.2%} |", flush=True)
    whole, brief = np.mean(whole_p, axis=0), np.mean(short_p, axis=0)
    print(f"| mean of {len(args.runs)} | **{((whole > 0.5) == test.labels).mean():.2%}** | "
          f"{((brief > 0.5) == test.labels).mean():.2%} |")


if __name__ == "__main__":
    main()
