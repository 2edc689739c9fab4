"""Text to integer sequences, in pure Python and NumPy.

Training and inference share this module, so a saved model reads a review
exactly as it was taught to, with no TensorFlow in the app's process.
Two paths produce the same ids: `encode` reads one text at a time (inference),
`encode_corpus` treats the whole corpus as one string (training, ~10x faster).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

PAD, OOV = 0, 1
PAD_TOKEN, OOV_TOKEN = "", "[UNK]"

_BREAK = re.compile(r"<br */?>", re.IGNORECASE)
_NEWLINES = str.maketrans("\n", " ")
# Punctuation is ASCII, and ASCII bytes never occur inside a multi-byte UTF-8
# character, so a byte-level translate is safe and ~20x faster than str.translate.
_PUNCTUATION = bytes(range(256)).translate(
    bytes.maketrans(string.punctuation.replace("'", "").encode(), b" " * (len(string.punctuation) - 1)))


def standardize(text: str) -> str:
    """Lowercase, drop `<br />` markup and punctuation; apostrophes join ("don't" -> "dont")."""
    return _standardize_lines(text.translate(_NEWLINES))


def _standardize_lines(text: str) -> str:
    lowered = _BREAK.sub(" ", text).lower().replace("\u2019", "")
    return lowered.encode("utf-8", "surrogatepass").translate(_PUNCTUATION, b"'").decode("utf-8", "surrogatepass")


def standardize_corpus(texts: Sequence[str]) -> str:
    """All reviews standardized at once, one per line."""
    joined = "\n".join(texts)
    if joined.count("\n") != max(len(texts) - 1, 0):  # some review holds a newline of its own
        joined = "\n".join(t.translate(_NEWLINES) for t in texts)
    return _standardize_lines(joined)


def split_corpus(corpus: str) -> list[list[str]]:
    """A standardized corpus to the words of each review."""
    return [line.split() for line in corpus.split("\n")]


class _Index(dict):
    """word -> id, with every unknown word mapped to OOV by dict's own C lookup."""

    def __missing__(self, word: str) -> int:
        return OOV


def tokenize(text: str) -> list[str]:
    return standardize(text).split()


@dataclass(frozen=True)
class Vocabulary:
    """Index 0 is padding, 1 out-of-vocabulary, then words by training frequency."""

    words: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _Index((w, i) for i, w in enumerate(self.words)))

    @classmethod
    def build(cls, texts: Sequence[str], size: int) -> Vocabulary:
        return cls.from_words(split_corpus(standardize_corpus(texts)), size)

    @classmethod
    def from_words(cls, reviews: list[list[str]], size: int) -> Vocabulary:
        counts = Counter(chain.from_iterable(reviews))
        # Ties broken alphabetically so that the vocabulary is deterministic.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls((PAD_TOKEN, OOV_TOKEN, *(w for w, _ in ranked[: size - 2])))

    def __len__(self) -> int:
        return len(self.words)

    def id(self, word: str) -> int:
        return self._index.get(word, OOV)  # type: ignore[attr-defined]

    def ids(self, tokens: Sequence[str]) -> list[int]:
        return list(map(self._index.__getitem__, tokens))  # type: ignore[attr-defined]


def pad(sequences: Sequence[Sequence[int]], maxlen: int, padding: str = "pre",
        truncating: str = "pre") -> np.ndarray:
    """Same semantics as Keras' `pad_sequences`: `pre` keeps the end of a long review."""
    out = np.zeros((len(sequences), maxlen), dtype=np.int32)
    for row, seq in enumerate(sequences):
        seq = seq[-maxlen:] if truncating == "pre" else seq[:maxlen]
        if not seq:
            continue
        if padding == "pre":
            out[row, maxlen - len(seq):] = seq
        else:
            out[row, : len(seq)] = seq
    return out


def encode(texts: Sequence[str], vocab: Vocabulary, maxlen: int, padding: str = "pre",
           truncating: str = "pre") -> np.ndarray:
    """One text at a time: the inference path."""
    return pad([vocab.ids(tokenize(t)) for t in texts], maxlen, padding, truncating)


def encode_corpus(texts: Sequence[str], vocab: Vocabulary, maxlen: int, padding: str = "pre",
                  truncating: str = "pre", words: list[list[str]] | None = None) -> np.ndarray:
    """The whole corpus as one string: the training path, several times faster than `encode`.

    Newlines inside a review are blanked first, as `standardize` does, so that the
    newline can separate reviews. `words` reuses an already split corpus.
    """
    reviews = split_corpus(standardize_corpus(texts)) if words is None else words
    if not len(texts):  # "" splits into one empty review, but no texts are no reviews
        reviews = []
    lookup = vocab._index.__getitem__  # type: ignore[attr-defined]
    if truncating == "pre":
        sequences = [list(map(lookup, review[-maxlen:])) for review in reviews]
    else:
        sequences = [list(map(lookup, review[:maxlen])) for review in reviews]
    return pad(sequences, maxlen, padding, truncating)


@dataclass(frozen=True)
class Token:
    """A word as the model saw it."""

    word: str
    id: int
    oov: bool


def read_as_model(text: str, vocab: Vocabulary, maxlen: int, truncating: str = "pre") -> list[Token]:
    """The real (non-padding) tokens a model sees, in reading order."""
    words = tokenize(text)
    words = words[-maxlen:] if truncating == "pre" else words[:maxlen]
    return [Token(w, vocab.id(w), vocab.id(w) == OOV) for w in words]


def out_of_vocabulary(text: str, vocab: Vocabulary) -> list[str]:
    """Words of `text` the model has never seen, e.g. the notebook's 'horriblely'."""
    return [w for w in tokenize(text) if vocab.id(w) == OOV]
