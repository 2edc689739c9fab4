"""What a user may paste or upload, checked before anything is scored: limits, cleaning, CSV files.

Each check raises InputError with a message that says what to do instead, so a page shows it as is.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

MAX_REVIEW_CHARS = 100_000  # one review; longer ones are cut (the model reads a few hundred words anyway)


MAX_TOTAL_CHARS = 2_000_000  # everything in one request


MAX_ROWS = 1_000  # reviews per request


MAX_UPLOAD_BYTES = 5 * 2**20  # a CSV file


class InputError(ValueError):
    """Input the app cannot score; the message says what to do instead."""


def clean_text(text: str) -> str:
    """Drop NUL and other control characters that binary junk brings along (tabs and newlines stay)."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]", " ", text)


def cap_review(text: str, truncating: str = "pre", limit: int = MAX_REVIEW_CHARS) -> tuple[str, bool]:
    """Cut an over-long review, keeping the part the model would read (its end for 'pre' truncation)."""
    if len(text) <= limit:
        return text, False
    return (text[-limit:] if truncating == "pre" else text[:limit]), True


@dataclass
class Batch:
    """Reviews ready to score, with notes on anything that was dropped or shortened."""

    texts: list[str]
    notes: list[str] = field(default_factory=list)


def prepare_reviews(texts: Iterable[object], truncating: str = "pre", max_rows: int = MAX_ROWS,
                    max_review_chars: int = MAX_REVIEW_CHARS, max_total_chars: int = MAX_TOTAL_CHARS) -> Batch:
    """Strip, drop empty ones, cap count and length. Raises InputError when nothing is left to score."""
    kept: list[str] = []
    empty = cut = 0
    total = 0
    over_rows = over_total = False
    for raw in texts:
        text = "" if raw is None or (isinstance(raw, float) and math.isnan(raw)) else str(raw)
        text = clean_text(text).strip()
        if not text:
            empty += 1
            continue
        if len(kept) >= max_rows:
            over_rows = True
            break
        text, was_cut = cap_review(text, truncating, max_review_chars)
        cut += was_cut
        if total + len(text) > max_total_chars:
            over_total = True
            break
        total += len(text)
        kept.append(text)
    notes = []
    if cut:
        notes.append(f"{cut} review(s) longer than {max_review_chars // 1000} KB were shortened to "
                     f"{max_review_chars // 1000} KB (the model reads only a few hundred words anyway).")
    if over_rows:
        notes.append(f"Only the first {max_rows} reviews were scored; split larger files into several.")
    if over_total:
        notes.append(f"The input is larger than {max_total_chars // 1_000_000} MB; only the first "
                     f"{len(kept)} review(s) were scored.")
    if empty and kept:
        notes.append(f"{empty} empty line(s) or row(s) were skipped.")
    if not kept:
        raise InputError("There is nothing to score: type or paste at least one review (one per line).")
    return Batch(kept, notes)


def split_lines(text: str | None, many: bool) -> list[str]:
    """The text area's content as reviews: the whole text, or one review per line."""
    text = text or ""
    return text.splitlines() if many else [text]


def read_csv_reviews(payload: bytes, column: str = "text") -> list[str]:
    """The `text` column of an uploaded CSV file; InputError says what is wrong with the file."""
    if not payload:
        raise InputError("The file is empty.")
    if len(payload) > MAX_UPLOAD_BYTES:
        raise InputError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB; upload at most "
                         f"{MAX_ROWS} reviews at a time.")
    if b"\x00" in payload[:4096]:
        raise InputError("This does not look like a CSV text file (it contains binary data).")
    try:
        decoded = payload.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"The file is not valid UTF-8 text (bad byte at position {error.start}). "
                         "Save it as 'CSV UTF-8' and upload it again.") from error
    try:
        frame = pd.read_csv(io.StringIO(decoded), dtype=str, keep_default_na=False, nrows=MAX_ROWS + 1,
                            on_bad_lines="error")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError) as error:
        raise InputError(f"The file could not be read as CSV ({str(error).strip()[:200]}).") from error
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if column not in columns:
        shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:10]) or "none"
        raise InputError(f"The CSV needs a column named '{column}' with one review per row; "
                         f"its columns are: {shown}.")
    return frame[columns[column]].tolist()


def suggest_import_name(filename: str, taken: Iterable[str]) -> str:
    stem = re.sub(r"\.zip$", "", Path(filename or "run").name, flags=re.IGNORECASE)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "run"
    stem = re.sub(r"\.\.+", ".", stem)[:56]
    if not stem[0].isalnum():
        stem = "run-" + stem
    taken = set(taken)
    name, n = stem, 2
    while name in taken:
        name, n = f"{stem}-{n}", n + 1
    return name
