"""Gradient-based word attributions for a saved run (needs Keras; the NumPy path has occlusion)."""

from __future__ import annotations

import numpy as np

from .inference import Engine
from .runs import Run


def keras_model(run: Run):
    """The run's model rebuilt from its config and weights.npz; model.keras is never deserialized."""
    from .models import build_model, load_weights

    model = build_model(run.config)
    load_weights(model, run.weights)
    return model


def integrated_gradients_for(run: Run, text: str, model=None, steps: int = 32) -> np.ndarray:
    """Signed integrated-gradients attribution per real token of `text`, in reading order. Raises NoWordsError."""
    from .gradients import integrated_gradients

    engine = Engine.from_run(run)  # the tokens and where they sit, exactly as the NumPy views read them
    tokens = engine.tokens(text, words_required=True)
    model = model or keras_model(run)
    per_position = integrated_gradients(model, engine.encode([text])[0], steps)
    return per_position[engine.positions(len(tokens))]
