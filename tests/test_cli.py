"""The documented commands: train, evaluate, predict (and explain, runs), their help, and their refusals."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sentiment_core import cli, runs
from sentiment_core.config import SCHEMA, Config
from sentiment_core.people import Actor, owner_tag

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--vocab-size", "2000", "--maxlen", "40", "--embedding-dim", "8", "--units", "8", "--batch-size", "64"]


def python_m(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # SENTIMENT_CACHE and SENTIMENT_RUNS_DIR point to tmp (conftest)
    return subprocess.run([sys.executable, "-m", "sentiment_core", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """`python -m sentiment_core train ...`, run in this process (Keras is loaded here already)."""
    out = tmp_path_factory.mktemp("cli") / "demo"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(["train", "--data", "sample", "--cell", "gru", "--epochs", "2", "--out", str(out), *SMALL])
    assert code == 0, stderr.getvalue()
    (line,) = stdout.getvalue().strip().splitlines()  # progress goes to stderr: stdout is the JSON summary alone
    summary = json.loads(line)
    assert summary["run"] == str(out) and summary["n"] == 1000 and 0 <= summary["accuracy"] <= 1
    assert "epoch 2:" in stderr.getvalue() and "val_acc" in stderr.getvalue()
    return out


def test_train_saves_a_complete_run(demo):
    run = runs.load_run(demo)
    assert run.config.cell == "gru" and run.config.epochs == 2 and run.config.maxlen == 40
    assert run.meta["data"] == "sample" and run.meta["status"] == "complete"
    assert len(run.history["epochs"]) == 2
    assert (demo / "model.keras").is_file() and (demo / "card.md").read_text().startswith("# Model card: demo")
    card = (demo / "card.md").read_text()
    assert all(f"{p.label} `{getattr(run.config, p.name)}`" in card for p in SCHEMA.values())  # every hyperparameter
    assert run.weights["embedding"].dtype == np.int8  # a quarter of the bytes; everything else float32
    assert run.weights["embedding/scale"].shape == (run.config.vocab_size, 1)
    assert run.weights["rnn_1/forward/kernel"].dtype == np.float32


def test_no_keras_file_leaves_a_smaller_run_that_scores_the_same(demo, tmp_path):
    out = tmp_path / "slim"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(["train", "--data", "sample", "--cell", "gru", "--epochs", "2", "--out", str(out),
                         "--no-keras-file", *SMALL])
    assert code == 0 and not (out / "model.keras").exists()
    slim, full = runs.load_run(out), runs.load_run(demo)
    assert slim.metrics == full.metrics  # same seed, same training: only the file is left out
    assert runs.disk_usage(out) < runs.disk_usage(demo)


def test_evaluate_prints_json_metrics(demo, capsys):
    assert cli.main(["evaluate", "--model", str(demo), "--data", "sample"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"accuracy", "loss", "n", "confusion_matrix", "roc_auc"} <= set(result)
    assert result["n"] == 1000 and sum(map(sum, result["confusion_matrix"])) == 1000
    (tn, fp), (fn, tp) = result["confusion_matrix"]
    assert result["accuracy"] == pytest.approx((tn + tp) / 1000)
    # the same numbers as the run's own test evaluation
    assert result["accuracy"] == pytest.approx(runs.load_run(demo).metrics["accuracy"])
    # calibration: the expected calibration error and its reliability table over the same 1,000 reviews
    assert 0 <= result["ece"] <= 1 and len(result["reliability"]) == 10
    assert sum(row["count"] for row in result["reliability"]) == 1000


def test_predict_prints_one_json_line_per_text(demo):
    done = python_m("predict", "--model", str(demo), "a wonderful, moving film", "dull and far too long")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [line["text"] for line in lines] == ["a wonderful, moving film", "dull and far too long"]
    for line in lines:
        assert 0 < line["probability"] < 1
        assert line["label"] == ("positive" if line["probability"] >= 0.5 else "negative")


def test_predict_reads_stdin_and_reports_unknown_words(demo, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("horriblely good\n\nfine film\n"))
    assert cli.main(["predict", "--model", str(demo)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["text"] for line in lines] == ["horriblely good", "fine film"]
    assert lines[0]["out_of_vocabulary"] == ["horriblely"]


def test_explain_prints_words_with_attributions(demo, capsys):
    assert cli.main(["explain", "--model", str(demo), "a wonderful, moving film"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [row["word"] for row in result["tokens"]] == ["a", "wonderful", "moving", "film"]
    assert result["tokens"][-1]["as_it_reads"] == pytest.approx(result["probability"], abs=1e-5)


def test_runs_lists_the_runs_folder(demo, capsys):
    runs_dir = Path(os.environ["SENTIMENT_RUNS_DIR"])  # a temporary folder (conftest), never artifacts/
    assert runs_dir == runs.RUNS_DIR
    runs.import_zip(runs.to_zip(demo), "listed-by-cli", runs_dir, owner_tag("cli-test"))
    try:
        assert cli.main(["runs"]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
        (row,) = [r for r in rows if r["name"] == "listed-by-cli"]
        assert row["cell"] == "gru" and row["status"] == "complete" and row["shipped"] is False
        assert row["test_accuracy"] == pytest.approx(runs.load_run(demo).metrics["accuracy"])
    finally:
        runs.delete_run("listed-by-cli", runs_dir, Actor("cli-test"))


SUBCOMMANDS = sorted(next(a for a in cli.make_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices)


@pytest.mark.parametrize("command", [[], *[[name] for name in SUBCOMMANDS]])
def test_help_works_for_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m sentiment_core")
    if command == ["train"]:
        assert "--units" in out and "--data" in out and "--preset" in out and "sample" in out


def test_every_hyperparameter_has_a_flag_with_its_help_values_and_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    usage = capsys.readouterr().out
    (subparsers,) = [a for a in cli.make_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    actions = {a.dest: a for a in subparsers.choices["train"]._actions}
    for p in SCHEMA.values():
        flag = "--" + p.name.replace("_", "-")
        assert flag in usage and flag in actions[p.name].option_strings, p.name
        text = actions[p.name].help
        assert p.help in text and p.allowed().capitalize() in text and f"default {p.default}" in text, p.name


@pytest.mark.parametrize("name", sorted(SCHEMA))
def test_a_flag_sets_its_hyperparameter(name):
    p = SCHEMA[name]
    flag = "--" + name.replace("_", "-")
    if p.type is bool:
        value, argv = not p.default, [flag if not p.default else "--no-" + flag[2:]]
    else:
        value = next(c for c in p.choices if c != p.default) if p.choices else p.type(max(p.range))
        argv = [flag, str(value)]
    config = cli.build_config(cli.make_parser().parse_args(["train", "--out", "unused", *argv]))
    assert config == Config().replace(**{name: value})


def test_python_m_help():
    done = python_m("--help", timeout=60)
    assert done.returncode == 0 and "train" in done.stdout and "predict" in done.stdout


@pytest.mark.parametrize("flags,field", [(["--units", "0"], "units"), (["--dropout", "1.5"], "dropout"),
                                         (["--vocab-size", "5"], "vocab_size"), (["--units", "many"], "units"),
                                         (["--cell", "transformer"], "cell"), (["--padding", "sideways"], "padding")])
def test_bad_flags_exit_2_naming_the_field(tmp_path, capsys, flags, field):
    out = tmp_path / "never"
    try:
        code = cli.main(["train", "--data", "sample", "--out", str(out), *flags])
    except SystemExit as exited:  # argparse refuses values of the wrong type or outside the choices
        code = exited.code
    assert code == 2
    assert field in capsys.readouterr().err.replace("-", "_")  # --vocab-size or vocab_size
    assert not out.exists()


def test_bad_data_source_exits_2_naming_the_alternatives(tmp_path, capsys):
    code = cli.main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"), *SMALL])
    assert code == 2
    assert "--data sample" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_training_into_an_existing_run_refuses_and_keeps_it(demo, capsys):
    before = {p.name: p.read_bytes() for p in demo.iterdir()}
    code = cli.main(["train", "--data", "sample", "--epochs", "1", "--out", str(demo), *SMALL])
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in demo.iterdir()} == before
    runs.load_run(demo)
    assert sorted(p.name for p in demo.parent.iterdir()) == ["demo"]


def test_a_bad_run_name_is_refused(tmp_path, capsys):
    assert cli.main(["train", "--data", "sample", "--out", str(tmp_path / ".hidden"), *SMALL]) == 2
    assert "invalid run name" in capsys.readouterr().err
    assert not (tmp_path / ".hidden").exists()


def test_a_damaged_model_is_refused_by_evaluate_and_predict(demo, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for p in demo.iterdir():
        (damaged / p.name).write_bytes(p.read_bytes())
    (damaged / "weights.npz").write_bytes((damaged / "weights.npz").read_bytes()[:-10])
    assert cli.main(["predict", "--model", str(damaged), "good"]) == 2
    assert "weights.npz" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", str(damaged), "--data", "sample"]) == 2
    assert "weights.npz" in capsys.readouterr().err
