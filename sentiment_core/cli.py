"""python -m sentiment_core {train,evaluate,calibrate,seeds,predict,explain,mistakes,export,runs} ...

See --help of each.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

from .config import GROUPED, GROUPS, PRESETS, Config, ConfigError
from .data import DataError
from .runs import RunError
from .text import NoWordsError

NO_WORDS_HELP = ("A text with no word the model knows (nothing left after removing punctuation and markup, or "
                 "only unknown words) is not scored: its line has words 0, probability and label null, and a note; "
                 "the exit status stays 0.")
EPILOG = ("data sources: tfds (default, downloads once), sample (bundled), a folder with "
          "train.jsonl.gz/test.jsonl.gz, an aclImdb folder, or aclImdb_v1.tar.gz")


def _add_hyperparameters(parser: argparse.ArgumentParser) -> None:
    """One flag per hyperparameter (config.SCHEMA), in its group; --help gives its help text, values and default."""
    for group, title in GROUPS.items():
        flags = parser.add_argument_group(f"{title.lower()} hyperparameters")
        for p in GROUPED[group]:
            flag = "--" + p.name.replace("_", "-")
            text = f"{p.help} {p.allowed().capitalize()}; default {p.default}.".replace("%", "%%")
            if p.type is bool:
                flags.add_argument(flag, dest=p.name, default=None, action=argparse.BooleanOptionalAction, help=text)
            else:
                flags.add_argument(flag, dest=p.name, type=p.type, default=None, choices=p.choices or None, help=text)


def build_config(args: argparse.Namespace) -> Config:
    base = PRESETS[args.preset] if args.preset else Config()
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}
    return base.replace(**changes)


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .footprint import skip_optional_imports
    from .protocol import BatchEvent, EndEvent, EpochEvent, Event, StartEvent, StatusEvent

    skip_optional_imports(args.data)  # before Keras is imported
    from .runner import train_and_save

    config = build_config(args)
    bar: dict = {}
    nan = float("nan")

    def on_event(event: Event) -> None:
        if isinstance(event, StatusEvent):
            print(event.message, file=sys.stderr)
        elif isinstance(event, StartEvent):
            bar["tqdm"] = tqdm(total=event.epochs * event.steps_per_epoch, unit="batch", file=sys.stderr,
                               mininterval=1.0, dynamic_ncols=True, disable=None)
        elif isinstance(event, BatchEvent):
            bar["tqdm"].set_description(f"epoch {event.epoch}/{config.epochs}")
            bar["tqdm"].set_postfix(loss=f"{event.loss:.4f}", acc=f"{event.accuracy:.4f}", refresh=False)
            bar["tqdm"].update(1)
        elif isinstance(event, EpochEvent):
            val_loss = nan if event.val_loss is None else event.val_loss
            val_acc = nan if event.val_accuracy is None else event.val_accuracy
            bar["tqdm"].write(f"epoch {event.epoch}: loss {event.loss:.4f} acc {event.accuracy:.4f} "
                              f"val_loss {val_loss:.4f} val_acc {val_acc:.4f} ({event.seconds:.1f} s)",
                              file=sys.stderr)
        elif isinstance(event, EndEvent):
            bar["tqdm"].close()
            if event.stopped_early:
                print(f"early stopping: best epoch {event.best_epoch} restored", file=sys.stderr)

    run = train_and_save(config, args.data, Path(args.out), on_event, grad_probe=not args.no_grad_probe,
                         tfds_dir=args.tfds_dir, keras_file=not args.no_keras_file)
    print(json.dumps({"run": str(run.path), **{k: run.metrics[k] for k in ("accuracy", "loss", "roc_auc", "n")}}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import data as datamod
    from .calibration import apply_temperature
    from .inference import Engine
    from .metrics import evaluate
    from .runs import load_run
    from .short_texts import shorten

    engine = Engine.from_run(load_run(args.model))
    _, test = datamod.load_raw(args.data, args.tfds_dir)
    temperature, engine.temperature = engine.temperature, 1.0
    raw = engine.predict(test.texts)
    result = {"temperature": temperature, **evaluate(test.labels, apply_temperature(raw, temperature))}
    if temperature != 1.0:
        before = evaluate(test.labels, raw)
        result["uncalibrated"] = {k: before[k] for k in ("loss", "ece", "reliability")}
    if args.short_texts:
        short = apply_temperature(engine.predict([shorten(t) for t in test.texts]), temperature)
        result["short_texts"] = {k: v for k, v in evaluate(test.labels, short).items() if k != "reliability"}
    if result["no_words"]:
        print(f"note: {result['no_words']} review(s) hold no word the model knows; they are not scored "
              "and not counted in n", file=sys.stderr)
    print(json.dumps({"model": args.model, "data": args.data, **result}))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from . import data as datamod
    from .calibration import calibrate_and_test
    from .inference import Engine
    from .runs import load_run
    from .short_texts import shorten

    run = load_run(args.model)
    trained_on = run.meta.get("data", "")
    data = args.data or trained_on
    if not datamod.same_source(data, trained_on):
        raise ValueError(f"{run.name} was trained on {trained_on!r}; its validation split exists only in that "
                         f"source, not in {data!r} (leave --data out to use it)")
    c = run.config
    dataset = datamod.load(data, c.split, c.validation_fraction, c.seed, args.tfds_dir)
    engine = Engine.from_run(run)
    before = engine.temperature
    test, record = calibrate_and_test(
        engine, (engine.encode(dataset.validation.texts), dataset.validation.labels),
        (engine.encode(dataset.test.texts), dataset.test.labels),
        engine.encode([shorten(t) for t in dataset.test.texts]))
    _rewrite(run, test, {**run.meta, "calibration": record})
    print(json.dumps({"model": args.model, "data": data, "temperature_before": before, **record,
                      "test": {k: test[k] for k in ("n", "accuracy", "loss", "ece", "reliability", "uncalibrated",
                                                    "short_texts")}}))
    return 0


def cmd_seeds(args: argparse.Namespace) -> int:
    from .runs import load_run
    from .seeds import spread

    run = load_run(args.model)
    record = spread(run, [load_run(other) for other in args.others])
    _rewrite(run, run.metrics, {**run.meta, "seeds": record})
    print(json.dumps({"model": args.model, "seeds": record}))
    return 0


def _rewrite(run, metrics: dict, meta: dict) -> None:
    """Write `run` again, atomically, with new metrics and meta and the card they make; its weights as they were."""
    from .runner import model_card
    from .runs import write_run
    from .train import History

    card = model_card(run.name, run.config, run.meta.get("data", ""), History(**run.history), metrics, meta)
    keras_file = run.path / "model.keras"
    copy_model = (lambda to: shutil.copyfile(keras_file, to)) if keras_file.exists() else None
    write_run(run.path, run.config, run.vocab, run.weights, run.history, metrics, meta, insights=run.insights,
              card=card, save_model=copy_model, overwrite=True)


def _scored(text: str, tokens: list, probability: float) -> dict:
    """What predict and explain print of a text: its probability, or null and why when it has no words."""
    known = sum(not t.oov for t in tokens)
    if not known:
        return {"words": 0, "probability": None, "label": None, "note": str(NoWordsError(text, tokens))}
    return {"words": known, "probability": round(float(probability), 6),
            "label": "positive" if probability >= 0.5 else "negative"}


def cmd_predict(args: argparse.Namespace) -> int:
    from .inference import Engine
    from .runs import load_run
    from .text import out_of_vocabulary

    engine = Engine.from_run(load_run(args.model))
    texts = list(args.texts) or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for text, p in zip(texts, engine.predict(texts), strict=True):
        tokens = engine.tokens(text)
        print(json.dumps({"text": text, **_scored(text, tokens, p),
                          "out_of_vocabulary": out_of_vocabulary(text, engine.vocab)}))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .inference import Engine
    from .runs import load_run

    run = load_run(args.model)
    engine = Engine.from_run(run)
    tokens = engine.tokens(args.text)
    scored = _scored(args.text, tokens, engine.predict([args.text])[0])
    if scored["probability"] is None:
        rows = [{"word": t.word, "oov": t.oov} for t in tokens]
    else:
        _, occlusion = engine.occlusion(args.text)
        reading = engine.read(args.text)
        rows = [{"word": t.word, "oov": t.oov, "occlusion": round(float(o), 5), "as_it_reads": round(float(p), 5)}
                for t, o, p in zip(tokens, occlusion, reading.as_it_reads, strict=True)]
        if args.gradients:
            from .explain import integrated_gradients_for

            for row, value in zip(rows, integrated_gradients_for(run, args.text), strict=True):
                row["integrated_gradients"] = round(float(value), 5)
    print(json.dumps({"text": args.text, **scored, "tokens": rows}))
    return 0


def cmd_mistakes(args: argparse.Namespace) -> int:
    from . import mistakes
    from .inference import Engine
    from .runs import load_run

    run = load_run(args.model)
    result = mistakes.find(Engine.from_run(run), args.data, run.path,
                           cache_dir=None if args.no_cache else mistakes.DEFAULT_CACHE)
    for m in result.mistakes[: args.top]:
        print(json.dumps({"text": m.text, "label": m.label, "probability": round(m.probability, 6),
                          "tags": mistakes.tag_dict(m.tags)}))
    print(json.dumps({"model": args.model, "data": args.data, "summary": result.summary()}))
    return 0


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return number


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    out = export_run(args.model, args.out)
    print(f"wrote {out}: python {out} train --data tfds (or --data a folder of train/test.jsonl.gz); "
          f"python {out} predict --weights {args.model} \"a review\"", file=sys.stderr)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from .runs import list_runs

    for row in list_runs():
        print(json.dumps(row))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sentiment_core", description=__doc__, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model and save it as a run", epilog=EPILOG,
                           description="Train on --data, evaluate once on its test split, save the run to --out. "
                           "A hyperparameter not given keeps the --preset's value, else the default shown.")
    train.add_argument("--data", default="tfds", help="data source (default tfds)")
    train.add_argument("--out", required=True, help="folder of the new run, e.g. artifacts/runs/demo")
    train.add_argument("--preset", choices=sorted(PRESETS), help="start from a preset; flags override it")
    train.add_argument("--no-grad-probe", action="store_true", help="skip the per-epoch ‖dL/dh_t‖ measurement")
    train.add_argument("--tfds-dir", help="tensorflow-datasets data_dir")
    train.add_argument("--no-keras-file", action="store_true",
                       help="skip model.keras (the app reads weights.npz only; this halves the run's size)")
    _add_hyperparameters(train)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="score a run on a data source's test split", epilog=EPILOG,
                              description="Print JSON: accuracy, loss, n, confusion matrix "
                              "[[TN, FP], [FN, TP]], ROC AUC, ece and its reliability table, the run's "
                              "temperature (and, when it is not 1, the figures before calibration under "
                              "`uncalibrated`), and no_words: test reviews with no word the model knows, which are "
                              "not scored and not counted in n.")
    evaluate.add_argument("--model", required=True, help="run folder")
    evaluate.add_argument("--data", default="tfds", help="data source (default tfds)")
    evaluate.add_argument("--tfds-dir", help="tensorflow-datasets data_dir")
    evaluate.add_argument("--short-texts", action="store_true",
                          help="also score each test review cut to its first and last sentence (at most 40 words)")
    evaluate.set_defaults(func=cmd_evaluate)

    calibrate = sub.add_parser(
        "calibrate", help="fit a run's temperature on its validation split and rescore its test split",
        epilog=EPILOG, description="Fit the temperature (one number dividing the model's logit) on the "
        "validation split the run held out in training, never on test; store it in the run with the test "
        "figures before and after, the short-text figures, and a new model card. Training does this already; "
        "this command is for runs saved before it did. Prints JSON.")
    calibrate.add_argument("--model", required=True, help="run folder")
    calibrate.add_argument("--data", help="the data source the run was trained on (default: the one in its meta.json)")
    calibrate.add_argument("--tfds-dir", help="tensorflow-datasets data_dir")
    calibrate.set_defaults(func=cmd_calibrate)

    seeds = sub.add_parser(
        "seeds", help="record a run's recipe under other seeds on its model card",
        description="Check that each of --others is the run's recipe (every hyperparameter and the data source) "
        "under another seed, then store their test accuracy, short-text accuracy and ECE with the run's own in its "
        "meta.json "
        "(`seeds`) and card: per seed, and min / mean / max. Rewrites the run atomically. Prints JSON.")
    seeds.add_argument("--model", required=True, help="run folder")
    seeds.add_argument("--others", nargs="+", required=True, help="run folders: the same recipe, other seeds")
    seeds.set_defaults(func=cmd_seeds)

    predict = sub.add_parser("predict", help="score texts", description="One JSON line per text "
                             "(from the arguments, else one per line of stdin): text, words (how many of the "
                             "words it reads the model knows), probability, label. " + NO_WORDS_HELP)
    predict.add_argument("--model", required=True, help="run folder")
    predict.add_argument("texts", nargs="*", help="reviews to score")
    predict.set_defaults(func=cmd_predict)

    explain = sub.add_parser("explain", help="per-word attributions and sentiment as it reads",
                             description="One JSON line: text, words, probability and label as predict gives "
                             "them, and per word occlusion and sentiment as it reads (NumPy) and, with --gradients, "
                             "integrated gradients (Keras). " + NO_WORDS_HELP)
    explain.add_argument("--model", required=True, help="run folder")
    explain.add_argument("--gradients", action="store_true", help="also integrated gradients (loads Keras)")
    explain.add_argument("text", help="one review")
    explain.set_defaults(func=cmd_explain)

    wrong = sub.add_parser("mistakes", help="the test reviews a run gets most confidently wrong, and accuracy "
                           "per slice", epilog=EPILOG,
                           description="One JSON line per mistake, most confident first (text, label, probability "
                           "of positive, tags: length, negation, contrast, rating where the data has it), then "
                           "one line with the summary: accuracy over all and per slice (n, accuracy). Reviews "
                           "with no word the model knows are left out and counted in no_words. Probabilities are "
                           "kept on disk per (run, data) in $SENTIMENT_CACHE, so a second call is quick.")
    wrong.add_argument("--model", required=True, help="run folder")
    wrong.add_argument("--data", default="sample", help="data source whose test split is read (default sample)")
    wrong.add_argument("--top", type=_positive, default=20, help="how many mistakes to print (default 20)")
    wrong.add_argument("--no-cache", action="store_true", help="predict again, without reading or writing the "
                       "cached probabilities")
    wrong.set_defaults(func=cmd_mistakes)
    export = sub.add_parser("export", help="write the run as one standalone Keras script",
                            description="Write ONE Python script that uses only Keras 3 and NumPy (no sentiment_core): "
                            "the run's text settings and network as plain Keras lines; `train` trains it on IMDB "
                            "(tfds or a folder of train/test .jsonl.gz) with the run's hyperparameters and seed, "
                            "`predict --weights RUN` scores texts with the run's saved weights, `summary` prints "
                            "its parameter count. Ensembles (members > 1) are refused.")
    export.add_argument("--model", required=True, help="run folder")
    export.add_argument("--out", required=True, help="the script's file, e.g. my_model.py")
    export.set_defaults(func=cmd_export)

    listing = sub.add_parser("runs", help="list saved runs as JSON lines")
    listing.set_defaults(func=cmd_runs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, RunError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing was saved", file=sys.stderr)
        return 130
