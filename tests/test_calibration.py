"""Temperature scaling and short texts: fitted on validation, applied by the NumPy engine, stored in the run."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from sentiment_core import calibration, cli, runs
from sentiment_core.inference import Engine
from sentiment_core.metrics import evaluate
from sentiment_core.short_texts import MAX_WORDS, sentences, shorten


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_temperature_that_made_the_labels(true_temperature):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, 40_000)
    labels = rng.random(40_000) < _sigmoid(logits / true_temperature)  # what a model with this T would see
    fitted = calibration.fit_temperature(labels, _sigmoid(logits))
    assert fitted == pytest.approx(true_temperature, rel=0.06)
    # and it is the log loss minimum, checked against a plain grid
    grid = np.exp(np.linspace(np.log(0.1), np.log(10), 2001))
    losses = [calibration.log_loss(labels, _sigmoid(logits / t)) for t in grid]
    assert fitted == pytest.approx(grid[int(np.argmin(losses))], rel=0.01)


def test_temperature_scaling_keeps_every_label_and_unscored_reviews():
    p = np.array([0.01, 0.3, 0.5, 0.7, 0.999, np.nan], dtype=np.float32)
    for t in (0.3, 1.0, 4.0):
        q = calibration.apply_temperature(p, t)
        assert q.dtype == p.dtype and np.isnan(q[-1])
        assert ((q[:-1] >= 0.5) == (p[:-1] >= 0.5)).all()
    softer = calibration.apply_temperature(p[:-1], 4.0)
    assert (np.abs(softer - 0.5) <= np.abs(p[:-1] - 0.5) + 1e-6).all()  # T > 1 pulls towards 50%
    assert calibration.fit_temperature(np.ones(5), np.full(5, 0.9)) == 1.0  # one class: nothing to fit


@pytest.mark.parametrize("meta", [{"calibration": {"temperature": 0}}, {"calibration": {"temperature": "2"}},
                                  {"calibration": {"temperature": float("inf")}}])
def test_a_bad_stored_temperature_is_refused(meta):
    with pytest.raises(ValueError, match="temperature"):
        calibration.temperature_of(meta)
    assert calibration.temperature_of({}) == 1.0


def test_short_texts_keep_the_first_and_last_sentence_within_forty_words():
    review = ("I expected little. The plot drags in the middle.<br /><br />Nobody should miss the ending! "
              "Overall, a wonderful film and I loved it.")
    assert sentences(review)[0] == "I expected little." and len(sentences(review)) == 4
    assert shorten(review) == "I expected little. Overall, a wonderful film and I loved it."
    words = [f"w{i}" for i in range(100)]
    long_pair = " ".join(words[:50]) + ". " + " ".join(words[50:]) + "."
    short = shorten(long_pair).split()
    assert len(short) == MAX_WORDS and short[0] == "w0" and short[-1] == "w99."  # opening and verdict kept
    assert shorten("just one sentence without a stop") == "just one sentence without a stop"
    assert shorten("   ") == ""


def test_a_trained_run_stores_its_temperature_and_the_engine_applies_it(gru_run):
    record = gru_run.meta["calibration"]
    assert record["fitted_on"] == "validation" and record["n"] == gru_run.meta["samples"]["validation"]
    assert record["validation_loss_after"] <= record["validation_loss_before"] + 1e-9
    engine = Engine.from_run(gru_run)
    assert engine.temperature == record["temperature"] != 1.0
    raw = Engine(gru_run.config, gru_run.vocab, gru_run.weights)  # as trained, temperature 1
    texts = ["a wonderful, moving film", "dull and far too long", "not bad at all"]
    np.testing.assert_allclose(engine.predict(texts),
                               calibration.apply_temperature(raw.predict(texts), record["temperature"]), atol=1e-6)
    reading = engine.read(texts[0])  # Inside shows the same calibrated score as Predict
    assert reading.probability == pytest.approx(float(engine.predict(texts[:1])[0]), abs=1e-6)
    assert reading.as_it_reads[-1] == pytest.approx(reading.probability, abs=1e-5)
    # the stored test figures are the calibrated engine's, with the figures before it kept
    metrics = gru_run.metrics
    assert {"ece", "reliability", "uncalibrated", "short_texts"} <= set(metrics)
    assert metrics["short_texts"]["n"] + metrics["short_texts"]["no_words"] == metrics["n"] + metrics["no_words"]
    card = (gru_run.path / "card.md").read_text()
    assert f"temperature {record['temperature']:.3f}" in card and f"ECE {metrics['ece']:.4f} after" in card
    assert f"accuracy {metrics['short_texts']['accuracy']:.4f}" in card


def test_evaluate_reports_short_texts_and_calibration(gru_run, sample_halves, capsys):
    assert cli.main(["evaluate", "--model", str(gru_run.path), "--data", "sample", "--short-texts"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["temperature"] == gru_run.meta["calibration"]["temperature"]
    assert result["accuracy"] == pytest.approx(gru_run.metrics["accuracy"])
    assert result["ece"] == pytest.approx(gru_run.metrics["ece"])
    assert result["uncalibrated"]["ece"] == pytest.approx(gru_run.metrics["uncalibrated"]["ece"])
    # the short texts, scored again here from the reviews themselves
    _, test = sample_halves
    expected = evaluate(test.labels, Engine.from_run(gru_run).predict([shorten(t) for t in test.texts]))
    assert result["short_texts"]["accuracy"] == pytest.approx(expected["accuracy"])
    assert result["short_texts"]["accuracy"] == pytest.approx(gru_run.metrics["short_texts"]["accuracy"])


def test_calibrate_refits_an_old_run_in_place_and_keeps_it_whole(gru_run, tmp_path, capsys):
    folder = tmp_path / "old-run"
    shutil.copytree(gru_run.path, folder)
    run = runs.load_run(folder)
    meta = {k: v for k, v in run.meta.items() if k != "calibration"}  # as saved before calibration existed
    metrics = {k: v for k, v in run.metrics.items() if k not in ("uncalibrated", "short_texts")}
    runs.write_run(folder, run.config, run.vocab, run.weights, run.history, metrics, meta, insights=run.insights,
                   card="old card", save_model=lambda to: shutil.copyfile(gru_run.path / "model.keras", to),
                   overwrite=True)
    assert Engine.from_run(runs.load_run(folder)).temperature == 1.0

    assert cli.main(["calibrate", "--model", str(folder)]) == 0  # --data defaults to the run's own source
    printed = json.loads(capsys.readouterr().out)
    again = runs.load_run(folder)  # the manifest checks out
    assert again.meta["calibration"]["temperature"] == pytest.approx(gru_run.meta["calibration"]["temperature"])
    assert printed["test"]["ece"] == pytest.approx(gru_run.metrics["ece"])
    assert again.metrics["accuracy"] == pytest.approx(gru_run.metrics["accuracy"])
    assert (folder / "model.keras").is_file() and "**Calibration**" in (folder / "card.md").read_text()
    np.testing.assert_array_equal(again.weights["embedding"], gru_run.weights["embedding"])


def test_calibrate_refuses_a_source_the_run_was_not_trained_on(gru_run, tmp_path):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(["calibrate", "--model", str(gru_run.path), "--data", str(tmp_path)])
    assert code == 2 and "validation split exists only in that source" in err.getvalue()
    assert runs.load_run(gru_run.path).meta == gru_run.meta  # nothing changed


def test_short_crops_add_cut_copies_of_training_reviews_with_their_labels(tiny_config):
    from sentiment_core import data
    from sentiment_core.features import encode_dataset
    from sentiment_core.text import encode

    dataset = data.load("sample", "official", 0.2, 42)
    plain = encode_dataset(dataset, tiny_config(maxlen=60), workers=1)
    cropped = encode_dataset(dataset, tiny_config(maxlen=60, short_crops=0.25), workers=1)
    n = len(dataset.train)
    assert len(cropped.x_train) == n + round(0.25 * n) == len(cropped.y_train)
    np.testing.assert_array_equal(cropped.x_train[:n], plain.x_train)  # the reviews themselves unchanged
    assert cropped.vocab == plain.vocab and (cropped.x_val == plain.x_val).all()
    extra = cropped.x_train[n:]
    # each crop is one training review's first and last sentence, with that review's label
    by_row = {tuple(row): i for i, row in enumerate(encode([shorten(t) for t in dataset.train.texts], plain.vocab, 60))}
    found = [by_row.get(tuple(row)) for row in extra]
    assert None not in found and len(set(found)) == len(found)
    np.testing.assert_array_equal(cropped.y_train[n:], dataset.train.labels[found])


def test_seeds_records_the_recipe_under_other_seeds_on_the_card_and_refuses_another_recipe(trained, tmp_path,
                                                                                           capsys):
    folder = tmp_path / "main-run"
    shutil.copytree(trained(cell="gru").path, folder)  # a copy: `trained` runs are shared by the test run
    others = [trained(cell="gru", seed=7), trained(cell="gru", seed=8)]
    assert cli.main(["seeds", "--model", str(folder), "--others", *[str(o.path) for o in others]]) == 0
    printed = json.loads(capsys.readouterr().out)["seeds"]
    again = runs.load_run(folder)  # rewritten whole: the manifest checks out
    accuracies = [again.metrics["accuracy"], *[o.metrics["accuracy"] for o in others]]
    assert [r["seed"] for r in again.meta["seeds"]["runs"]] == [42, 7, 8] and again.meta["seeds"] == printed
    assert [r["test_accuracy"] for r in printed["runs"]] == accuracies
    assert printed["test_accuracy"]["min"] == min(accuracies) and printed["test_accuracy"]["max"] == max(accuracies)
    card = (folder / "card.md").read_text()
    assert "**Over 3 seeds**" in card and f"{accuracies[1]:.4f} (seed 7)" in card
    assert f"spread {max(accuracies) - min(accuracies):.4f}" in card and "**Calibration**" in card
    np.testing.assert_array_equal(again.weights["embedding"], trained(cell="gru").weights["embedding"])

    before = runs.load_run(folder).meta
    for bad, why in [([trained(cell="lstm").path], "cell is 'lstm', not 'gru'"),
                     ([others[0].path, others[0].path], "each run must have its own seed")]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main(["seeds", "--model", str(folder), "--others", *map(str, bad)])
        assert code == 2 and why in err.getvalue(), err.getvalue()
        assert runs.load_run(folder).meta == before  # nothing changed
