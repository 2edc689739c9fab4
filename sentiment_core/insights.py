"""What a trained network has learned, computed once per run with the NumPy engine.

- a 2-D PCA of hidden states, fitted on a fixed set of reference reviews, so every
  review's path is drawn on the same axes (cf. the line attractors of
  Maheswaranathan et al., 2019);
- the correlation of each unit the output head reads with the label (the
  "sentiment neuron" idea of Radford et al., 2017).
"""

from __future__ import annotations

import numpy as np

from .inference import Engine

REFERENCE_SIZE = 400


def _forward_states(engine: Engine, ids: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Final forward state of the top layer per review, and each review's path of states."""
    _, _, traces = engine.forward(ids, trace=True)
    h = traces[-1]["forward"]["h"]
    real = ids != 0 if engine.config.mask else np.ones(ids.shape, dtype=bool)
    paths = [h[i, real[i]] for i in range(len(ids))]
    return np.stack([p[-1] if len(p) else np.zeros(h.shape[-1], np.float32) for p in paths]), paths


def fit(engine: Engine, ids: np.ndarray, labels: np.ndarray, size: int = REFERENCE_SIZE) -> dict[str, np.ndarray]:
    """Arrays stored in a run's insights.npz."""
    ids, labels = ids[:size], np.asarray(labels[:size])
    finals, paths = [], []
    features = []
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        f, p = _forward_states(engine, chunk)
        finals.append(f)
        paths += p
        features.append(engine.forward(chunk)[1])
    finals_arr, features_arr = np.concatenate(finals), np.concatenate(features)
    states = np.concatenate([p for p in paths if len(p)])
    mean = states.mean(axis=0)
    # principal axes of all states visited while reading
    _, _, vt = np.linalg.svd(states - mean, full_matrices=False)
    components = vt[:2]
    if components.shape[0] < 2:  # a one-unit model still gets a 2-D plot
        components = np.vstack([components, np.zeros_like(components)])
    explained = np.var((states - mean) @ components.T, axis=0) / max(np.var(states - mean, axis=0).sum(), 1e-12)
    return {
        "pca_mean": mean.astype(np.float32),
        "pca_components": components.astype(np.float32),
        "pca_explained": explained.astype(np.float32),
        "reference_points": ((finals_arr - mean) @ components.T).astype(np.float32),
        "reference_labels": labels.astype(np.int32),
        "unit_correlation": unit_correlation(features_arr, labels).astype(np.float32),
    }


def unit_correlation(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Pearson correlation of each feature with the label; 0 where a unit never moves."""
    f = features - features.mean(axis=0)
    y = labels - labels.mean()
    denominator = np.sqrt((f**2).sum(axis=0) * (y**2).sum())
    return np.where(denominator > 0, (f * y[:, None]).sum(axis=0) / np.maximum(denominator, 1e-12), 0.0)


def project(insights: dict[str, np.ndarray], states: np.ndarray) -> np.ndarray:
    """States (n, U) to the run's fixed 2-D axes."""
    return (states - insights["pca_mean"]) @ insights["pca_components"].T


def trajectory(engine: Engine, insights: dict[str, np.ndarray], text: str) -> np.ndarray:
    """The path (n_tokens, 2) of the top layer's forward state while reading `text`."""
    return project(insights, engine.read(text).layers[-1]["forward"]["h"])


def label_units(insights: dict[str, np.ndarray], k: int = 8) -> list[dict]:
    """The k units the head reads that track the label most, by |correlation|.

    With pooling the unit is the pooled value of the hidden unit; for a bidirectional
    model units past `units` belong to the backward direction.
    """
    corr = insights["unit_correlation"]
    order = np.argsort(-np.abs(corr))[:k]
    return [{"unit": int(i), "correlation": float(corr[i])} for i in order]

