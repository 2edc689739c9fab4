"""Counterfactual edits of one review: change, delete or insert a word and see the model change its mind.

A review is handled here as the words the model reads (`Engine.tokens`: lowercase, no punctuation, at most
maxlen), so an edit is an edit of exactly what the model sees. A version's per-word attributions are
`Engine.occlusion`'s, the ones Predict shows; nothing here defines another. Every candidate a suggestion
weighs goes to the engine in one batch (`Engine.predict_ids`), so a suggestion costs a few forward passes.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .inference import Engine
from .text import OOV, Token, pad, tokenize

# Single-word swaps a learner would try first: antonyms, and negations as the model reads them (the tokenizer
# drops apostrophes: "isn't" is read as "isnt"). Each pair is tried both ways.
SWAP_PAIRS = (
    ("good", "bad"), ("great", "terrible"), ("best", "worst"), ("better", "worse"), ("love", "hate"),
    ("loved", "hated"), ("excellent", "awful"), ("wonderful", "horrible"), ("beautiful", "ugly"),
    ("brilliant", "stupid"), ("interesting", "boring"), ("fun", "dull"), ("like", "dislike"),
    ("liked", "disliked"), ("masterpiece", "disaster"), ("enjoyed", "hated"), ("amazing", "awful"),
    ("perfect", "flawed"), ("funny", "unfunny"), ("recommend", "avoid"), ("well", "poorly"),
    ("always", "never"), ("not", "very"), ("no", "some"), ("is", "isnt"), ("was", "wasnt"), ("are", "arent"),
    ("were", "werent"), ("does", "doesnt"), ("did", "didnt"), ("do", "dont"), ("can", "cant"),
    ("could", "couldnt"), ("would", "wouldnt"), ("should", "shouldnt"), ("has", "hasnt"), ("have", "havent"),
)
SWAPS: dict[str, tuple[str, ...]] = {}
for _a, _b in SWAP_PAIRS:
    SWAPS[_a] = (*SWAPS.get(_a, ()), _b)
    SWAPS[_b] = (*SWAPS.get(_b, ()), _a)

FLIP_SECONDS = 2.0  # the deletion search's time budget; it reports when it ran out


class EditError(ValueError):
    """An edit that cannot be applied: the message says why, in words for the page."""


@dataclass(frozen=True)
class Scored:
    """One version of a review as the model scores it: its words, probability and per-word occlusion."""

    words: tuple[str, ...]
    tokens: tuple[Token, ...]
    probability: float
    attributions: np.ndarray  # Engine.occlusion: p(review) - p(review with the word unknown)

    @property
    def positive(self) -> bool:
        return self.probability >= 0.5


@dataclass(frozen=True)
class Edit:
    """Change the word at `position`, delete it, or insert `word` before it (at len(words): at the end)."""

    action: Literal["change", "delete", "insert"]
    position: int
    word: str = ""


@dataclass(frozen=True)
class Comparison:
    """An edited version next to the original, word by word.

    `pairs` aligns them: (i, j) is the original's word i shown as the edited word j; (i, None) a deleted
    word, (None, j) an inserted one; a changed word is a pair whose words differ.
    """

    original: Scored
    edited: Scored
    pairs: tuple[tuple[int | None, int | None], ...]

    @property
    def shift(self) -> float:
        return self.edited.probability - self.original.probability

    @property
    def flipped(self) -> bool:
        return self.edited.positive != self.original.positive

    def attribution_changes(self) -> np.ndarray:
        """Per edited word, how much its attribution moved; NaN for a word the edit put there."""
        changes = np.full(len(self.edited.words), np.nan)
        for i, j in self.pairs:
            if i is not None and j is not None and self.original.words[i] == self.edited.words[j]:
                changes[j] = self.edited.attributions[j] - self.original.attributions[i]
        return changes

    def edited_positions(self) -> set[int]:
        """The edited version's words that the edit changed or inserted."""
        return {j for i, j in self.pairs
                if j is not None and (i is None or self.original.words[i] != self.edited.words[j])}


@dataclass(frozen=True)
class Flip:
    """Words whose deletion flips the model's label, and the score without them."""

    deleted: tuple[int, ...]  # positions in the original words, ascending
    words: tuple[str, ...]  # the review without them
    probability: float


@dataclass(frozen=True)
class FlipSearch:
    """The deletion search's answer: a flip, or None when none was found within its budget, and why."""

    flip: Flip | None
    seconds: float
    note: str


@dataclass(frozen=True)
class Substitution:
    """One word swapped for its antonym or negation, and how far that moves the score."""

    position: int
    word: str
    replacement: str
    probability: float
    shift: float  # probability - the original's


def words_of(engine: Engine, text: str) -> tuple[str, ...]:
    """The words of `text` the model reads, in order: what the editor shows and edits."""
    return tuple(t.word for t in engine.tokens(text))


def text_of(words: Sequence[str]) -> str:
    """Words back to a text that the model reads as exactly those words."""
    return " ".join(words)


def score(engine: Engine, words: Sequence[str]) -> Scored:
    """A version's probability and per-word occlusion, in one batch. Raises NoWordsError."""
    tokens, probability, deltas = engine.occlusion_scored(text_of(words))
    return Scored(tuple(t.word for t in tokens), tuple(tokens), probability, deltas)


