"""Text to ids: standardization, vocabulary, padding, and the parity of the two encoding paths."""

from __future__ import annotations

import random
import sys
from collections import Counter

import numpy as np
import pytest

from sentiment_core import text
from sentiment_core.text import OOV, PAD, Vocabulary

NASTY = [
    "A great film.\nThen it fell apart.\r\nStill: worth it!",
    "first line<br/>second line<BR />third<br>fourth<Br  />fifth",
    "broken <br\n/> markup across a newline",
    "Ünïcödé çàfé — naïve “quotes” and don’t forget the emoji 🎬🍿 ok",
    "ΣΊΣΥΦΟΣ İstanbul straße ﬁne Kelvin K",
    "",
    "   ",
    "!!!...???",
    "'''",
    "tabs\tand\u00a0non-breaking\u2028line\u2029separators\x0bvertical\x0cfeed\x1crecord\x85next",
    "ideographic\u3000space em\u2003space unit\x1fseparator thin\u202fspace ogham\u1680mark",
    "don't won't it's",
    "a" * 500,
    " ".join(["word"] * 300),
    "surrogate \ud800 alone",
    "\n\n\n",
]


def test_standardize_drops_markup_and_punctuation_and_lowercases():
    assert text.tokenize("Great<br />MOVIE!It was, truly: great.") == ["great", "movie", "it", "was", "truly",
                                                                        "great"]
    assert text.tokenize("one<BR/>two<br>three<Br  />four") == ["one", "two", "three", "four"]
    assert "br" not in text.tokenize("x <br /> y <br/> z")
    assert text.tokenize("Don't stop") == ["dont", "stop"]
    assert text.tokenize("Don\u2019t stop") == ["dont", "stop"]
    assert text.tokenize("well-made (really)") == ["well", "made", "really"]
    assert text.tokenize("!!!...") == []
    assert text.standardize("ABC") == "abc"


def test_vocabulary_indices_and_frequency_order():
    vocab = Vocabulary.build(["b a a c", "a b d", "c c c"], size=100)
    assert vocab.words[PAD] == "" and vocab.words[OOV] == "[UNK]"
    assert (PAD, OOV) == (0, 1)
    # a: 3, c: 4, b: 2, d: 1 -> c, a, b, d
    assert vocab.words[2:] == ("c", "a", "b", "d")
    assert vocab.id("c") == 2 and vocab.id("never-seen") == OOV
    assert vocab.ids(["a", "zzz"]) == [3, OOV]


def test_vocabulary_is_truncated_and_deterministic(sample_halves):
    train, _ = sample_halves
    vocab = Vocabulary.build(train.texts, size=500)
    assert len(vocab) == 500
    shuffled = list(train.texts)
    random.Random(0).shuffle(shuffled)
    assert Vocabulary.build(shuffled, size=500).words == vocab.words
    counts = Counter(w for t in train.texts for w in text.tokenize(t))
    # most frequent first; ties broken alphabetically
    ranked = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    assert list(vocab.words[2:]) == ranked[:498]
    assert vocab.words[2] == "the"


def test_vocabulary_counts_words_as_tokenize_reads_them():
    counts = Counter(w for t in NASTY for w in text.tokenize(t))
    vocab = Vocabulary.build(NASTY, size=10_000)
    assert set(vocab.words[2:]) == set(counts)
    assert "br" not in vocab.words


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_pad_matches_keras_pad_sequences(padding, truncating):
    import keras

    rng = np.random.default_rng(0)
    sequences = [rng.integers(1, 50, size=int(n)).tolist() for n in rng.integers(0, 25, size=200)]
    sequences += [[], [7], list(range(1, 11)), list(range(1, 12))]
    for maxlen in (1, 5, 10, 30):
        expected = keras.utils.pad_sequences(sequences, maxlen=maxlen, padding=padding, truncating=truncating)
        got = text.pad(sequences, maxlen, padding, truncating)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, expected)


def test_pad_keeps_the_end_with_pre_truncation():
    assert text.pad([[1, 2, 3, 4]], 2).tolist() == [[3, 4]]
    assert text.pad([[1, 2, 3, 4]], 2, truncating="post").tolist() == [[1, 2]]
    assert text.pad([[5]], 3).tolist() == [[0, 0, 5]]
    assert text.pad([[5]], 3, padding="post").tolist() == [[5, 0, 0]]


@pytest.mark.parametrize("padding,truncating,maxlen", [("pre", "pre", 60), ("post", "post", 60), ("pre", "post", 7),
                                                        ("post", "pre", 300)])
def test_encode_and_encode_corpus_agree_on_the_whole_sample(sample_halves, padding, truncating, maxlen):
    train, test = sample_halves
    vocab = Vocabulary.build(train.texts, size=2000)
    for split in (train, test):
        per_text = text.encode(split.texts, vocab, maxlen, padding, truncating)
        corpus = text.encode_corpus(split.texts, vocab, maxlen, padding, truncating)
        assert per_text.shape == (len(split), maxlen)
        np.testing.assert_array_equal(per_text, corpus)


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_encode_and_encode_corpus_agree_on_nasty_strings(padding, truncating):
    vocab = Vocabulary.build(NASTY + ["line second fourth word film"], size=1000)
    for maxlen in (5, 40, 400):
        per_text = text.encode(NASTY, vocab, maxlen, padding, truncating)
        corpus = text.encode_corpus(NASTY, vocab, maxlen, padding, truncating)
        np.testing.assert_array_equal(per_text, corpus)
        for i, review in enumerate(NASTY):  # one review alone reads the same as in a corpus
            np.testing.assert_array_equal(text.encode_corpus([review], vocab, maxlen, padding, truncating)[0],
                                          per_text[i])
    assert text.encode([""], vocab, 5).tolist() == [[0, 0, 0, 0, 0]]


