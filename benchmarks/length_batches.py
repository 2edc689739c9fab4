"""Seconds per epoch of the `best` network with whole padded rows against batches cut to their longest review.

    python benchmarks/length_batches.py --data ../shared/data/imdb --reviews 6400

Both runs train the same network on the same reviews for three epochs; the last two are timed (the first
compiles: once for whole rows, once per batch length for length batches). Masked padding changes nothing,
so the results are the same model either way (tests/test_batches.py).
"""

from __future__ import annotations

import argparse

from epoch_timer import epoch_seconds

import sentiment_core  # noqa: F401  (chooses the Keras backend before Keras is imported)
from sentiment_core.batches import LengthBatches
from sentiment_core.config import PRESETS
from sentiment_core.features import prepare
from sentiment_core.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--reviews", type=int, default=6400)
    parser.add_argument("--preset", default="best")
    args = parser.parse_args()
    config = PRESETS[args.preset]
    encoded = prepare(args.data, config)
    x, y = encoded.x_train[: args.reviews], encoded.y_train[: args.reviews]
    whole = epoch_seconds(build_model(config), 3, x=x, y=y, batch_size=config.batch_size, shuffle=True)
    cut = epoch_seconds(build_model(config, any_length=True), 3,
                        x=LengthBatches(x, y, config.batch_size, config.padding, shuffle=True))
    real = (x != 0).sum(axis=1).mean()
    print(f"{args.preset}: {len(x)} reviews, maxlen {config.maxlen}, mean length {real:.0f} words")
    print("| batches | first epoch (compiles), s | later epochs, s |\n|---|---|---|")
    print(f"| whole rows | {whole[0]:.1f} | {min(whole[1:]):.1f} |")
    print(f"| cut to their longest review | {cut[0]:.1f} | {min(cut[1:]):.1f} |")
    print(f"speed-up after the first epoch: {min(whole[1:]) / min(cut[1:]):.2f}x")


if __name__ == "__main__":
    main()
