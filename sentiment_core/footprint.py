"""What a training process keeps out of its memory, and what it gives back. Loads the standard library only.

A class shares one server, so the memory of one training worker decides how many can run at
once; benchmarks/worker_memory.py measures it, phase by phase. Three things cost most and do
nothing for a training on JAX: TensorFlow, which Keras imports just to ask whether it is there
(~440 MB); pandas and IPython, which Keras imports whenever they are installed (~85 MB); and the
heap that tokenizing leaves free but mapped, which training would otherwise stack on (~200 MB
for IMDB). Nothing here changes a number a training computes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# glibc's malloc may back its large blocks with transparent huge pages (2 MB) where the kernel grants them on
# request ("madvise", the common default). XLA on CPU allocates a step's buffers afresh at every step, and every
# fresh 4 KB page faults: a quarter to a third of a training's CPU time went to the kernel (benchmarks/huge_pages.py).
# glibc reads its tunables once, when a process starts, so they go to the environment of the processes we start.
HUGE_PAGES = "glibc.malloc.hugetlb=1"
SMALL_PAGES = "glibc.malloc.hugetlb=0"  # chosen explicitly, so that with_huge_pages leaves it

# Keras imports these, when installed, only to recognise a DataFrame (pandas, ~65 MB with pyarrow)
# and to tell whether it runs in a notebook (IPython, ~20 MB); both imports are optional there.
OPTIONAL_IMPORTS = ("pandas", "IPython")


def skip_optional_imports(data: str = "") -> list[str]:
    """Before Keras is imported: make the optional imports it never needs here fail as if not installed,
    for the rest of this process. TensorFlow Datasets may use them, so `--data tfds` keeps them.
    Returns the names skipped."""
    if data == "tfds":
        return []
    skipped = [name for name in OPTIONAL_IMPORTS if name not in sys.modules]
    for name in skipped:
        sys.modules[name] = None  # type: ignore[assignment]  # Python's own "import fails" marker
    return skipped


@contextmanager
def keras_without_tensorflow() -> Iterator[bool]:
    """While inside (a `with` block or a decorated function), Keras' checks for TensorFlow answer "not
    installed", unless TensorFlow is the backend or already loaded (then Keras finds it as before).

    Keras asks its lazy `tensorflow` module in a dozen places, and asking imports it: seeding seeds
    TensorFlow "since many workflows leverage tf.data", saving checks each value for a TensorShape.
    A training on JAX runs no TensorFlow op and holds no TensorFlow object, so no answer changes.
    Yields whether Keras leaves TensorFlow alone here."""
    import keras
    from keras.src.utils import module_utils

    lazy = getattr(module_utils, "tensorflow", None)
    if (keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules or lazy is None
            or not hasattr(lazy, "_available") or getattr(lazy, "module", None) is not None):
        yield False  # TensorFlow in use, or a Keras that checks differently (tests/test_no_tensorflow.py)
        return
    previous, lazy._available = lazy._available, False
    try:
        yield True
    finally:
        lazy._available = previous


def drop_compiled_programs() -> None:
    """Forget every program JAX has compiled so far, and give back their memory.

    JAX keeps each program it compiles, and each op run eagerly is one: building a model runs its
    initializers once (~20 programs, ~40 MB with what their compiling leaves free). Called before
    training compiles its own, this costs at most a recompile of a program used again."""
    jax = sys.modules.get("jax")
    if jax is not None:
        jax.clear_caches()
    release_freed_memory()


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim; elsewhere nothing).

    Tokenizing a corpus allocates and frees hundreds of MB of small strings; glibc keeps freed pages
    mapped, and a training started on top of them holds both."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        ctypes.CDLL(None).malloc_trim(0)  # the C library this Python is linked with


def with_huge_pages(env: dict[str, str] | None = None) -> dict[str, str]:
    """An environment (by default this process's) for a training process: the same, with glibc's malloc
    allowed huge pages, unless it already says how malloc should use them (GLIBC_TUNABLES with
    glibc.malloc.hugetlb=0 keeps 4 KB pages). Where glibc is not the C library, nothing reads the variable.
    Changes no number a training computes, only how its memory is mapped."""
    env = dict(os.environ if env is None else env)
    tunables = _tunables(env)
    if not any(t.startswith("glibc.malloc.hugetlb=") for t in tunables):
        env["GLIBC_TUNABLES"] = ":".join([*tunables, HUGE_PAGES])
    return env


def _tunables(env) -> list[str]:
    return [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]


def huge_pages() -> bool:
    """Whether this process started with malloc allowed huge pages (recorded with a run's timings)."""
    return HUGE_PAGES in _tunables(os.environ)
