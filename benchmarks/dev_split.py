"""A development split carved out of IMDB's train half, for choosing between recipes without the test half.

    python benchmarks/dev_split.py --data ../shared/data/imdb --out /tmp/imdb-dev --dev 5000
    python -m sentiment_core train --preset best --data /tmp/imdb-dev --seed 42 --out /tmp/dev-runs

Writes OUT/train.jsonl.gz (the train half less the development reviews) and OUT/test.jsonl.gz (the development
reviews), each balanced between labels, so every command that takes `--data` trains a recipe on the one and scores
it on the other. The official test half is never read. A run's own validation slice is too small to separate
recipes a few tenths of a point apart (1,250 reviews: ±0.8 points at one standard error); 5,000 development reviews
halve that, and both recipes are scored on the same reviews, so their difference is sharper still.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sentiment_core.data import load_raw  # noqa: E402


def write_jsonl(path: Path, texts: list[str], labels: list[int]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for text, label in zip(texts, labels, strict=True):
            out.write(json.dumps({"text": text, "label": int(label)}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--out", required=True)
    parser.add_argument("--dev", type=int, default=5000, help="development reviews, half of each label")
    parser.add_argument("--seed", type=int, default=2011)
    args = parser.parse_args()

    train, _ = load_raw(args.data)
    rng = random.Random(args.seed)
    dev = set()
    for label in (0, 1):
        rows = [i for i, y in enumerate(train.labels) if y == label]
        if len(rows) <= args.dev // 2:
            raise SystemExit(f"--dev {args.dev} leaves no training reviews of label {label}: there are {len(rows)}")
        dev.update(rng.sample(rows, args.dev // 2))
    rest = [i for i in range(len(train.labels)) if i not in dev]
    ordered_dev = sorted(dev)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "train.jsonl.gz", [train.texts[i] for i in rest], [train.labels[i] for i in rest])
    write_jsonl(out / "test.jsonl.gz", [train.texts[i] for i in ordered_dev], [train.labels[i] for i in ordered_dev])
    print(f"{out}: {len(rest)} training reviews, {len(ordered_dev)} development reviews from the train half of "
          f"{args.data} (seed {args.seed})")


if __name__ == "__main__":
    main()
