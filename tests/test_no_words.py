"""Texts with no word the model knows, and hostile text in general, at every text entry point.

The engine defines "no words" once (`text.known_words` == 0: nothing left after standardizing, or only
unknown words): batch predictions are NaN there, single readings raise NoWordsError, the CLI prints a
JSON line with `words: 0` and a null probability, and the pages say so instead of scoring.
Property-based tests run the engine's text entry points on arbitrary Unicode, against both shipped
runs and a small trained model of every shape.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import string

import numpy as np
import pytest
from conftest import ENSEMBLE, MODEL_SHAPES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentiment_core import cli, insights, runs
from sentiment_core.inference import Engine
from sentiment_core.metrics import evaluate
from sentiment_core.text import NoWordsError, encode, encode_corpus, known_words

SHIPPED = {name: runs.SHIPPED_DIR / name for name in ("notebook", "best")}
NO_WORDS = ["...", "!!! ???", "<br /><br />", "", "   ", "\x00\x01\x1f", "<br/><BR >", "xqzzyv plorbnik"]
HOSTILE = [*NO_WORDS, "\u200b\u2028\u3000", "🙂🙂🙂", "日本語のレビュー", "ｇｒｅａｔ", "\ud800 lone surrogate",
           "a\rb\x85c", "'" * 50, "great", "awful movie", "good " * 3000]

settings.register_profile("engine", deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
ENGINE_SETTINGS = settings(settings.get_profile("engine"), max_examples=25)


# ---------------------------------------------------------------- the models: shipped and every shape
@pytest.fixture(scope="module")
def shipped():
    return {name: runs.load_run(path) for name, path in SHIPPED.items()}


@pytest.fixture(scope="module", params=["shipped-notebook", "shipped-best", *MODEL_SHAPES, "ensemble"])
def model(request, shipped, trained):
    """(run, engine) of a shipped run or of a tiny trained model of one shape."""
    name = request.param
    if name.startswith("shipped-"):
        run = shipped[name.removeprefix("shipped-")]
    else:
        run = trained(**(ENSEMBLE if name == "ensemble" else MODEL_SHAPES[name]))
    return run, Engine.from_run(run)


# ---------------------------------------------------------------- hostile text
def texts_for(engine: Engine, max_words: int) -> st.SearchStrategy[str]:
    """Arbitrary Unicode (lone surrogates and control characters too), punctuation, markup, and
    sequences of the model's own and unknown words, from one word to `max_words`."""
    known = st.sampled_from(engine.vocab.words[2:200])
    unknown = st.from_regex(r"[a-z]{3,12}zq", fullmatch=True)
    separators = st.sampled_from([" ", "  ", "\n", "\t", ", ", "... ", "<br />", "!", "\u00a0", "\u3000"])
    words = st.lists(st.tuples(st.one_of(known, unknown), separators), min_size=1, max_size=max_words)
    return st.one_of(
        st.sampled_from(HOSTILE[:-1]),
        st.text(st.characters(codec=None, exclude_categories=())),
        st.text(st.sampled_from(string.punctuation + " \t\n")),
        st.lists(st.sampled_from(["<br />", "<br/>", "<BR >", "<br>", " "])).map("".join),
        st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"])),
        known, unknown,
        words.map(lambda pairs: "".join(w + s for w, s in pairs)),
    )


def check_text(engine: Engine, text: str, max_words_read: int | None = None) -> None:
    """Every engine entry point on one text: a score in [0, 1], or the documented no-words answer."""
    p = float(engine.predict([text])[0])
    tokens = engine.tokens(text)
    words = int(known_words(engine.encode([text]))[0])
    assert words == sum(not t.oov for t in tokens)  # the ids path and the tokens path count alike
    if words == 0:
        assert math.isnan(p)
        for entry_point in (engine.probability, engine.read, engine.occlusion):
            with pytest.raises(NoWordsError, match="No word the model knows"):
                entry_point(text)
        return
    assert 0.0 <= p <= 1.0
    assert engine.probability(text) == p
    if max_words_read is not None and len(tokens) > max_words_read:
        return  # reading every prefix of a long review costs seconds for `best`
    reading = engine.read(text)
    assert reading.probability == pytest.approx(p, abs=1e-6)
    assert len(reading.tokens) == len(reading.as_it_reads) == len(tokens)
    assert np.all((reading.as_it_reads >= 0) & (reading.as_it_reads <= 1))
    assert reading.as_it_reads[-1] == pytest.approx(p, abs=1e-5)
    occluded_tokens, deltas = engine.occlusion(text)
    assert len(occluded_tokens) == len(deltas) == len(tokens) and np.all(np.isfinite(deltas))


@ENGINE_SETTINGS
@given(data=st.data())
def test_every_engine_entry_point_takes_any_text(model, data):
    run, engine = model
    best = run.config.members > 1 and run.config.maxlen > 100
    text = data.draw(texts_for(engine, max_words=30 if best else 120), label="text")
    check_text(engine, text, max_words_read=60 if best else None)


