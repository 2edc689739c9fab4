"""Short texts cut from long reviews: what a user pastes (a sentence or two), with a known label.

IMDB reviews average about 230 words, while people try a model on one or two sentences. Without new
data, a review's first and last sentence, at most 40 words, keep its label well enough to measure how a
model trained on long reviews does on short ones.
"""

from __future__ import annotations

import re

MAX_WORDS = 40
_BREAKS = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(review: str) -> list[str]:
    """The review's sentences, split after '.', '!' or '?' (and at <br /> line breaks)."""
    parts = []
    for block in _BREAKS.split(review):
        parts += [s.strip() for s in _SENTENCE_END.split(block) if s.strip()]
    return parts


def shorten(review: str, max_words: int = MAX_WORDS) -> str:
    """The review's first and last sentence, cut to `max_words` words in all.

    A long first sentence keeps its opening words and a long last one its closing words, half the budget
    each (the rest of the budget goes to the other when one is shorter): openings and verdicts are where
    reviewers put their opinion.
    """
    found = sentences(review)
    if not found:
        return ""
    first = found[0].split()
    last = found[-1].split() if len(found) > 1 else []
    keep_last = min(len(last), max(max_words // 2, max_words - len(first)))
    keep_first = min(len(first), max_words - keep_last)
    return " ".join(first[:keep_first] + (last[len(last) - keep_last:] if keep_last else []))
