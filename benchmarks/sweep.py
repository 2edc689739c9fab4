"""Train variants of a preset on one data source and print validation and test accuracy side by side.

    python benchmarks/sweep.py --preset notebook --data ../shared/data/imdb dropout=0.2 learning_rate=5e-4 mask=true

Each argument NAME=VALUE is one variant (comma-separate several changes: "dropout=0.2,mask=true").
Used to choose the shipped defaults; test accuracy is printed for the record, chosen on validation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

from sentiment_core.config import PRESETS
from sentiment_core.features import prepare
from sentiment_core.inference import Engine
from sentiment_core.metrics import evaluate
from sentiment_core.models import export_weights
from sentiment_core.train import fit


def parse(change: str) -> dict:
    out = {}
    for part in filter(None, change.split(",")):
        key, value = part.split("=", 1)
        out[key] = {"true": True, "false": False}.get(value.lower(), value)
        if isinstance(out[key], str):
            with contextlib.suppress(ValueError):
                out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="notebook", choices=sorted(PRESETS))
    parser.add_argument("--data", default="sample")
    parser.add_argument("variants", nargs="*", default=[""])
    args = parser.parse_args()
    for change in args.variants or [""]:
        config = PRESETS[args.preset].replace(**parse(change))
        encoded = prepare(args.data, config)
        t0 = time.perf_counter()
        def show(event: dict) -> None:
            if event["type"] == "epoch":
                print("  ", {k: round(v, 4) for k, v in event.items() if isinstance(v, float)}, flush=True)

        model, history = fit(config, encoded, on_event=show, grad_probe=False)
        seconds = time.perf_counter() - t0
        engine = Engine(config, encoded.vocab, export_weights(model))
        test = evaluate(encoded.y_test, engine.predict_ids(encoded.x_test))
        best_val = max(e["val_accuracy"] for e in history.epochs)
        print(json.dumps({"variant": change or "(preset)", "epochs": len(history.epochs),
                          "best_epoch": history.best_epoch, "best_val_accuracy": round(best_val, 4),
                          "test_accuracy": round(test["accuracy"], 4), "seconds": round(seconds, 1),
                          "seconds_per_epoch": round(seconds / len(history.epochs), 1)}), flush=True)


if __name__ == "__main__":
    main()
