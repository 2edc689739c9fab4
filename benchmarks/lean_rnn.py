"""Seconds per epoch of the notebook preset: Keras' own SimpleRNN loop against LeanSimpleRNN.

    python benchmarks/lean_rnn.py --data ../shared/data/imdb     # full IMDB (the README's figure)
    python benchmarks/lean_rnn.py                                # the bundled sample, a quick look

Both models start from the same weights and read the same batches; their epochs alternate in one
process, so a slow spell of the machine hits both. Prints each epoch and the median ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.epoch_timer import epoch_seconds  # noqa: E402
from sentiment_core import models as models_module  # noqa: E402
from sentiment_core.config import PRESETS  # noqa: E402
from sentiment_core.features import prepare  # noqa: E402
from sentiment_core.models import build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--rounds", type=int, default=6, help="epochs per model (the first compiles, not counted)")
    args = parser.parse_args()

    import keras
    from keras import layers

    config = PRESETS["notebook"]
    with tempfile.TemporaryDirectory() as cache:
        encoded = prepare(args.data, config, Path(cache))
    keras.utils.set_random_seed(0)
    lean = build_model(config)
    models_module.RNN_LAYERS["simple_rnn"] = layers.SimpleRNN  # Keras' own loop, for comparison
    plain = build_model(config)
    plain.set_weights(lean.get_weights())
    models = {"Keras SimpleRNN loop": plain, "LeanSimpleRNN": lean}
    print(f"{len(encoded.x_train)} training reviews, maxlen {config.maxlen}, batch {config.batch_size}; "
          f"layers: {[type(m.get_layer('rnn_1')).__name__ for m in models.values()]}")
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            seconds[name] += epoch_seconds(model, 1, x=encoded.x_train, y=encoded.y_train, shuffle=False,
                                           batch_size=config.batch_size, validation_data=(encoded.x_val, encoded.y_val))
    print("\n| loop | epoch seconds (first compiles) | median after the first |\n|---|---|---|")
    for name, times in seconds.items():
        print(f"| {name} | {', '.join(f'{t:.2f}' for t in times)} | {np.median(times[1:]):.3f} |")
    ratios = np.array(seconds["Keras SimpleRNN loop"][1:]) / np.array(seconds["LeanSimpleRNN"][1:])
    print(f"\nKeras' loop / lean loop, epoch by epoch: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {np.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
