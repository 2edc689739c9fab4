"""Train, evaluate once on the test split, and save a run: what the CLI and the job workers call."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import calibration, footprint, insights, memlog, runs, seeds
from .config import GROUPED, GROUPS, Config
from .features import DEFAULT_CACHE, Encoded, prepare
from .inference import Engine
from .protocol import StatusEvent
from .runs import Run
from .train import OnEvent, fit


def versions() -> dict[str, str]:
    import keras

    found = {"python": platform.python_version(), "numpy": np.__version__, "keras": keras.__version__,
             "backend": keras.backend.backend()}
    for module in ("jax", "tensorflow", "torch"):
        mod = __import__("sys").modules.get(module)
        if mod is not None and hasattr(mod, "__version__"):
            found[module] = mod.__version__
    return found


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def _calibration_lines(test: dict, meta: dict) -> str:
    """The card's calibration and short-text lines (runs saved before either have neither)."""
    lines = []
    if "calibration" in meta and "uncalibrated" in test:
        lines.append(f"**Calibration**: temperature {meta['calibration']['temperature']:.3f}, fitted on the "
                     f"validation split; test ECE {test['uncalibrated']['ece']:.4f} before, "
                     f"ECE {test['ece']:.4f} after (10 equal-width bins).")
    short = test.get("short_texts") or {}
    if short.get("accuracy") is None:
        lines.append("**Short texts**: none scored (no cut review holds a word the model knows)." if short else "")
    else:
        lines.append(f"**Short texts** (each test review's first and last sentence, at most 40 words): "
                     f"accuracy {short['accuracy']:.4f}, ECE {short['ece']:.4f}, n = {short['n']}.")
    return "\n".join(line for line in lines if line)


def model_card(name: str, config: Config, data: str, history, test: dict, meta: dict) -> str:
    epochs = len(history.epochs)
    best = history.best_epoch or epochs
    bigrams = f" + {config.bigram_buckets} hashed bigram buckets" if config.bigram_buckets else ""
    apart = history.members if config.members_apart and config.members > 1 else []
    ensemble = "" if config.members == 1 else (
        f"an ensemble of {config.members} networks trained side by side (each from its own random start, "
        "in its own order of the reviews, on its own loss; the prediction is the mean of their "
        "probabilities), each a ")
    if apart:
        ensemble = (f"an ensemble of {config.members} networks trained apart (each alone, from its own seed, on "
                    f"the training reviews less its own held-out tenth, stopped where that tenth was best; the "
                    "prediction is the mean of their probabilities), each a ")
    cut = (f", cut to rank {config.embedding_rank} of {config.embedding_dim} (a truncated SVD, after training)"
           if 0 < config.embedding_rank < config.embedding_dim else "")
    # The kept epoch's validation accuracy (early stopping keeps the lowest validation loss, not the top accuracy).
    val = history.epochs[best - 1].get("val_accuracy", float("nan")) if history.epochs else float("nan")
    training = (f"{epochs} epochs run,\nbest epoch {best} by {config.monitor.replace('_', ' ')} "
                f"(weights restored: {config.early_stopping})")
    validation = f"**Validation accuracy (kept epoch)**: {val:.4f}"
    if apart:
        training = (f"epochs run per network {', '.join(str(m['epochs']) for m in apart)}, kept "
                    f"{', '.join(str(m['best_epoch'] or m['epochs']) for m in apart)} by "
                    f"{config.monitor.replace('_', ' ')} on each one's held-out tenth")
        validation = ("**Validation accuracy** (reviews no network trained or stopped on), the mean of the first k "
                      "networks, k = 1.." + f"{len(apart)}: "
                      + ", ".join(f"{m['ensemble_val_accuracy']:.4f}" for m in apart))
    settings = "\n".join(
        f"- **{GROUPS[group]}**: " + ", ".join(f"{p.label} `{getattr(config, p.name)}`" for p in params)
        for group, params in GROUPED.items())
    return f"""# Model card: {name}

**Task**: binary sentiment of English movie reviews (IMDB, Maas et al. 2011).
**Data**: `{data}`, split `{config.split}`; validation = {config.validation_fraction:.0%} of the training half,
held out from training; the test split was used once, after training.
**Model**: {ensemble}{'bidirectional ' if config.bidirectional else ''}{config.cell} x{config.layers},
{config.units} units,
embedding {config.embedding_dim}{bigrams}, vocabulary {config.vocab_size}, max length {config.maxlen}
({config.padding}-padded, {config.truncating}-truncated), pooling `{config.pooling}`, mask {config.mask},
dropout {config.dropout}, word dropout {config.word_dropout}; {meta['parameters']:,} parameters.
**Training**: {config.optimizer} lr {config.learning_rate}, batch {config.batch_size}, {training};
{history.seconds:.0f} s on {meta['hardware']}
with Keras {meta['versions']['keras']} ({meta['versions']['backend']} backend).
**Stored**: embedding tables as int8 with a scale per row{cut}; every metric here is
computed from the stored weights.
{validation}
**Test**: accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f}, ROC AUC {test['roc_auc']:.4f}, n = {test['n']}.
{_calibration_lines(test, meta)}
{seeds.card_line(meta.get("seeds"))}

**Known limits**: trained on movie reviews only, English only; words outside its
{config.vocab_size}-word vocabulary are unknown to it; it reads at most {config.maxlen} words
({'the last' if config.truncating == 'pre' else 'the first'} ones of a longer review); sarcasm and negation
over long spans still fool it; scores are not calibrated probabilities outside IMDB.

**Every hyperparameter** (`config.json`):
{settings}
"""


