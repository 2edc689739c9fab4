"""A training process leaves out what it never uses, and seeds exactly as Keras does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment_core import footprint

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import json, random, sys
import numpy as np
from sentiment_core import footprint
skipped = footprint.skip_optional_imports()
import keras

def draws():
    return [random.random(), float(np.random.rand()), [float(v) for v in keras.random.uniform((3,))]]

with footprint.keras_without_tensorflow() as lean:
    keras.utils.set_random_seed(7)
    ours = draws()
    tensorflow = "tensorflow" in sys.modules
keras.utils.set_random_seed(7)  # Keras' own, TensorFlow and all where it is installed
print(json.dumps({"skipped": skipped, "lean": lean, "tensorflow": tensorflow, "ours": ours, "keras": draws(),
                  "loaded": [m for m in ("pandas", "IPython") if sys.modules.get(m) is not None]}))
"""


def test_seeding_without_tensorflow_draws_what_keras_seeding_draws():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["lean"] and not result["tensorflow"]
    assert result["ours"] == result["keras"]  # Python's random, NumPy's and Keras' global generators
    assert result["skipped"] == list(footprint.OPTIONAL_IMPORTS) and result["loaded"] == []


def test_tensorflow_datasets_keeps_the_optional_imports():
    assert footprint.skip_optional_imports("tfds") == []


def test_keras_finds_tensorflow_again_after_the_block():
    from keras.src.utils import module_utils

    before = module_utils.tensorflow._available
    with footprint.keras_without_tensorflow() as lean:
        assert module_utils.tensorflow._available is (False if lean else before)
    assert module_utils.tensorflow._available is before


def test_releasing_freed_memory_and_compiled_programs_is_harmless():
    footprint.release_freed_memory()
    footprint.drop_compiled_programs()


def test_training_processes_get_huge_pages_unless_told_otherwise():
    env = footprint.with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "A": "1"})
    assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "A": "1"}
    assert footprint.with_huge_pages({})["GLIBC_TUNABLES"] == footprint.HUGE_PAGES
    chosen = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}  # someone chose 4 KB pages: kept
    assert footprint.with_huge_pages(chosen) == chosen


@pytest.mark.parametrize("tunables, huge", [(None, True), ("glibc.malloc.hugetlb=0", False)])
def test_python_m_train_starts_again_with_huge_pages_unless_told_otherwise(tmp_path, tunables, huge):
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = str(ROOT)
    if tunables:
        env["GLIBC_TUNABLES"] = tunables
    out = tmp_path / "paged"
    command = ["train", "--preset", "tiny", "--data", "sample", "--epochs", "1", "--maxlen", "40", "--out", str(out)]
    done = subprocess.run([sys.executable, "-m", "sentiment_core", *command], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1])["run"] == str(out)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["timings"]["huge_pages"] is huge
