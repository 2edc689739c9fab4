"""Text to integer sequences, in pure Python and NumPy.

Training and inference share this module, so a saved model reads a review
exactly as it was taught to, with no TensorFlow in the app's process.
Three paths produce the same ids (tested): `encode` reads one text at a time (inference),
`encode_corpus` a whole corpus as one string, and `encode_splits` builds the vocabulary and
encodes every split in worker processes (training).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import string
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter

import numpy as np

PAD, OOV = 0, 1
PARALLEL_FROM = 20_000  # reviews; below this, starting worker processes costs more than it saves
CHUNK = 2_000  # reviews standardized and split at a time (see _tokenize_share)
PAD_TOKEN, OOV_TOKEN = "", "[UNK]"

_BREAK = re.compile(rb"<br */?>")  # on lowercased UTF-8
_APOSTROPHE = "\u2019"  # the typographic one: dropped, as "'" is ("don\u2019t" -> "dont")
# What str.split() takes for whitespace beyond ASCII's " \t\n\r\v\f": blanked to a space in a corpus,
# so that its bytes (split on ASCII whitespace only) split exactly as its text would.
_UNICODE_SPACES = re.compile("[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_ASCII_SPACES = b"\x1c\x1d\x1e\x1f"  # in the byte table below
_NEWLINES = str.maketrans("\n", " ")
# Punctuation is ASCII, and ASCII bytes never occur inside a multi-byte UTF-8
# character, so a byte-level translate is safe and ~20x faster than str.translate.
_PUNCTUATION = bytes(range(256)).translate(
    bytes.maketrans(string.punctuation.replace("'", "").encode() + _ASCII_SPACES,
                    b" " * (len(string.punctuation) - 1 + len(_ASCII_SPACES))))


def standardize(text: str) -> str:
    """Lowercase, drop `<br />` markup and punctuation; apostrophes join ("don't" -> "dont")."""
    return _clean(_utf8(text.translate(_NEWLINES).lower().replace(_APOSTROPHE, ""))).decode("utf-8", "surrogatepass")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _clean(lowered: bytes) -> bytes:
    """Markup and punctuation out. Typographic apostrophes are the caller's: only non-ASCII text has them."""
    return _BREAK.sub(b" ", lowered).translate(_PUNCTUATION, b"'")


def standardize_corpus(texts: Sequence[str]) -> str:
    """All reviews standardized at once, one per line."""
    return standardize_corpus_bytes(texts).decode("utf-8", "surrogatepass")


def standardize_corpus_bytes(texts: Sequence[str]) -> bytes:
    """`standardize_corpus` as UTF-8, which splits into words faster than text, and the same way.

    Each review is lowercased and encoded on its own: most are ASCII, and a few characters beyond
    Latin-1 in one review would make a joined text take 2-4 bytes for every character of all of them.
    """
    lowered = [t.lower() for t in texts]
    lowered = [t if t.isascii() else _UNICODE_SPACES.sub(" ", t).replace(_APOSTROPHE, "")  # isascii() is a flag
               for t in lowered]
    joined = b"\n".join([_utf8(t) for t in lowered])
    if joined.count(b"\n") != max(len(texts) - 1, 0):  # some review holds a newline of its own
        joined = b"\n".join([_utf8(t.translate(_NEWLINES)) for t in lowered])
    return _clean(joined)


def count_words(corpus: str) -> Counter:
    """Word counts of a standardized corpus (a newline is whitespace, so one split does)."""
    return Counter(corpus.split())


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
        return cls.from_counts(count_words(standardize_corpus(texts)), size)

    @classmethod
    def from_counts(cls, counts: dict[str, int], size: int) -> Vocabulary:
        """Most frequent first, ties alphabetically, so the vocabulary is deterministic."""
        keep = size - 2
        if 0 < keep < len(counts):  # only words at least as frequent as the last one kept can make the cut
            values = np.fromiter(counts.values(), np.int64, len(counts))
            floor = np.partition(values, len(values) - keep)[len(values) - keep]  # the keep-th largest count
            counts = {w: n for w, n in counts.items() if n >= floor}
        # Two C-level sorts (alphabetical, then a stable one by count) instead of one with a Python key.
        ranked = sorted(sorted(counts.items()), key=itemgetter(1), reverse=True)
        return cls((PAD_TOKEN, OOV_TOKEN, *(w for w, _ in ranked[: max(keep, 0)])))

    def __len__(self) -> int:
        return len(self.words)

    def id(self, word: str) -> int:
        return self._index.get(word, OOV)  # type: ignore[attr-defined]

    def ids(self, tokens: Sequence[str]) -> list[int]:
        return list(map(self._index.get, tokens, repeat(OOV)))  # type: ignore[attr-defined]


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
                  truncating: str = "pre") -> np.ndarray:
    """Many texts with a given vocabulary, as one string: several times faster than `encode`.

    Newlines inside a review are blanked first, as `standardize` does, so that the
    newline can separate reviews.
    """
    if not len(texts):  # "" is one empty review, but no texts are no reviews
        return np.zeros((0, maxlen), dtype=np.int32)
    kept = _kept_words(standardize_corpus(texts).split("\n"), maxlen, truncating)
    return _place(*_ids_of(kept, vocab._index.__getitem__), maxlen, padding, truncating)  # type: ignore[attr-defined]


