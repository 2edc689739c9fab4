"""Who acts on a shared server: students (a browser session each) and the teacher (a token). Standard library only.

A student is known by their session's owner id (a random id the app keeps per browser session; a job's
secret link gives it back). They may act on their own jobs and runs only. The teacher proves who they are
with the token set on the server in SENTIMENT_TEACHER_TOKEN, compared in constant time at every act that
needs it; with no token set, nobody is the teacher. A student may also choose a display name for the class
board, checked here so that no page ever draws markup, control characters or a 10 kB name.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass, field

TOKEN_ENV = "SENTIMENT_TEACHER_TOKEN"
MAX_NICKNAME = 24
ANONYMOUS = "anonymous"
RESERVED = {"anonymous", "teacher", "shipped", "reference"}  # names a student could hide behind
PUNCTUATION = set(" -_.")  # besides letters and digits of any script


class NotAllowed(PermissionError):
    """An act this person may not do (another student's job or run, a teacher act without the token)."""


class NicknameError(ValueError):
    """A display name that is refused; the message says what to change."""


def check_nickname(text: str | None) -> str | None:
    """A display name as it will be stored and shown, or None (anonymous) when empty. Letters and digits of
    any script, spaces, '-', '_' and '.'; at most MAX_NICKNAME characters. Raises NicknameError."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise NicknameError("a name must be text")
    if len(text) > 4 * MAX_NICKNAME:  # before normalizing a 10 kB paste
        raise NicknameError(f"a name has at most {MAX_NICKNAME} characters; this one has {len(text):,}")
    name = unicodedata.normalize("NFC", text).strip()
    if not name:
        return None
    if len(name) > MAX_NICKNAME:
        raise NicknameError(f"a name has at most {MAX_NICKNAME} characters; this one has {len(name)}")
    for char in name:
        if unicodedata.category(char)[0] == "C":
            raise NicknameError(f"a name cannot hold control or invisible characters (U+{ord(char):04X})")
        if not (char.isalnum() or char in PUNCTUATION or unicodedata.category(char)[0] == "M"):
            raise NicknameError(f"a name holds only letters, digits, spaces, '-', '_' and '.'; not {char!r}")
    if not name[0].isalnum():  # nor a spreadsheet formula ('-', '=', '+', '@') in the board's CSV
        raise NicknameError("a name starts with a letter or a digit")
    if "  " in name:
        raise NicknameError("a name cannot hold two spaces in a row")
    if name.casefold() in RESERVED:
        raise NicknameError(f"{name!r} is reserved; choose another name")
    return name


def owner_tag(owner: str) -> str:
    """What a run records of its student: a digest of the session id, never the id itself (which opens jobs)."""
    return hashlib.sha256(f"sentiment-owner:{owner}".encode()).hexdigest()[:32]


def teacher_token_set() -> bool:
    """Whether this server has a teacher at all (SENTIMENT_TEACHER_TOKEN is set and not blank)."""
    return bool(os.environ.get(TOKEN_ENV, "").strip())


def is_teacher_token(token: str | None) -> bool:
    """Constant-time comparison with the server's token; False when none is configured."""
    expected = os.environ.get(TOKEN_ENV, "").strip()
    if not expected or not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class Actor:
    """Someone asking for an act: their session's owner id and, for the teacher, the token as entered.
    The token is checked at every act (never remembered as a yes), and never printed."""

    owner: str
    token: str = field(default="", repr=False)

    @property
    def teacher(self) -> bool:
        return is_teacher_token(self.token)

    def may_act_on(self, owner: str | None = None, tag: str | None = None) -> bool:
        """True for the teacher, and for the student whose session owns the thing (by owner id or its tag)."""
        if self.teacher:
            return True
        if owner is not None:
            return hmac.compare_digest(owner.encode(), self.owner.encode())
        return tag is not None and hmac.compare_digest(tag, owner_tag(self.owner))

    def require_teacher(self, what: str) -> None:
        if not teacher_token_set():
            raise NotAllowed(f"{what} needs the teacher, and this server has no teacher token "
                             f"({TOKEN_ENV} is not set)")
        if not self.teacher:
            raise NotAllowed(f"{what} needs the teacher token; the token given is wrong or missing")
