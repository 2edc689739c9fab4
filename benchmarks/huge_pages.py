"""A training epoch with glibc's malloc on 4 KB pages against huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1).

    python benchmarks/huge_pages.py --data ../shared/data/imdb --reviews 3200 --repeats 3

Each side trains the `best` network (length batches, as `train` does) for two epochs in a fresh process of
its own, alternating with the other side; the second epoch is timed, with the process's user and kernel
(sys) CPU seconds over it. Training processes the app starts get the tunable (sentiment_core/footprint.py);
the numbers they compute are the same either way, only the pages under them change.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sentiment_core.footprint import SMALL_PAGES, with_huge_pages  # noqa: E402  (the standard library only)


def second_epoch(config, data: str, reviews: int, seed: int = 0) -> dict:
    """Two epochs of `config`'s model on the first `reviews` training reviews, in length batches as `train`
    reads them; the second epoch's wall, user and sys seconds. (Also benchmarks/members_apart.py's.)"""
    os.environ.setdefault("KERAS_BACKEND", "jax")  # as sentiment_core does, before Keras is imported
    import time

    import keras

    from sentiment_core.batches import LengthBatches
    from sentiment_core.features import prepare
    from sentiment_core.models import build_model

    encoded = prepare(data, config)
    x, y = encoded.x_train[:reviews], encoded.y_train[:reviews]
    keras.utils.set_random_seed(seed)
    batches = LengthBatches(x, y, config.batch_size, config.padding, shuffle=True, seed=seed, members=config.members)
    model = build_model(config, steps_per_epoch=len(batches), any_length=True, member_inputs=config.members > 1)
    marks = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks.append((time.perf_counter(), os.times()))

        def on_epoch_end(self, epoch, logs=None):
            marks.append((time.perf_counter(), os.times()))

    model.fit(batches, epochs=2, verbose=0, callbacks=[Clock()])
    (w0, c0), (w1, c1) = marks[2], marks[3]
    return {"wall": w1 - w0, "user": c1.user - c0.user, "sys": c1.system - c0.system}


def child(data: str, reviews: int, preset: str) -> None:
    """One side: prints its second epoch's seconds as JSON."""
    from sentiment_core.config import PRESETS

    print(json.dumps(second_epoch(PRESETS[preset], data, reviews)))


def run_side(args: argparse.Namespace, huge: bool) -> dict:
    env = with_huge_pages() if huge else {**os.environ, "GLIBC_TUNABLES": SMALL_PAGES}
    out = subprocess.run([sys.executable, __file__, "--child", "--data", args.data, "--reviews", str(args.reviews),
                          "--preset", args.preset], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--reviews", type=int, default=3200)
    parser.add_argument("--preset", default="best")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data, args.reviews, args.preset)
        return
    sides: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.repeats):
        for huge in (False, True):
            sides[huge].append(run_side(args, huge))
            print(f"{'huge pages' if huge else '4 KB pages'}: {sides[huge][-1]}", file=sys.stderr, flush=True)
    print(f"`{args.preset}`, {args.reviews} reviews of {args.data}, second epoch, median of {args.repeats} "
          "fresh processes per side (alternating)")
    print("| malloc | epoch, s | user CPU, s | kernel (sys) CPU, s |\n|---|---|---|---|")
    for huge, label in ((False, "4 KB pages (default)"), (True, "huge pages (glibc.malloc.hugetlb=1)")):
        median = {k: statistics.median(r[k] for r in sides[huge]) for k in ("wall", "user", "sys")}
        print(f"| {label} | {median['wall']:.1f} | {median['user']:.1f} | {median['sys']:.1f} |")
    ratio = [a["wall"] / b["wall"] for a, b in zip(sides[False], sides[True], strict=True)]
    print(f"speed-up per pair: {', '.join(f'{r:.2f}x' for r in ratio)}; median {statistics.median(ratio):.2f}x")


if __name__ == "__main__":
    main()
