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


TRAIN_ON_TENSORFLOW = """
import sys, numpy as np
from sentiment_core import features, train
from sentiment_core.config import PRESETS
config = PRESETS["tiny"].replace(epochs=1, maxlen=40)
data = features.prepare("sample", config, cache_dir=None)
model, history = train.fit(config, data, grad_probe=False)
print(len(history.epochs), model.inputs[0].shape[1])
"""


def test_training_also_runs_on_the_tensorflow_backend():
    """There every batch keeps whole rows (tf.data fixes one input shape); on JAX they are cut to length."""
    clean = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", TRAIN_ON_TENSORFLOW], capture_output=True, text=True,
                         env={**clean, "KERAS_BACKEND": "tensorflow"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "1 40"
