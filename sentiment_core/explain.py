"""Gradient-based word attributions for a saved run (needs Keras; the NumPy path has occlusion)."""

from __future__ import annotations

import numpy as np

from .runs import Run
from .text import read_as_model, require_words


def keras_model(run: Run):
    """The run's model rebuilt from its config and weights.npz; model.keras is never deserialized."""
    from .models import build_model, load_weights

    model = build_model(run.config)
    load_weights(model, run.weights)
    return model


def integrated_gradients_for(run: Run, text: str, model=None, steps: int = 32) -> np.ndarray:
    """Signed integrated-gradients attribution per real token of `text`, in reading order. Raises NoWordsError."""
    from .gradients import integrated_gradients
    from .text import encode

    c = run.config
    n = len(require_words(text, read_as_model(text, run.vocab, c.maxlen, c.truncating)))
    model = model or keras_model(run)
    ids = encode([text], run.vocab, c.maxlen, c.padding, c.truncating)[0]
    per_position = integrated_gradients(model, ids, steps)
    return per_position[c.maxlen - n :] if c.padding == "pre" else per_position[:n]