def _kept_words(lines: list, maxlen: int, truncating: str) -> list[list]:
    """The words a model reads of each line. Only those are split off (`rsplit` from the end
    for `pre`), so a long review costs little more than a short one."""
    if truncating == "pre":
        return [line.rsplit(None, maxlen)[-maxlen:] for line in lines]
    return [line.split(None, maxlen)[:maxlen] for line in lines]


def _ids_of(kept: list[list[str]], lookup) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All reviews' ids in one flat array, with where each review starts and ends in it."""
    lengths = np.fromiter(map(len, kept), np.int64, len(kept))
    ids = np.fromiter(map(lookup, chain.from_iterable(kept)), np.int32, int(lengths.sum()))
    ends = np.cumsum(lengths)
    return ids, ends - lengths, ends


def _place(ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, maxlen: int, padding: str,
           truncating: str) -> np.ndarray:
    """`pad` for reviews held as spans of one flat id array, in a few NumPy operations."""
    out = np.zeros((len(starts), maxlen), np.int32)
    if not len(ids):
        return out
    lengths = np.minimum(ends - starts, maxlen)
    first = ends - lengths if truncating == "pre" else starts  # the first word kept
    column = maxlen - lengths if padding == "pre" else np.zeros_like(lengths)  # where it goes
    steps = np.arange(maxlen)
    for block in range(0, len(starts), 4096):  # bounded memory for any corpus
        rows = slice(block, block + 4096)
        position = (first[rows] - column[rows])[:, None] + steps
        real = (steps >= column[rows, None]) & (steps < (column[rows] + lengths[rows])[:, None])
        out[rows] = np.where(real, ids[np.clip(position, 0, len(ids) - 1)], 0)
    return out


class _LocalIds(dict):
    """word -> id in order of first sight (from 1; 0 is padding), for one worker's share of the corpus."""

    def __missing__(self, word: str) -> int:
        self[word] = new_id = len(self) + 1
        return new_id


@contextmanager
def _without_gc():
    """Tokenizing makes millions of lists and strings, none in a reference cycle, so the cyclic
    collector finds nothing; each full collection it starts still walks the whole heap, which after
    importing Keras holds ~200k objects (7-16% of the time, measured with tf_keras loaded)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_BOUNDARY = b"<"  # marks where a review ends; standardizing blanks every "<", so no word is ever this


@_without_gc()
def _tokenize_share(splits: list[list[str]], maxlen: int, padding: str, truncating: str,
                    ) -> tuple[dict[str, int], list[str], list[np.ndarray]]:
    """One worker's share in one pass: word counts of its training reviews (the first split),
    and the kept words of every split as ids local to this share. The vocabulary is not known
    yet; `_to_vocabulary` maps local ids to it afterwards, with NumPy.

    The training reviews are split and looked up as one list of words, with a boundary word
    between reviews, and counted with `np.bincount` over their ids: no Python loop per review.
    Words are UTF-8 bytes until the end, when the share's distinct ones are decoded. Reviews go
    CHUNK at a time: a list of words costs ~50 bytes a word, 500 MB for IMDB's training half at
    once; ids are given in order of first sight either way, so the result is the same.
    """
    local = _LocalIds()
    boundary, lookup = local[_BOUNDARY], local.__getitem__
    per_id = np.zeros(1, np.int64)  # a count per local id, 0 (padding) first
    arrays = []
    for k, texts in enumerate(splits):
        parts = [np.zeros((0, maxlen), np.int32)]
        for start in range(0, len(texts), CHUNK):
            corpus = standardize_corpus_bytes(texts[start:start + CHUNK])
            if k == 0:
                words = corpus.replace(b"\n", b" " + _BOUNDARY + b" ").split()
                ids = np.fromiter(map(lookup, words), np.int32, len(words))
                ends = np.append(np.flatnonzero(ids == boundary), len(ids))
                starts = np.append(0, ends[:-1] + 1)
                counts = np.bincount(ids, minlength=len(local) + 1)
                counts[: len(per_id)] += per_id
                per_id = counts
                parts.append(_place(ids, starts, ends, maxlen, padding, truncating))
            else:  # only the words a model reads are looked up
                kept = _kept_words(corpus.split(b"\n"), maxlen, truncating)
                parts.append(_place(*_ids_of(kept, lookup), maxlen, padding, truncating))
        arrays.append(np.concatenate(parts))
    words = [w.decode("utf-8", "surrogatepass") for w in local]
    counts = dict(zip(words[: len(per_id) - 1], per_id[1:].tolist(), strict=True))  # words of the training split
    counts.pop(_BOUNDARY.decode(), None)
    return counts, words, arrays


def _to_vocabulary(local_words: list[str], arrays: list[np.ndarray], vocab: Vocabulary) -> list[np.ndarray]:
    to_global = np.array([PAD, *vocab.ids(local_words)], dtype=np.int32)
    return [to_global[a] for a in arrays]


def _spawn_is_safe() -> bool:
    """Spawned processes re-import the parent's main module (Python's rule). That is harmless only
    for code that cannot run twice: a package's __main__ (never re-run), our own modules, a
    notebook or `python -c`. A user's script may lack its `if __name__ == "__main__"` guard."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", "") or ""
    return name.endswith("__main__") or name.startswith("sentiment_core.") or not getattr(main, "__file__", None)


