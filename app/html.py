"""HTML of a review as the model read it, each word shaded by how much it moved the score.

Every word is escaped here: the pages pass this HTML to st.markdown(unsafe_allow_html=True).
"""

from __future__ import annotations

import html
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from sentiment_core.text import Token


def _shade(delta: float, scale: float) -> str:
    strength = 0.0 if scale <= 0 else min(abs(delta) / scale, 1.0)
    alpha = round(0.08 + 0.62 * strength, 3) if strength > 0 else 0.0
    return f"rgba(26,152,80,{alpha})" if delta > 0 else f"rgba(215,48,39,{alpha})"


def attribution_html(tokens: Sequence[Token], deltas: Sequence[float], marked: Collection[int] = (),
                     notes: Mapping[int, str] | None = None) -> str:
    """The review as the model read it, each word shaded green (pushed towards positive) or red.

    Every word is HTML-escaped; unknown (out-of-vocabulary) words get a dotted underline; the words at
    `marked` positions (an edit's) a yellow outline; `notes` add a line to a word's hover text.
    """
    deltas = np.asarray(deltas, dtype=float)
    scale = float(np.max(np.abs(deltas))) if len(deltas) else 0.0
    spans = []
    for i, (token, delta) in enumerate(zip(tokens, deltas, strict=True)):
        style = f"background:{_shade(delta, scale)};padding:0.1em 0.2em;border-radius:0.25em;"
        title = f"{token.word}: {delta:+.3f}"
        if token.oov:
            style += "text-decoration:underline dotted;text-underline-offset:0.2em;"
            title += " (unknown word)"
        if i in marked:
            style += "outline:2px solid #f2b705;"
        if notes and i in notes:
            title += f"; {notes[i]}"
        spans.append(f'<span style="{style}" title="{html.escape(title, quote=True)}">'
                     f"{html.escape(token.word)}</span>")
    return '<div style="line-height:2.1;font-size:1.05rem;overflow-wrap:anywhere;">' + " ".join(spans) + "</div>"


LEGEND_HTML = (
    '<div style="margin-top:0.6em;line-height:2;">'
    '<span style="background:rgba(26,152,80,0.6);padding:0.1em 0.3em;border-radius:0.25em;">pushes positive</span> '
    '<span style="background:rgba(215,48,39,0.6);padding:0.1em 0.3em;border-radius:0.25em;">pushes negative</span> '
    '<span style="text-decoration:underline dotted;text-underline-offset:0.2em;">unknown word</span> '
    "(not in the model's vocabulary: it reads them all as the same [UNK] token)</div>"
)

EDIT_LEGEND_HTML = ('<span style="outline:2px solid #f2b705;padding:0.1em 0.3em;border-radius:0.25em;">'
                    "edited word</span> (hover a word for its attribution and how much it moved)")


def struck_words(words: Sequence[str]) -> str:
    """Deleted words, struck through, escaped."""
    return " ".join(f"<s>{html.escape(w)}</s>" for w in words)
