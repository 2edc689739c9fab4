"""Networks trained apart: one network's epoch alone, against two networks training at once in two processes.

    python benchmarks/members_apart.py --data ../shared/data/imdb --reviews 3200 --repeats 2

`best`'s network (members=1, length batches, huge pages as training processes get them) trains two epochs in a
fresh process; the second epoch is timed. "alone" runs one such process; "two at once" starts two together, as
`members_apart` does on a 2-core machine. The ratio says how much of a second core one more network gets: 2.0
would be two networks in the time of one. `--xla-flags` tries XLA_FLAGS on both sides (e.g.
"--xla_cpu_multi_thread_eigen=false" for one compute thread per process).
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
from sentiment_core.footprint import with_huge_pages  # noqa: E402  (the standard library only)


def child(data: str, reviews: int, seed: int) -> None:
    """Two epochs of one network; prints the second one's wall, user and sys seconds as JSON."""
    from huge_pages import second_epoch  # benchmarks/ is this script's folder

    from sentiment_core.config import PRESETS

    print(json.dumps(second_epoch(PRESETS["best"].replace(members=1, seed=seed), data, reviews, seed)))


def start(args: argparse.Namespace, seed: int) -> subprocess.Popen:
    env = with_huge_pages()
    if args.xla_flags:
        env["XLA_FLAGS"] = args.xla_flags
    return subprocess.Popen([sys.executable, __file__, "--child", "--data", args.data, "--reviews", str(args.reviews),
                             "--seed", str(seed)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def finish(process: subprocess.Popen) -> dict:
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"a training process failed (exit {process.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--reviews", type=int, default=3200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--xla-flags", default="")
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data, args.reviews, args.seed)
        return
    alone, together = [], []
    for repeat in range(args.repeats):
        alone.append(finish(start(args, 42 + repeat))["wall"])
        pair = [start(args, 42 + repeat), start(args, 43 + repeat)]
        together.append(max(finish(p)["wall"] for p in pair))
        print(f"repeat {repeat + 1}: alone {alone[-1]:.1f} s, two at once {together[-1]:.1f} s", file=sys.stderr,
              flush=True)
    one, two = statistics.median(alone), statistics.median(together)
    print(f"`best`'s network, {args.reviews} reviews of {args.data}, second epoch, median of {args.repeats}"
          f"{', XLA_FLAGS=' + args.xla_flags if args.xla_flags else ''} on {os.cpu_count()} cores: alone {one:.1f} s; "
          f"two at once {two:.1f} s each; networks per unit of time {2 * one / two:.2f}x of one alone")


if __name__ == "__main__":
    main()