@_without_gc()
def encode_splits(train: Sequence[str], others: Sequence[Sequence[str]], vocab_size: int, maxlen: int,
                  padding: str = "pre", truncating: str = "pre",
                  workers: int | None = None) -> tuple[Vocabulary, list[np.ndarray]]:
    """Build the vocabulary on `train` and encode `train` and each of `others` with it.

    A large corpus is cut into parts for `workers` processes (default: one per core, where
    spawning is safe): tokenizing is pure Python, so threads would not help. The result does
    not depend on the number of workers.
    """
    splits = [list(train), *map(list, others)]
    if workers is None:
        large = sum(map(len, splits)) >= PARALLEL_FROM
        workers = min(os.cpu_count() or 1, 4) if large and _spawn_is_safe() else 1
    shares = None
    if workers > 1:
        try:
            shares = _tokenize_in_processes(splits, workers, maxlen, padding, truncating)
        except (BrokenProcessPool, OSError) as error:  # e.g. no way to start processes here: do it in one
            warnings.warn(f"tokenizing in one process: worker processes failed ({error})", stacklevel=2)
    if shares is None:
        shares = [_tokenize_share(splits, maxlen, padding, truncating)]
    counts = Counter(shares[0][0])  # a copy at C speed; the other shares add theirs
    for share_counts, _, _ in shares[1:]:
        counts.update(share_counts)
    vocab = Vocabulary.from_counts(counts, vocab_size)
    # Shares are contiguous parts of each split, in order, so each split is its shares joined.
    arrays = [np.concatenate(parts) for parts in zip(
        *(_to_vocabulary(local_words, local_arrays, vocab) for _, local_words, local_arrays in shares), strict=True)]
    return vocab, arrays


PARENT_WEIGHT = 1.15  # this process starts at once, the others ~0.2 s later, so it takes a larger share


def _share_bounds(splits: list[list[str]], workers: int) -> list[np.ndarray]:
    """Where each share starts and ends in each split: contiguous parts, the first a bit larger."""
    weights = np.cumsum([0.0, PARENT_WEIGHT, *[1.0] * (workers - 1)])
    return [np.round(weights / weights[-1] * len(texts)).astype(int) for texts in splits]


def _tokenize_in_processes(splits: list[list[str]], workers: int, maxlen: int, padding: str,
                           truncating: str) -> list:
    """Shares 1.. go to new processes while this one does share 0: one fewer process to start,
    and no core idles while the others start."""
    bounds = _share_bounds(splits, workers)

    def share(i: int) -> list[list[str]]:
        return [texts[b[i]:b[i + 1]] for texts, b in zip(splits, bounds, strict=True)]

    # spawn, not fork: the caller may hold threads (JAX, Streamlit) that a fork would copy mid-lock.
    pool = ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(_tokenize_share, share(i), maxlen, padding, truncating) for i in range(1, workers)]
        own = _tokenize_share(share(0), maxlen, padding, truncating)
        return [own, *(future.result() for future in futures)]
    finally:
        pool.shutdown(wait=False)  # the results are in; the processes may exit on their own time


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


def known_words(ids: np.ndarray) -> np.ndarray:
    """Per encoded row, how many of the words the model reads it knows (ids past PAD and OOV)."""
    return (np.asarray(ids) > OOV).sum(axis=-1)


class NoWordsError(ValueError):
    """A text with no word the model knows: nothing left after standardizing, or only unknown words.

    This is the engine's one definition of "no words" (`known_words` == 0), and every entry point
    follows it. A score for such a text would be the model's answer to an empty or all-[UNK]
    sequence, which says nothing about the text (and max pooling over zero steps has no answer at
    all), so the engine gives none: batch predictions are NaN there, single readings raise this.
    """

    def __init__(self, text: str, tokens: Sequence[Token]):
        shown = " ".join(text.split())
        shown = shown if len(shown) <= 60 else shown[:59] + "…"
        why = (f"none of the {len(tokens)} word(s) it reads is in its vocabulary" if tokens
               else "nothing is left after removing punctuation and markup")
        super().__init__(f"No word the model knows in {shown!r}: {why}. Type a few words of an English review.")
        self.text, self.words = text, len(tokens)


def require_words(text: str, tokens: Sequence[Token]) -> list[Token]:
    """`tokens` (read from `text`) if the model knows at least one of them; else NoWordsError."""
    if all(t.oov for t in tokens):
        raise NoWordsError(text, tokens)
    return list(tokens)


def out_of_vocabulary(text: str, vocab: Vocabulary) -> list[str]:
    """Words of `text` the model has never seen, e.g. the notebook's 'horriblely'."""
    return [w for w in tokenize(text) if vocab.id(w) == OOV]
