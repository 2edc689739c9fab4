"""Take it home (sentiment_core/export.py): the exported script trains, counts the run's parameters, reads
text as the lab does and, with the run's weights, predicts what the lab predicts (within 1e-5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny

from sentiment_core import cli, export, runs
from sentiment_core.config import Config
from sentiment_core.data import SAMPLE_DIR
from sentiment_core.inference import Engine
from sentiment_core.models import build_model, export_weights, load_weights
from sentiment_core.text import Vocabulary, encode

NOTEBOOK = runs.SHIPPED_DIR / "notebook"
needs_notebook = pytest.mark.skipif(not (NOTEBOOK / "manifest.json").is_file(), reason="no shipped notebook")
TEXTS = ["A wonderful, moving film.", "Dull<br />and far too long; I didn't like it!", "not good at all",
         "Don\u2019t miss it: the best film of the year", "zzzz qqqq"]
# Shapes the script writes differently: each cell, stacked, bidirectional, pooling, bigrams, word dropout...
SHAPES = {"bidirectional_gru": dict(cell="gru", bidirectional=True),
          "stacked_max_lstm": dict(cell="lstm", layers=2, pooling="max", head_dropout=0.2),
          "bi_post_mean_simple_rnn": dict(cell="simple_rnn", bidirectional=True, padding="post", pooling="mean",
                                          truncating="post"),
          "bigram_word_dropout_gru": dict(cell="gru", bigram_buckets=300, word_dropout=0.2, weight_averaging=0.9,
                                          clipnorm=1.0, weight_decay=0.01, optimizer="adam", split="notebook"),
          "no_mask_gru": dict(cell="gru", mask=False, recurrent_dropout=0.1)}


def load_script(source: str) -> types.ModuleType:
    """The exported script as a module (its main() does not run), in this process."""
    assert "sentiment_core" not in source
    module = types.ModuleType("exported")
    exec(compile(source, "exported.py", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_script_builds_the_runs_network_and_reads_its_weights(shape):
    config = tiny(**SHAPES[shape])
    script = load_script(export.script_for(config, shape))
    ours = script.build_model(steps_per_epoch=10)
    lab = build_model(config, compile=False)
    assert ours.count_params() == lab.count_params()
    rng = np.random.default_rng(0)
    weights = {k: rng.normal(0, 0.5, v.shape).astype(np.float32) for k, v in export_weights(lab).items()}
    load_weights(lab, weights)
    script.set_weights(ours, weights)
    ids = encode(TEXTS, Vocabulary(("", "[UNK]", "film", "a", "not", "good", "the")), config.maxlen,
                 config.padding, config.truncating)
    np.testing.assert_allclose(np.asarray(ours(ids, training=False)), np.asarray(lab(ids, training=False)),
                               rtol=0, atol=1e-6)


def test_the_script_reads_text_as_the_lab_does(sample_halves):
    train, _ = sample_halves
    for config in (tiny(), tiny(padding="post", truncating="post", vocab_size=500)):
        script = load_script(export.script_for(config, "x"))
        vocabulary = script.build_vocabulary(train.texts)
        lab = Vocabulary.build(train.texts, config.vocab_size)
        assert tuple(vocabulary) == lab.words
        texts = TEXTS + train.texts[:50]
        np.testing.assert_array_equal(script.encode(texts, vocabulary),
                                      encode(texts, lab, config.maxlen, config.padding, config.truncating))


@needs_notebook
def test_exported_notebook_trains_one_short_epoch_on_the_sample(tmp_path):
    """What the README tells a learner to run, as a separate process, and no sentiment_core on its path."""
    out = tmp_path / "nb.py"
    assert cli.main(["export", "--model", str(NOTEBOOK), "--out", str(out)]) == 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(out), "train", "--data", str(SAMPLE_DIR), "--epochs", "1",
                           "--max-train", "64", "--save", str(tmp_path / "mine")], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    parameters = runs.load_run(NOTEBOOK).meta["parameters"]
    assert f"parameters: {parameters:,}" in done.stdout.splitlines()
    result = json.loads(done.stdout.strip().splitlines()[-2])
    assert result["epochs"] == 1 and np.isfinite(result["train_loss"]) and 0 <= result["test_accuracy"] <= 1
    assert {p.name for p in (tmp_path / "mine").iterdir()} == {"weights.npz", "vocab.json"}


@needs_notebook
def test_the_script_predicts_what_the_run_predicts_with_its_weights(tmp_path, capsys):
    run = runs.load_run(NOTEBOOK)
    script = load_script(export.script_for(run.config, run.name))
    expected = Engine.from_run(run).predict(TEXTS)
    (tmp_path / "run.zip").write_bytes(runs.to_zip(NOTEBOOK))
    for weights in (NOTEBOOK, tmp_path / "run.zip"):  # the run's folder, or the zip the Runs page downloads
        script.predict(types.SimpleNamespace(weights=str(weights), texts=TEXTS))
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        got = np.array([np.nan if line["probability"] is None else line["probability"] for line in lines])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
        assert np.isnan(got[-1])  # no word the model knows: no score, as in the lab
    with pytest.raises(SystemExit, match="weights.npz"):
        script.predict(types.SimpleNamespace(weights=str(tmp_path), texts=TEXTS))


def test_an_ensemble_is_refused_by_name():
    with pytest.raises(export.ExportError, match="members = 3"):
        export.script_for(tiny(members=3), "x")


@needs_notebook
def test_bad_paths_get_a_message_not_a_traceback(tmp_path, capsys):
    cases = {"folder": (str(NOTEBOOK), str(tmp_path), "is a folder"),
             "missing folder": (str(NOTEBOOK), str(tmp_path / "no" / "x.py"), "does not exist"),
             "no run": (str(tmp_path / "gone"), str(tmp_path / "x.py"), "no run at")}
    for model, out, message in cases.values():
        assert cli.main(["export", "--model", model, "--out", out]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.py").exists() and list(tmp_path.iterdir()) == []
    assert Config.from_dict(json.loads((NOTEBOOK / "config.json").read_text())).members == 1
    assert Path(export.export_run(NOTEBOOK, tmp_path / "x.py")).is_file()
