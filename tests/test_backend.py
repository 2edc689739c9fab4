"""The Keras backend is chosen by the package (JAX) unless the user sets KERAS_BACKEND."""

import os
import subprocess
import sys

CHECK = "import sentiment_core.train, keras; print(keras.backend.backend())"


def backend_with(env: dict) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env={**clean, **env},
                         check=True)
    return out.stdout.strip().splitlines()[-1]


def test_default_backend_is_jax_even_when_keras_is_imported_first_inside_the_package():
    assert backend_with({}) == "jax"


def test_keras_backend_variable_wins():
    assert backend_with({"KERAS_BACKEND": "tensorflow"}) == "tensorflow"
