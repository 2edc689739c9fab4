"""The shipped default models: intact, and as good on the bundled sample as their cards say."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment_core import data, runs, seeds
from sentiment_core.inference import BATCH_STEPS, Engine
from sentiment_core.metrics import evaluate

SHIPPED = sorted(p.name for p in runs.run_dirs(runs.SHIPPED_DIR))


def test_both_defaults_ship():
    assert {"best", "notebook"} <= set(SHIPPED), SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_run_loads_predicts_and_matches_its_card(name):
    run = runs.load_run(runs.SHIPPED_DIR / name)
    card = (run.path / "card.md").read_text(encoding="utf-8")
    assert f"accuracy {run.metrics['accuracy']:.4f}" in card and "Known limits" in card
    assert run.metrics["n"] == 25_000 and run.meta["samples"]["test"] == 25_000
    # calibration and short texts, measured on the official test split, as the card states them
    temperature, short = run.meta["calibration"]["temperature"], run.metrics["short_texts"]
    assert run.meta["calibration"]["fitted_on"] == "validation" and short["n"] + short["no_words"] == 25_000
    assert f"temperature {temperature:.3f}" in card and f"ECE {run.metrics['ece']:.4f} after" in card
    assert f"ECE {run.metrics['uncalibrated']['ece']:.4f} before" in card
    assert f"accuracy {short['accuracy']:.4f}, ECE {short['ece']:.4f}, n = {short['n']}" in card
    assert run.metrics["ece"] <= 0.02  # the target, on 25,000 test reviews
    record = run.meta["seeds"]  # the recipe under 3 seeds or more, as the card gives it (`python -m ... seeds`)
    own = record["runs"][0]
    assert own["seed"] == run.config.seed and own["test_accuracy"] == run.metrics["accuracy"]
    assert len({r["seed"] for r in record["runs"]}) >= 3 and seeds.card_line(record) in card
    assert record["test_accuracy"]["min"] <= run.metrics["accuracy"] <= record["test_accuracy"]["max"]
    assert Engine.from_run(run).temperature == temperature
    _, test = data.load_raw("sample")
    engine = Engine.from_run(run)
    sample = evaluate(test.labels, engine.predict(test.texts))
    assert sample["accuracy"] >= run.metrics["accuracy"] - 0.03, (sample["accuracy"], run.metrics["accuracy"])
    clear = engine.predict(["An absolute masterpiece: moving, funny and beautifully acted. I loved it.",
                            "A boring, badly acted mess. The worst film I have seen in years."])
    assert clear[0] > 0.5 > clear[1]


def test_shipped_runs_stay_small():
    for name in SHIPPED:
        assert runs.disk_usage(runs.SHIPPED_DIR / name) < 20 * 2**20, name


@pytest.mark.parametrize("name", SHIPPED)
def test_batches_sized_to_the_model_give_the_same_probabilities(name):
    run = runs.load_run(runs.SHIPPED_DIR / name)
    engine = Engine.from_run(run)
    steps = engine.batch_size * run.config.members * run.config.maxlen
    assert engine.batch_size == 16 or steps <= BATCH_STEPS < steps + run.config.members * run.config.maxlen
    _, test = data.load_raw("sample")
    ids = engine.encode(test.texts[: engine.batch_size + 7])  # a full batch and a ragged one
    one_by_one = [engine.predict_ids(ids[i : i + 1])[0] for i in range(len(ids))]
    np.testing.assert_allclose(engine.predict_ids(ids), one_by_one, atol=1e-6)
