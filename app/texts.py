"""The app's words: example review, labels, and numbers written the way the pages show them."""

from __future__ import annotations

import math

POSITIVE, NEGATIVE, NO_WORDS = "positive", "negative", "not scored"


PRESET_LABELS = {"notebook": "the original notebook", "fast-lstm": "fast LSTM", "best": "best accuracy",
                 "tiny": "tiny (seconds)"}


EXAMPLE_REVIEW = ("I expected a horrible film, but the acting was wonderful and the story kept me "
                  "interested until the very end. Not perfect, yet I would happily watch it again.")


def label(probability: float, threshold: float = 0.5) -> str:
    """The verdict for a probability; NaN is the engine's answer for a review with no word it knows."""
    if math.isnan(probability):
        return NO_WORDS
    return POSITIVE if probability >= threshold else NEGATIVE


def short(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def unit_name(unit: int, units: int, bidirectional: bool) -> str:
    if not bidirectional:
        return f"unit {unit}"
    return f"unit {unit % units} ({'backward' if unit >= units else 'forward'})"
