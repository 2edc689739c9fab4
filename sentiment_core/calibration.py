"""Temperature scaling: one number per run that makes "70% positive" mean right 70% of the time.

A network trained on log loss is often over- or under-confident on reviews it has not seen. Dividing
its logit by a temperature T (> 1 softens, < 1 sharpens) fixes most of that without changing a single
label, since the sign of the logit stays. T is fitted on the validation split, never on test
(Guo et al. 2017, "On Calibration of Modern Neural Networks").
"""

from __future__ import annotations

import numpy as np

from . import metrics

EPS = 1e-7


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def apply_temperature(p: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities with their logit divided by `temperature` (NaN stays NaN; T = 1 changes nothing)."""
    if temperature == 1.0:
        return p
    p = np.asarray(p)
    return (1.0 / (1.0 + np.exp(-logit(p) / temperature))).astype(p.dtype)


def temperature_of(meta: dict) -> float:
    """A run's stored temperature (meta.json's `calibration`), 1 for runs saved without one."""
    found = (meta.get("calibration") or {}).get("temperature", 1.0)
    if not isinstance(found, (int, float)) or not np.isfinite(found) or found <= 0:
        raise ValueError(f"meta.json: calibration temperature {found!r} is not a positive number")
    return float(found)


def log_loss(labels: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    y = np.asarray(labels, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())


def fit_temperature(labels: np.ndarray, probabilities: np.ndarray, low: float = 0.05, high: float = 20.0,
                    iterations: int = 80) -> float:
    """The T that minimises log loss on (labels, probabilities), by golden-section search over log T.

    The loss is convex in 1/T, so the search finds the one minimum. Unscored reviews (NaN) are left out;
    with no reviews, or one class only, there is nothing to fit and T is 1.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    scored = ~np.isnan(p)
    y = np.asarray(labels)[scored]
    z = logit(p[scored])
    if len(y) == 0 or y.min() == y.max():
        return 1.0

    def loss(log_t: float) -> float:
        q = 1.0 / (1.0 + np.exp(-z / np.exp(log_t)))
        return log_loss(y, q)

    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return float(np.exp((a + b) / 2))


def calibrate_and_test(engine, validation: tuple[np.ndarray, np.ndarray],
                       test: tuple[np.ndarray, np.ndarray], test_short: np.ndarray) -> tuple[dict, dict]:
    """Fit the temperature on validation, then score the test split (and its short texts) with it.

    Returns the test metrics (with the figures before calibration under `uncalibrated`, `short_texts`, and
    accuracy on long and short reviews, `slices`)
    and the run's `calibration` record. Sets `engine.temperature`.
    """
    engine.temperature = 1.0
    x_val, y_val = validation
    x_test, y_test = test
    val_p = engine.predict_ids(x_val)
    temperature = fit_temperature(y_val, val_p)
    raw = engine.predict_ids(x_test)
    short = apply_temperature(engine.predict_ids(test_short), temperature)
    scores = metrics.evaluate(y_test, apply_temperature(raw, temperature))
    before = metrics.evaluate(y_test, raw)
    scores["uncalibrated"] = {k: before[k] for k in ("loss", "ece", "reliability")}
    scores["short_texts"] = _finite({k: v for k, v in metrics.evaluate(y_test, short).items() if k != "reliability"})
    scores["slices"] = metrics.length_slices(y_test, raw, (np.asarray(x_test) != 0).sum(axis=1))  # same labels
    val_scored = ~np.isnan(val_p)
    record = {"method": "temperature", "temperature": temperature, "fitted_on": "validation",
              "n": int(val_scored.sum()),
              "validation_loss_before": log_loss(y_val[val_scored], val_p[val_scored]),
              "validation_loss_after": log_loss(
                  y_val[val_scored], apply_temperature(val_p[val_scored], temperature))}
    engine.temperature = temperature
    return scores, _finite(record)


def _finite(document: dict) -> dict:
    """NaN (no scored review: e.g. short texts with no word the model knows) as None, which JSON can hold."""
    return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in document.items()}