def test_corpora_split_on_every_character_that_str_split_does():
    """Training splits a corpus's UTF-8 bytes, which know only ASCII whitespace; the others are blanked first."""
    others = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c) not in " \t\n\r\x0b\x0c"]
    review = "x".join(others) + "x"
    assert text.standardize_corpus_bytes([review]).split() == [b"x"] * len(others) \
        == [w.encode() for w in text.tokenize(review)]


def test_encoding_no_texts_gives_no_rows():
    vocab = Vocabulary.build(["a b"], size=100)
    assert text.encode([], vocab, 5).shape == (0, 5)
    assert text.encode_corpus([], vocab, 5).shape == (0, 5)


def test_read_as_model_matches_the_encoded_row(sample_halves):
    train, _ = sample_halves
    vocab = Vocabulary.build(train.texts, size=2000)
    review = train.texts[3]
    for truncating in ("pre", "post"):
        tokens = text.read_as_model(review, vocab, 30, truncating)
        row = text.encode([review], vocab, 30, "pre", truncating)[0]
        assert [t.id for t in tokens] == row[row != 0].tolist()
        assert all(t.oov == (t.id == OOV) for t in tokens)
    words = text.tokenize(review)
    assert [t.word for t in text.read_as_model(review, vocab, 30, "pre")] == words[-30:]
    assert [t.word for t in text.read_as_model(review, vocab, 30, "post")] == words[:30]


def test_out_of_vocabulary_reports_the_notebooks_misspelling(sample_halves):
    train, _ = sample_halves
    vocab = Vocabulary.build(train.texts, size=2000)
    assert text.out_of_vocabulary("The movie was horriblely bad", vocab) == ["horriblely"]
    assert text.out_of_vocabulary("The movie was bad", vocab) == []


@pytest.mark.parametrize("padding,truncating", [("pre", "pre"), ("post", "post")])
def test_encode_splits_in_worker_processes_equals_one_process(sample_halves, padding, truncating):
    train, test = sample_halves
    others = [test.texts, test.texts[:1], []]  # a part shorter than the workers, and an empty split
    one_vocab, one = text.encode_splits(train.texts, others, 3000, 80, padding, truncating, workers=1)
    two_vocab, two = text.encode_splits(train.texts, others, 3000, 80, padding, truncating, workers=3)
    assert one_vocab.words == two_vocab.words == Vocabulary.build(train.texts, 3000).words
    assert [a.shape for a in two] == [(len(train), 80), (len(test), 80), (1, 80), (0, 80)]
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one[1], text.encode(test.texts, one_vocab, 80, padding, truncating))


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_encode_splits_reads_nasty_strings_as_encode_does(padding, truncating):
    train = ["", *NASTY, "<", ""]  # empty reviews at both ends, and one that is only the boundary's character
    for maxlen in (3, 40, 400):
        vocab, (x_train, x_test) = text.encode_splits(train, [NASTY[::-1]], 50, maxlen, padding, truncating,
                                                      workers=1)
        assert vocab.words == Vocabulary.build(train, 50).words
        np.testing.assert_array_equal(x_train, text.encode(train, vocab, maxlen, padding, truncating))
        np.testing.assert_array_equal(x_test, text.encode(NASTY[::-1], vocab, maxlen, padding, truncating))


def test_encode_splits_gives_the_same_in_any_chunks(sample_halves, monkeypatch):
    """Reviews are tokenized a chunk at a time to bound memory; word ids, counts and rows do not change."""
    train, test = sample_halves
    whole = text.encode_splits(train.texts, [test.texts, []], 3000, 60, workers=1)
    monkeypatch.setattr(text, "CHUNK", 7)  # chunks that end mid-way through the splits, and a last short one
    chunked = text.encode_splits(train.texts, [test.texts, []], 3000, 60, workers=1)
    assert chunked[0].words == whole[0].words
    for a, b in zip(chunked[1], whole[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_encode_splits_falls_back_to_one_process_when_workers_cannot_start(sample_halves, monkeypatch):
    train, test = sample_halves
    expected = text.encode_splits(train.texts[:300], [test.texts[:100]], 500, 30, workers=1)

    def no_processes(*args, **kwargs):
        raise OSError("no processes here")
    monkeypatch.setattr(text, "ProcessPoolExecutor", no_processes)
    with pytest.warns(UserWarning, match="one process"):
        vocab, arrays = text.encode_splits(train.texts[:300], [test.texts[:100]], 500, 30, workers=2)
    assert vocab.words == expected[0].words
    np.testing.assert_array_equal(arrays[1], expected[1][1])


def test_worker_processes_are_spawned_by_default_only_where_re_importing_main_is_harmless(monkeypatch):
    import types
    script = types.ModuleType("__main__")
    script.__file__, script.__spec__ = "/home/student/my_script.py", None  # may lack a __main__ guard
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert not text._spawn_is_safe()
    script.__spec__ = types.SimpleNamespace(name="sentiment_core.jobs")  # our job worker
    assert text._spawn_is_safe()
    notebook = types.ModuleType("__main__")  # Jupyter, `python -c`: nothing to re-import
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    assert text._spawn_is_safe()
