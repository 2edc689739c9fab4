"""The app's own parts (app/): input limits, CSV errors, HTML escaping, chart frames, widgets' bounds, and the
line between the app and the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from app import frames, html, inputs, progress, run_picker, widgets
from sentiment_core import protocol
from sentiment_core.config import PRESETS, ConfigError
from sentiment_core.jobs import Limits
from sentiment_core.protocol import BatchEvent, EndEvent, EpochEvent, Event, Job, StartEvent, StatusEvent, UnknownEvent
from sentiment_core.text import Token


def test_prepare_reviews_strips_and_skips_empty_lines():
    batch = inputs.prepare_reviews(["  good  ", "", "   ", None, float("nan"), "bad"])
    assert batch.texts == ["good", "bad"]
    assert any("empty" in note for note in batch.notes)


def test_prepare_reviews_refuses_nothing():
    with pytest.raises(inputs.InputError, match="nothing to score"):
        inputs.prepare_reviews(["", "  \n  "])


def test_prepare_reviews_caps_length_keeping_what_the_model_reads():
    text = "a " * 100_000 + "END"
    pre = inputs.prepare_reviews([text], truncating="pre")
    post = inputs.prepare_reviews([text], truncating="post")
    assert len(pre.texts[0]) == inputs.MAX_REVIEW_CHARS and pre.texts[0].endswith("END")
    assert post.texts[0].startswith("a a")
    assert "shortened" in pre.notes[0]


def test_prepare_reviews_caps_rows_and_total():
    rows = inputs.prepare_reviews(["ok"] * (inputs.MAX_ROWS + 5))
    assert len(rows.texts) == inputs.MAX_ROWS and any("first" in n for n in rows.notes)
    total = inputs.prepare_reviews(["x" * 90_000] * 30, max_total_chars=200_000)
    assert len(total.texts) == 2 and any("MB" in n for n in total.notes)


def test_prepare_reviews_cleans_binary_junk():
    batch = inputs.prepare_reviews(["\x00\x01abc\x7f\ufffe def"])
    assert batch.texts == ["abc   def"]


def test_read_csv_reviews():
    assert inputs.read_csv_reviews(b"id,text\n1,nice film\n2,\"bad, long\"\n") == ["nice film", "bad, long"]
    assert inputs.read_csv_reviews("\ufefftext\nok\n".encode()) == ["ok"]  # Excel's BOM
    assert inputs.read_csv_reviews(b"Text\nok\n") == ["ok"]  # header case does not matter


@pytest.mark.parametrize("payload, message", [
    (b"", "empty"),
    (b"review\nnice\n", "column named 'text'"),
    (b"text\n\xff\xfe\n", "not valid UTF-8"),
    (b"\x00\x01\x02binary", "binary"),
    (b'text\n"never closed\n', "could not be read as CSV"),
])
def test_read_csv_reviews_errors(payload, message):
    with pytest.raises(inputs.InputError, match=message):
        inputs.read_csv_reviews(payload)


def test_attribution_html_escapes_and_marks_unknown_words():
    tokens = [Token("<script>alert(1)</script>", 1, True), Token('a"b', 5, False), Token("good", 7, False)]
    shaded = html.attribution_html(tokens, [0.0, -0.2, 0.4])
    assert "<script>" not in shaded and "&lt;script&gt;" in shaded
    assert 'a"b' not in shaded
    assert shaded.count("underline dotted") == 1
    assert "rgba(26,152,80" in shaded and "rgba(215,48,39" in shaded


def test_default_run_prefers_shipped_best_then_notebook_then_newest():
    rows = [{"name": "notebook", "path": "/s/notebook", "shipped": True},
            {"name": "mine", "path": "/r/mine", "shipped": False},
            {"name": "broken", "path": "/r/broken", "shipped": False, "error": "x"}]
    assert run_picker.default_run(rows) == "/s/notebook"
    assert run_picker.default_run([*rows, {"name": "best", "path": "/s/best", "shipped": True}]) == "/s/best"
    assert run_picker.default_run(rows[1:]) == "/r/mine"
    assert run_picker.default_run(rows[2:]) is None


def test_config_from_values_keeps_types_and_names_the_field():
    values = {**PRESETS["tiny"].to_dict(), "units": 16.0, "learning_rate": 1}
    config = widgets.config_from_values(values)
    assert config.units == 16 and isinstance(config.units, int) and isinstance(config.learning_rate, float)
    with pytest.raises(ConfigError, match="dropout"):
        widgets.config_from_values({**values, "dropout": 0.95})


def test_bounds_follow_server_limits():
    assert widgets.bounds("units", Limits(caps={"units": 64})) == (1, 64)
    assert widgets.bounds("bigram_buckets", Limits(caps={"bigram_buckets": 100_000})) == (0, 100_000)
    assert widgets.bounds("dropout", Limits()) == (0.0, 0.9)


def test_compare_frame_has_a_row_per_hyperparameter_in_the_train_pages_order():
    from types import SimpleNamespace

    from sentiment_core.config import GROUPED

    run = SimpleNamespace(name="r", shipped=False, config=PRESETS["best"], metrics={"accuracy": 0.9}, meta={},
                          history={"epochs": []})
    frame = frames.compare_frame([run])
    order = [p.name for group in GROUPED.values() for p in group]
    assert list(frame.index[-len(order):]) == order
    assert frame.loc["bigram_buckets", "r"] == "50000" and frame.loc["cell", "r"] == "gru"


def test_ema_is_bias_corrected():
    smoothed = progress.ema([1.0, 1.0, 1.0], alpha=0.1)
    assert np.allclose(smoothed, 1.0)
    assert progress.ema([0.0, 10.0], alpha=0.5)[1] == pytest.approx(10 * 0.5 / 0.75)


def _events(n_batches: int, steps: int = 10, epochs: int = 2) -> list[Event]:
    events: list[Event] = [StartEvent(epochs=epochs, steps_per_epoch=steps, samples=100, parameters=10)]
    for i in range(n_batches):
        events.append(BatchEvent(epoch=i // steps + 1, step=i % steps + 1, global_step=i + 1,
                                 loss=0.7 - i * 0.01, accuracy=0.5 + i * 0.01, seconds=5.0 + i))
    return events


def _job(**fields) -> Job:
    return Job(**{"id": "a1", "owner": "o", "name": "n", "data": "sample", "config": {}, "state": "running",
                  "submitted": 0.0, **fields})


def test_progress_and_eta_ignore_compile_time():
    info = progress.progress(_events(5), _job(started=100.0), now=110.0)
    assert info["fraction"] == pytest.approx(5 / 20)
    assert info["eta"] == pytest.approx(15.0)  # 1 s per batch after the first, 15 batches left
    assert info["elapsed"] == pytest.approx(10.0)
    queued = progress.progress([], _job(state="queued", position=3), now=0)
    assert "position 3" in queued["text"]


def test_progress_skips_event_kinds_it_does_not_know():
    events = [*_events(5), UnknownEvent("checkpoint", {"type": "checkpoint", "path": "x"})]
    assert progress.progress(events, _job(started=100.0), now=110.0)["fraction"] == pytest.approx(5 / 20)
    parts = progress.split_events(events)
    assert parts.start == events[0] and len(parts.batch) == 5 and parts.end is None


def test_an_ensemble_trained_apart_shows_its_other_networks_beside_the_first_ones_batches():
    before = StatusEvent("prepared in 6.6 s (cache hit)")
    news = StatusEvent("network 3 of 6: epoch 2, accuracy on its held-out reviews 0.8678")
    events = [before, *_events(5), news, *_events(6)[6:]]
    parts = progress.split_events(events)
    assert parts.status == [before] and parts.later == [news] and len(parts.batch) == 6
    text = progress.progress(events, _job(started=100.0), now=110.0)["text"]
    assert text.startswith("network 1: epoch 1/2, batch 6/10") and text.endswith(news.message)
    assert progress.progress(_events(5), _job(started=100.0), now=110.0)["text"].startswith("epoch 1/2")


def test_a_job_queued_again_shows_its_new_attempt_only():
    """A lost worker's events stay in events.jsonl; the page must not splice them into the next attempt's."""
    again = protocol.AttemptEvent(attempt=2, reason="the worker was lost (node died); queued again at its place")
    assert protocol.parse_event(again.to_json()) == again
    events = [*_events(7), again, *_events(3)]
    parts = progress.split_events(events)
    assert [b.global_step for b in parts.batch] == [1, 2, 3]
    assert parts.status[0].message.startswith("attempt 2: the worker was lost")
    info = progress.progress(events, _job(started=100.0, attempt=2), now=110.0)
    assert info["fraction"] == pytest.approx(3 / 20)
    assert _job(attempt=2).to_dict()["attempt"] == 2 and "attempt" not in _job().to_dict()


def test_thinning_keeps_the_ends_and_each_buckets_extremes():
    rng = np.random.default_rng(0)
    values = rng.normal(size=5000)
    values[1234], values[4321] = 40.0, -40.0  # one spike and one dip, single points
    kept = progress.thin(values, max_points=200)
    assert len(kept) <= 202 and kept[0] == 0 and kept[-1] == len(values) - 1
    assert np.all(np.diff(kept) > 0)  # in order, no repeats
    assert 1234 in kept and 4321 in kept  # every k-th point would likely step over both
    for bucket in np.array_split(np.arange(len(values)), 100):
        assert bucket[np.argmin(values[bucket])] in kept and bucket[np.argmax(values[bucket])] in kept
    assert np.array_equal(progress.thin(values[:150], max_points=200), np.arange(150))  # short: everything


def test_ema_matches_the_running_sum_it_replaced():
    values = np.random.default_rng(1).normal(size=300)
    acc = weight = 0.0
    expected = []
    for v in values:
        acc, weight = 0.9 * acc + 0.1 * v, 0.9 * weight + 0.1
        expected.append(acc / weight)
    np.testing.assert_allclose(progress.ema(values, alpha=0.1), expected, rtol=1e-12)


def test_batch_columns_and_epoch_frames():
    batches = [e for e in _events(20) if isinstance(e, BatchEvent)]
    columns = progress.batch_columns(batches)
    assert set(columns) == {"loss", "accuracy"} and sum(len(c["step"]) for c in columns.values()) == 40
    assert sum(len(c["step"]) for c in progress.batch_columns(batches * 100, max_points=50).values()) <= 2 * 52
    epochs = progress.epoch_frame([EpochEvent(epoch=1, loss=0.6, accuracy=0.7, val_loss=0.5, val_accuracy=0.75)])
    assert len(epochs) == 4 and set(epochs["split"]) == {"train", "validation"}
    history = progress.epoch_frame([{"epoch": 1, "loss": 0.6, "accuracy": 0.7, "val_loss": 0.5, "val_accuracy": 0.75}])
    assert history.equals(epochs)  # a saved run's history rows draw the same


def test_end_note():
    assert "Stopped by you" in progress.end_note(EndEvent(False, True, None, 1.0), {})
    assert "epoch 2" in progress.end_note(EndEvent(True, False, 2, 1.0), {"patience": 1})
    assert progress.end_note(None, {}) == ""


def test_grad_norm_frame_selects_epochs_and_drops_zeros():
    history = {"grad_norms": [{"epoch": 0, "norms": [1.0, 0.0, 3.0]}, {"epoch": 1, "norms": [2.0, 2.0, 2.0]}]}
    assert set(frames.grad_norm_frame({"a": history}, "first")["epoch"]) == {0}
    assert len(frames.grad_norm_frame({"a": history}, "first")) == 2  # log scale: zero dropped
    assert set(frames.grad_norm_frame({"a": history}, "last")["epoch"]) == {1}
    assert len(frames.grad_norm_frame({"a": history, "b": {}}, "all")) == 5


def test_confusion_frame():
    frame = frames.confusion_frame([[8, 2], [1, 9]])
    assert frame["count"].sum() == 20
    assert frame.query("actual == 'negative' and predicted == 'negative'")["share"].item() == 0.8


def test_suggest_import_name():
    assert inputs.suggest_import_name("my run (1).zip", []) == "my-run-1"
    assert inputs.suggest_import_name("notebook.zip", ["notebook"]) == "notebook-2"
    assert inputs.suggest_import_name("..zip", []) == "run"


def test_the_engine_imports_nothing_of_the_app():
    """sentiment_core serves the CLI and notebooks: no module of it imports streamlit, altair or app/."""
    import ast
    from pathlib import Path

    import sentiment_core

    found = {}
    for path in Path(sentiment_core.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad = [n for n in names if n.split(".")[0] in ("streamlit", "altair", "app")]
            if bad:
                found[path.name] = bad
    assert not found, found


def test_the_app_parts_import_no_deep_learning_library():
    import subprocess
    import sys

    code = ("import sys, app.frames, app.html, app.inputs, app.progress, app.texts, app.widgets, app.charts; "
            "bad = [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_hyperparameter_explains_itself_on_the_train_page():
    from dataclasses import fields

    from sentiment_core.config import SCHEMA, Config

    missing = [f.name for f in fields(Config) if len(SCHEMA[f.name].help) < 20]
    assert not missing, f"no help text for {missing}"


def test_jobs_table_lists_newest_first_with_queue_places_and_numeric_accuracy():
    jobs = [_job(id="a1", name="first", state="done", config={"cell": "gru"}, data="/data/imdb",
                 metrics={"accuracy": 0.875}, submitted=100.0),
            _job(id="b2", name="second", state="running", config={"cell": "lstm"}, data="sample", submitted=150.0),
            _job(id="c3", name=None, state="queued", position=2, config={}, data="tfds", submitted=190.0)]
    table = progress.jobs_table(jobs, now=200.0)
    assert table["job"].to_pylist() == ["c3", "b2", "a1"]
    assert table["state"].to_pylist() == ["queued (#2 in queue)", "running", "done"]
    assert table["data"].to_pylist() == ["tfds", "sample", "imdb"]
    # A float column, so a job with no score yet is an empty cell, not the text "None".
    assert table.schema.field("test accuracy").type == pa.float64()
    assert table["test accuracy"].to_pylist() == [None, None, 0.875]
    assert table["submitted"].to_pylist() == ["just now", "just now", "1 min ago"]
    assert progress.submitted_ago(7300) == "2 h ago" and progress.submitted_ago(-5) == "just now"


def test_the_app_computes_with_one_blas_thread():
    """Sessions are the server's parallelism; BLAS threads per computation only spin against each other.
    Checked in a fresh interpreter, as the app server imports it (Keras, loaded by other tests here, brings
    BLAS libraries of its own that the server never loads)."""
    check = ("import app.state; from threadpoolctl import threadpool_info; "
             "print([p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'])")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[1]"