@ENGINE_SETTINGS
@given(data=st.data())
def test_the_two_tokenizer_paths_agree_on_any_text(model, data):
    _, engine = model
    c = engine.config
    batch = data.draw(st.lists(texts_for(engine, max_words=80), max_size=5), label="texts")
    per_text = encode(batch, engine.vocab, c.maxlen, c.padding, c.truncating)
    np.testing.assert_array_equal(encode_corpus(batch, engine.vocab, c.maxlen, c.padding, c.truncating), per_text)
    # scoring several texts at once answers each as alone
    alone = [float(engine.predict([t])[0]) for t in batch]
    np.testing.assert_allclose(engine.predict(batch), np.array(alone, dtype=np.float32), atol=1e-6)


def test_hidden_state_trajectory_on_no_words_and_one_word(model):
    run, engine = model
    with pytest.raises(NoWordsError):
        insights.trajectory(engine, run.insights, "!!!")
    one_word = engine.vocab.words[2]
    path = insights.trajectory(engine, run.insights, one_word)
    assert path.shape == (1, 2) and np.all(np.isfinite(path))


# ---------------------------------------------------------------- the regressions of the issue
@pytest.mark.parametrize("text", NO_WORDS)
def test_best_gives_no_score_instead_of_crashing(shipped, text):
    """On the old main, `best` (max pooling) raised 'zero-size array to reduction operation maximum'."""
    engine = Engine.from_run(shipped["best"])
    assert math.isnan(engine.predict([text])[0])
    probabilities = engine.predict(["a wonderful film", text, "an awful film"])
    assert math.isnan(probabilities[1]) and probabilities[0] > 0.5 > probabilities[2]
    with pytest.raises(NoWordsError):
        engine.read(text)


@pytest.mark.parametrize("text", NO_WORDS)
def test_every_shape_gives_no_score(trained, text):
    for shape in [*MODEL_SHAPES.values(), ENSEMBLE]:
        engine = Engine.from_run(trained(**shape))
        assert math.isnan(engine.predict([text])[0]), shape
        assert np.all(np.isfinite(engine.forward(engine.encode([text]))[0]))  # the network itself never fails


def cli_lines(*argv: str) -> list[dict]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    assert code == 0, err.getvalue()
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("name", list(SHIPPED))
@pytest.mark.parametrize("text", ["...", "", "!!! ???", "<br /><br />"])
def test_cli_predict_and_explain_say_no_words(name, text):
    """On the old main `predict` crashed on best, answered 0.497 on notebook, and `explain` said 0.75."""
    model = str(SHIPPED[name])
    (predicted,) = cli_lines("predict", "--model", model, text)
    explained = cli_lines("explain", "--model", model, text)[0]
    for line in (predicted, explained):
        assert line["text"] == text and line["words"] == 0
        assert line["probability"] is None and line["label"] is None and "No word the model knows" in line["note"]


@pytest.mark.parametrize("name", list(SHIPPED))
def test_cli_predict_equals_explain(name):
    model = str(SHIPPED[name])
    reviews = ["A wonderful, moving film.", "xqzzyv", "dull<br />dull", "not good, not bad", "…"]
    predicted = cli_lines("predict", "--model", model, *reviews)
    for text, line in zip(reviews, predicted, strict=True):
        (explained,) = cli_lines("explain", "--model", model, text)
        assert explained["probability"] == pytest.approx(line["probability"], abs=2e-6) \
            if line["probability"] is not None else explained["probability"] is None
        assert explained["words"] == line["words"] and explained["label"] == line["label"]


def test_evaluate_leaves_no_word_reviews_out_and_counts_them(tmp_path, shipped):
    import gzip

    rows = [("A wonderful film, moving and funny.", 1), ("...", 0), ("An awful, boring mess.", 0), ("", 1),
            ("<br /><br />", 1)]
    for split in ("train", "test"):
        with gzip.open(tmp_path / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
            for text, label in rows:
                f.write(json.dumps({"text": text, "label": label}) + "\n")
    (result,) = cli_lines("evaluate", "--model", str(SHIPPED["best"]), "--data", str(tmp_path))
    assert result["n"] == 2 and result["no_words"] == 3 and result["accuracy"] == 1.0
    assert math.isfinite(result["loss"])


def test_metrics_count_unscored_reviews():
    result = evaluate(np.array([1, 0, 1]), np.array([0.9, np.nan, 0.2]))
    assert result["n"] == 2 and result["no_words"] == 1 and result["accuracy"] == 0.5


def test_integrated_gradients_refuse_no_words_and_take_one_word(trained):
    from sentiment_core.explain import integrated_gradients_for

    run = trained(**MODEL_SHAPES["stacked_max_pool_lstm"])
    with pytest.raises(NoWordsError):
        integrated_gradients_for(run, "<br /> ...")
    with pytest.raises(NoWordsError):
        integrated_gradients_for(run, "xqzzyv")
    values = integrated_gradients_for(run, run.vocab.words[5])
    assert values.shape == (1,) and np.isfinite(values).all()
