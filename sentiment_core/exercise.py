"""An exercise: a preset a teacher fixes through a link, with some hyperparameters locked or hidden.

`?preset=notebook&lock=cell,units&hide=members` on the Train page becomes
`Exercise(preset="notebook", locked=("cell", "units"), hidden=("members",))`. The page greys out the locked
fields and leaves out the hidden ones, but the lock is the server's: the exercise travels with the
submission (`JobManager.submit(..., exercise=...)`), which refuses a config whose locked or hidden field
differs from the exercise's value, however the config was made. Hidden fields are fixed too (a student
cannot change what they cannot see). Names are those of config.SCHEMA; an unknown one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import PRESETS, SCHEMA, Config

MAX_QUERY_CHARS = 2_000  # a lock= or hide= value longer than every field name together is not a lock


class ExerciseError(ValueError):
    """An exercise link that names an unknown preset or field, or a config that breaks its lock."""


def _names(value: str | None, what: str) -> tuple[str, ...]:
    if not value:
        return ()
    if not isinstance(value, str) or len(value) > MAX_QUERY_CHARS:
        raise ExerciseError(f"{what}= is too long to be a list of hyperparameters")
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in SCHEMA]
    if unknown:
        shown = ", ".join(repr(n[:40]) for n in unknown[:5])
        raise ExerciseError(f"{what}= names no hyperparameter: {shown}. Known names: {', '.join(SCHEMA)}")
    return names


@dataclass(frozen=True)
class Exercise:
    """A preset (or the default settings) with fields the student may not change: `locked` (shown, greyed
    out) and `hidden` (not shown). Build one with from_query or from_dict; both check every name."""

    preset: str | None = None
    locked: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    base: Config = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise ExerciseError(f"preset={self.preset[:40]!r} is not a preset; choose one of {', '.join(PRESETS)}")
        for what, names in (("lock", self.locked), ("hide", self.hidden)):
            if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
                raise ExerciseError(f"{what} must be a list of hyperparameter names")
            _names(",".join(names), what)
        object.__setattr__(self, "base", PRESETS[self.preset] if self.preset else Config())

    @classmethod
    def from_query(cls, preset: str | None = None, lock: str | None = None, hide: str | None = None) -> Exercise:
        """From a link's query values (comma-separated names). Raises ExerciseError naming what is wrong."""
        preset = (preset or "").strip() or None
        if preset is not None and len(preset) > MAX_QUERY_CHARS:
            raise ExerciseError("preset= is too long to be a preset's name")
        return cls(preset, _names(lock, "lock"), _names(hide, "hide"))

    @classmethod
    def from_dict(cls, document: dict[str, Any] | None) -> Exercise | None:
        if not document:
            return None
        return cls(document.get("preset"), tuple(document.get("locked", ())), tuple(document.get("hidden", ())))

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "locked": list(self.locked), "hidden": list(self.hidden)}

    @property
    def fixed(self) -> tuple[str, ...]:
        """Every field the student may not change: the locked ones and the hidden ones."""
        return tuple(dict.fromkeys(self.locked + self.hidden))

    def values(self) -> dict[str, Any]:
        """The fixed fields' values, from the preset (or the default settings)."""
        return {name: getattr(self.base, name) for name in self.fixed}

    def check(self, config: Config) -> None:
        """Raise ExerciseError when `config` changes a field this exercise fixes."""
        broken = [f"{SCHEMA[name].label} ({name}) must stay {value!r}, got {getattr(config, name)!r}"
                  for name, value in self.values().items() if getattr(config, name) != value]
        if broken:
            raise ExerciseError("this exercise fixes these settings: " + "; ".join(broken))

    def describe(self) -> str:
        """In words, for the page: 'preset notebook; locked: Cell, Units; hidden: Networks (ensemble)'."""
        parts = [f"preset {self.preset}" if self.preset else "the default settings"]
        if self.locked:
            parts.append("locked: " + ", ".join(SCHEMA[n].label for n in self.locked))
        if self.hidden:
            parts.append("hidden: " + ", ".join(SCHEMA[n].label for n in self.hidden))
        return "; ".join(parts)