@footprint.keras_without_tensorflow()  # saving would import TensorFlow (~440 MB) to look for its types
def save(path: Path, config: Config, encoded: Encoded, model, history, data: str,
         status: str = "complete", extra_meta: dict | None = None, keras_file: bool = True) -> Run:
    """Evaluate and write a trained model as a run. Embeddings are kept as int8 with a scale per row
    (a quarter of the bytes), cut to `config.embedding_rank` directions first if it is set; every metric
    is computed from exactly the weights that are written."""
    from .models import quantize_embeddings, save_keras

    memlog.mark("quantize")
    weights = quantize_embeddings(model, config.embedding_rank)
    engine = Engine(config, encoded.vocab, weights)
    memlog.mark("evaluate")
    t0 = time.perf_counter()
    if history.members:  # networks trained apart: the validation accuracy of the mean of the first k, k = 1..M
        from .members_apart import validation_curve

        step = engine.batch_size
        probabilities = np.concatenate([engine.forward_members(encoded.x_val[i:i + step])[0]
                                        for i in range(0, len(encoded.x_val), step)], axis=1)
        curve = validation_curve(probabilities, encoded.y_val)
        history.members = [{**m, "ensemble_val_accuracy": a} for m, a in zip(history.members, curve, strict=True)]
    test, calibrated = calibration.calibrate_and_test(
        engine, (encoded.x_val, encoded.y_val), (encoded.x_test, encoded.y_test), encoded.x_test_short)
    eval_seconds = time.perf_counter() - t0
    meta = {"name": Path(path).name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "data": data,
            "status": status, "config": config.to_dict(), "versions": versions(), "hardware": hardware(),
            "timings": {"train_seconds": history.seconds, "evaluate_seconds": eval_seconds,
                        "huge_pages": footprint.huge_pages()},
            "parameters": int(model.count_params()),
            "samples": {"train": len(encoded.x_train), "validation": len(encoded.x_val),
                        "test": len(encoded.x_test)}, "calibration": calibrated, **(extra_meta or {})}
    card = model_card(Path(path).name, config, data, history, test, meta)
    memlog.mark("insights")
    found = insights.fit(engine, encoded.x_val, encoded.y_val)
    memlog.mark("write run")
    runs.write_run(path, config, encoded.vocab, weights, history.to_dict(), test, meta, insights=found, card=card,
                   save_model=(lambda p: save_keras(model, config, p)) if keras_file else None, overwrite=False)
    return runs.load_run(path)


def train_and_save(config: Config, data: str, out: Path, on_event: OnEvent = lambda e: None,
                   should_stop: Callable[[], bool] = lambda: False, grad_probe: bool = True,
                   cache_dir: Path | None = DEFAULT_CACHE, tfds_dir: str | None = None,
                   max_train_samples: int | None = None, keras_file: bool = True) -> Run:
    runs.check_name(Path(out).name)
    if Path(out).exists():
        raise runs.RunError(f"run {Path(out).name!r} already exists in {Path(out).parent}; choose another name")
    memlog.mark("data")
    t0 = time.perf_counter()
    on_event(StatusEvent(f"loading and encoding {data}"))
    encoded = prepare(data, config, cache_dir, tfds_dir)
    if max_train_samples and len(encoded.x_train) > max_train_samples:
        raise ValueError(f"this server trains on at most {max_train_samples} reviews; "
                         f"{data} has {len(encoded.x_train)}")
    footprint.release_freed_memory()  # what tokenizing freed, before training builds on top of it
    prep_seconds = time.perf_counter() - t0
    cache = "hit" if encoded.cached else "miss"
    on_event(StatusEvent(f"prepared in {prep_seconds:.1f} s (cache {cache})"))
    if config.members_apart and config.members > 1:
        from .members_apart import fit_apart
        model, history = fit_apart(config, encoded, on_event, should_stop, grad_probe)
        if len(history.members) < config.members:  # stopped before every network had trained
            config = config.replace(members=len(history.members))
    else:
        model, history = fit(config, encoded, on_event, should_stop, grad_probe)
    footprint.release_freed_memory()  # what compiling left free, before evaluating and saving add theirs
    status = "stopped" if history.stopped_by_user else "complete"
    run = save(out, config, encoded, model, history, data, status,
               {"prepare_seconds": prep_seconds, "cache_hit": encoded.cached}, keras_file)
    memlog.mark("done")
    return run
