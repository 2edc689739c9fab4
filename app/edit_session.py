"""One browser session's edits of one review: the versions it went through, bounded, for the editor page.

Kept in st.session_state as a frozen record, replaced at every edit. However many edits a session makes, it
holds at most MAX_VERSIONS versions (the original and the latest ones): undo goes back that far.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

MAX_VERSIONS = 50


@dataclass(frozen=True)
class EditSession:
    source: str  # the text the edits started from
    run: str  # the path of the run it was first scored with, to notice a switch or a deleted run
    versions: tuple[tuple[str, ...], ...]  # the original's words first, then each edit's, the latest last
    edits: int = 0  # edits made in all (undone ones included)

    @property
    def original(self) -> tuple[str, ...]:
        return self.versions[0]

    @property
    def current(self) -> tuple[str, ...]:
        return self.versions[-1]

    def push(self, words: tuple[str, ...]) -> EditSession:
        """After one more edit: the oldest edits drop past MAX_VERSIONS, the original stays."""
        versions = (*self.versions, tuple(words))
        if len(versions) > MAX_VERSIONS:
            versions = (versions[0], *versions[len(versions) - MAX_VERSIONS + 1 :])
        return replace(self, versions=versions, edits=self.edits + 1)

    def undo(self) -> EditSession:
        return replace(self, versions=self.versions[:-1]) if len(self.versions) > 1 else self

    def reset(self) -> EditSession:
        return replace(self, versions=self.versions[:1])