def apply(words: Sequence[str], edit: Edit, maxlen: int | None = None) -> tuple[str, ...]:
    """The words after one edit. A typed word is read as the model reads text (lowercase, no punctuation),
    and may hold several words ("not very"). Raises EditError with the reason."""
    words = tuple(words)
    last = len(words) if edit.action == "insert" else len(words) - 1
    if not 0 <= edit.position <= last:
        raise EditError(f"There is no word {edit.position + 1} to {edit.action}: the review has {len(words)} words.")
    if edit.action == "delete":
        if len(words) == 1:
            raise EditError("This is the review's only word: change it instead of deleting it.")
        return words[: edit.position] + words[edit.position + 1 :]
    typed = tuple(tokenize(edit.word))
    if not typed:
        raise EditError(f"{edit.word!r} holds no word once punctuation is gone: type a word.")
    if edit.action == "change":
        edited = words[: edit.position] + typed + words[edit.position + 1 :]
    elif edit.action == "insert":
        edited = words[: edit.position] + typed + words[edit.position :]
    else:
        raise EditError(f"Unknown edit {edit.action!r}: change, delete or insert.")
    if maxlen is not None and len(edited) > maxlen:
        raise EditError(f"The model reads at most {maxlen} words: delete one before inserting another.")
    return edited


def align(before: Sequence[str], after: Sequence[str]) -> tuple[tuple[int | None, int | None], ...]:
    """Word-by-word alignment of two versions (difflib's opcodes; a replaced run is paired in order)."""
    pairs: list[tuple[int | None, int | None]] = []
    matcher = difflib.SequenceMatcher(a=list(before), b=list(after), autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal" or op == "replace":
            common = min(i2 - i1, j2 - j1)
            pairs += [(i1 + k, j1 + k) for k in range(common)]
            pairs += [(i, None) for i in range(i1 + common, i2)]
            pairs += [(None, j) for j in range(j1 + common, j2)]
        elif op == "delete":
            pairs += [(i, None) for i in range(i1, i2)]
        else:
            pairs += [(None, j) for j in range(j1, j2)]
    return tuple(pairs)


def compare(original: Scored, edited: Scored) -> Comparison:
    return Comparison(original, edited, align(original.words, edited.words))


def predict_words(engine: Engine, versions: Sequence[Sequence[str]]) -> np.ndarray:
    """Probabilities of several versions of a review (lists of words the model reads) in one batch;
    NaN for a version without a word the model knows, as Engine.predict gives it."""
    c = engine.config
    ids = pad([engine.vocab.ids(list(v)) for v in versions], c.maxlen, c.padding, c.truncating)
    return engine.predict_ids(ids, batch_size=max(len(versions), 1))


def substitutions(engine: Engine, original: Scored, top: int = 5) -> list[Substitution]:
    """The single swaps from SWAPS (words the model knows) that move the score most, largest move first."""
    words = original.words
    candidates = [(i, w, new) for i, w in enumerate(words) for new in SWAPS.get(w, ())
                  if engine.vocab.id(new) != OOV]
    if not candidates:
        return []
    versions = [words[:i] + (new,) + words[i + 1 :] for i, _, new in candidates]
    probs = predict_words(engine, versions)
    shifts = probs - original.probability
    order = np.argsort(-np.abs(shifts), kind="stable")[:top]
    return [Substitution(candidates[k][0], candidates[k][1], candidates[k][2], float(probs[k]), float(shifts[k]))
            for k in order]


def flip_by_deletions(engine: Engine, original: Scored, seconds: float = FLIP_SECONDS,
                      chunk: int = 32) -> FlipSearch:
    """The fewest deletions that flip the label, found greedily by occlusion, within `seconds`.

    The words are ranked by their occlusion (the attributions Predict shows), the strongest push towards the
    current label first, and the review is scored without the first 1, 2, 3, ... of them, `chunk` versions per
    batch, until one flips. The set is then pruned: a deleted word whose return keeps the flip is put back,
    one per batch. Greedy, so not always the very fewest; always checked: the flip's probability is the
    model's own score of the review without those words. The time is checked between batches.
    """
    start = time.perf_counter()
    words, sign = original.words, 1.0 if original.positive else -1.0
    ranked = np.argsort(-sign * original.attributions, kind="stable").tolist()
    found: list[int] | None = None

    def version(keep: Sequence[int]) -> tuple[str, ...]:
        return tuple(words[i] for i in keep)

    def flips(p: np.ndarray) -> np.ndarray:
        return ~np.isnan(p) & ((p >= 0.5) != original.positive)

    def out_of_time() -> bool:
        return time.perf_counter() - start >= seconds

    for first in range(1, len(words), chunk):
        if out_of_time():
            break
        trials = [sorted(ranked[d:]) for d in range(first, min(first + chunk, len(words)))]
        hits = np.flatnonzero(flips(predict_words(engine, [version(t) for t in trials])))
        if len(hits):
            found = trials[hits[0]]
            break
    if found is None:
        why = (f"no set of deletions found within {seconds:g} s" if out_of_time()
               else "deleting words in the order of their attributions did not change the label")
        return FlipSearch(None, time.perf_counter() - start, why)
    pruned = False
    while not out_of_time():  # prune: put back what the flip does not need
        deleted = sorted(set(range(len(words))) - set(found))
        pruned = len(deleted) <= 1
        if pruned:
            break
        probs = predict_words(engine, [version(sorted([*found, i])) for i in deleted])
        ok = np.flatnonzero(flips(probs))
        pruned = not len(ok)
        if pruned:
            break
        found = sorted([*found, deleted[int(ok[np.argmin(sign * probs[ok])])]])
    p = float(predict_words(engine, [version(found)])[0])
    deleted = tuple(sorted(set(range(len(words))) - set(found)))
    note = f"{len(deleted)} deletion(s) flip the label"
    if not pruned:
        note += f" (the {seconds:g} s ran out while pruning: fewer may do)"
    return FlipSearch(Flip(deleted, version(found), p), time.perf_counter() - start, note)
