"""Take it home: a run as ONE standalone Python script that uses only Keras 3 and NumPy.

The script is written for a learner to read: the run's settings as constants, the lab's text cleaning
and vocabulary in a few plain functions, the network as a few literal Keras lines specialised to the
run (no generic builder), then `train` (IMDB from tfds or a folder of JSON lines, with the run's
hyperparameters and seed) and `predict` (with the run's own saved weights, read with NumPy from its
folder or the zip the Runs page downloads). It never imports sentiment_core.

This module only writes text: it imports no Keras, so the app can offer the script for download.
tests/test_export.py runs an exported script and holds its predictions to the lab's within 1e-5.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from . import weights as fmt
from .config import Config
from .runs import load_run


class ExportError(ValueError):
    """The run cannot be exported (a setting the script does not reproduce) or the script not written."""


CELL_LAYERS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
OPTIMIZER_CLASSES = {"rmsprop": "RMSprop", "adam": "Adam", "sgd": "SGD"}


def check_exportable(config: Config) -> None:
    """Raise ExportError naming the setting the script cannot reproduce."""
    if config.members > 1:
        raise ExportError(f"members = {config.members}: this run is an ensemble of {config.members} networks, "
                          "each trained in its own order of the reviews on its own loss, which one short script "
                          "does not reproduce. Export a run with members = 1 (Train page: Networks (ensemble)).")


def script_for(config: Config, name: str, filename: str = "") -> str:
    """The standalone script of a run named `name` with this config, to be saved as `filename`
    (default NAME.py). Raises ExportError."""
    check_exportable(config)
    parts = [_header(config, name, filename or f"{name}.py"), _settings(config), TEXT, _data(config),
             _layers(config), _model(config), _weights(config), _commands(config)]
    return "\n".join(parts) + "\n"


def export_run(model: str | Path, out: str | Path) -> Path:
    """Write the script of the run at `model` to `out` (atomically). Raises RunError or ExportError."""
    run = load_run(model)
    out = Path(out)
    script = script_for(run.config, run.name, out.name)
    if out.is_dir():
        raise ExportError(f"--out {out} is a folder; give a file name, e.g. {out / (run.name + '.py')}")
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: the folder {out.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(script)
        os.replace(tmp, out)
    except OSError as error:
        raise ExportError(f"--out {out}: cannot write there ({error.strerror or error})") from error
    return out


def _describe(config: Config) -> str:
    return (f"{'bidirectional ' if config.bidirectional else ''}{CELL_LAYERS[config.cell]} × {config.layers}, "
            f"{config.units} units, embedding {config.embedding_dim}, vocabulary {config.vocab_size:,}, "
            f"reads up to {config.maxlen} words")


def _header(config: Config, name: str, filename: str) -> str:
    return f'''#!/usr/bin/env python
"""{name}: a recurrent sentiment classifier for movie reviews, exported from RNN Sentiment Lab.

{_describe(config)}.
It needs only Keras 3 and NumPy (and tensorflow-datasets for --data tfds).

    python {filename} train --data tfds                  # train it on IMDB with the run's settings and seed
    python {filename} train --data DIR --epochs 1 --max-train 500 --save my_weights
    python {filename} predict --weights RUN "a wonderful film" "dull and far too long"
    python {filename} summary                            # the layers and the parameter count

--data: tfds (downloads IMDB once, 84 MB), or a folder of gzip JSON lines, one {{"text": ..., "label": 0 or 1}}
per line: train.jsonl.gz and test.jsonl.gz, or sample_train.jsonl.gz and sample_test.jsonl.gz.
--weights: the lab's run folder, the zip its Runs page downloads, or a folder that `train --save` wrote; each
holds weights.npz (the weights, read here with NumPy) and vocab.json (the words, in id order).

Training follows the lab: the same vocabulary, splits, network, optimizer and seed. The lab also cuts each
batch to its longest review and groups reviews of similar length, which changes the order of the reviews
(not what the network can learn), so the weights you get differ a little from the run's.
"""

import argparse
import gzip
import io
import json
import math
import os
import re
import string
import zipfile
from collections import Counter
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")  # the lab trains on JAX; tensorflow or torch work too

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402
'''


def _settings(config: Config) -> str:
    c = config
    lines = ["# ---------------------------------------------------------------- the run's settings",
             f"VOCAB_SIZE = {c.vocab_size}  # the most frequent training words get ids 2.. ; 0 is padding, 1 [UNK]",
             f"MAXLEN = {c.maxlen}  # words read per review",
             f"LAYERS = {c.layers}  # recurrent layers, named rnn_1, rnn_2, ...",
             f'PADDING = "{c.padding}"  # zeros {"before" if c.padding == "pre" else "after"} a short review',
             f'TRUNCATING = "{c.truncating}"  # a long review keeps its {"last" if c.truncating == "pre" else "first"}'
             f" {c.maxlen} words",
             f'SPLIT = "{c.split}"',
             f"VALIDATION_FRACTION = {c.validation_fraction}  # of the training reviews, held out to stop training",
             f"SEED = {c.seed}",
             f"BATCH_SIZE = {c.batch_size}",
             f"EPOCHS = {c.epochs}"]
    if c.early_stopping:
        lines.append(f'EARLY_STOPPING = dict(monitor="{c.monitor}", patience={c.patience}, '
                     f'mode="{"max" if c.monitor == "val_accuracy" else "min"}", restore_best_weights=True)')
    return "\n".join(lines) + "\n"


TEXT = '''
# ---------------------------------------------------------------- text to ids, as the lab reads it
# Punctuation becomes a space, except the apostrophe, which is dropped: "don't" reads as "dont".
PUNCTUATION = str.maketrans({**{c: " " for c in string.punctuation if c != "'"}, "'": None})


def words(text):
    """Lowercase, drop <br /> markup and punctuation, split on whitespace."""
    text = text.lower().replace("\\u2019", "").replace("\\n", " ")  # typographic apostrophes go too
    return re.sub(r"<br */?>", " ", text).translate(PUNCTUATION).split()


def build_vocabulary(texts):
    """Padding, [UNK], then the training words by frequency (ties alphabetically): VOCAB_SIZE in all."""
    counts = Counter(word for text in texts for word in words(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ["", "[UNK]"] + [word for word, _ in ranked[: VOCAB_SIZE - 2]]


def encode(texts, vocabulary):
    """Each text as MAXLEN ids: cut and padded as the run was (Keras' pad_sequences does the same)."""
    index = {word: i for i, word in enumerate(vocabulary)}
    rows = np.zeros((len(texts), MAXLEN), dtype="int32")
    for row, text in zip(rows, texts, strict=True):
        ids = [index.get(word, 1) for word in words(text)]
        ids = ids[-MAXLEN:] if TRUNCATING == "pre" else ids[:MAXLEN]
        if ids and PADDING == "pre":
            row[MAXLEN - len(ids):] = ids
        elif ids:
            row[: len(ids)] = ids
    return rows
'''


def _data(config: Config) -> str:
    notebook = '''
    # The course notebook's protocol: all reviews merged, 80% train and 20% test.
    texts, labels = train[0] + test[0], np.concatenate([train[1], test[1]])
    order = rng.permutation(len(texts))
    n_test = len(texts) // 5
    test = [texts[i] for i in order[:n_test]], labels[order[:n_test]]
    train = [texts[i] for i in order[n_test:]], labels[order[n_test:]]''' if config.split == "notebook" else ""
    return '''
# ---------------------------------------------------------------- IMDB
def read_jsonl(path):
    texts, labels = [], []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            texts.append(str(row["text"]))
            labels.append(int(row["label"]))
    return texts, np.asarray(labels, dtype="int32")


def load_imdb(source):
    """IMDB's train and test halves, each (texts, labels), from tfds or a folder of JSON lines."""
    if source == "tfds":
        import tensorflow_datasets as tfds

        halves = tfds.load("imdb_reviews", split=["train", "test"], as_supervised=True, batch_size=-1)
        return [([t.decode("utf-8", "replace") for t in texts], np.asarray(labels, dtype="int32"))
                for texts, labels in map(tfds.as_numpy, halves)]
    folder = Path(source)
    pairs = [("train.jsonl.gz", "test.jsonl.gz"), ("sample_train.jsonl.gz", "sample_test.jsonl.gz")]
    for train_file, test_file in pairs:
        if (folder / train_file).is_file() and (folder / test_file).is_file():
            return read_jsonl(folder / train_file), read_jsonl(folder / test_file)
    raise SystemExit(f"--data {source}: not tfds, nor a folder with train.jsonl.gz and test.jsonl.gz")


def split(train, test):
    """Train, validation and test (texts, labels), drawn as the lab draws them from SEED."""
    rng = np.random.default_rng(SEED)''' + notebook + '''
    order = rng.permutation(len(train[0]))
    n_validation = max(1, round(len(train[0]) * VALIDATION_FRACTION))
    pick = lambda rows: ([train[0][i] for i in rows], train[1][rows])  # noqa: E731
    return pick(order[n_validation:]), pick(order[:n_validation]), test
'''


def _layers(config: Config) -> str:
    """The small layers the lab adds to Keras, for the runs that use them."""
    parts = []
    if config.word_dropout:
        parts.append('''
class WordDropout(layers.Layer):
    """While training, a random share of the words reads as [UNK] (id 1), so the model cannot lean on a few."""

    def __init__(self, rate, seed, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seed_generator = rate, keras.random.SeedGenerator(seed)

    def call(self, ids, training=None):
        if not training:
            return ids
        drop = keras.random.uniform(keras.ops.shape(ids), seed=self.seed_generator) < self.rate
        return keras.ops.where(keras.ops.logical_and(drop, keras.ops.not_equal(ids, 0)), keras.ops.ones_like(ids), ids)
''')
    if config.bigram_buckets:
        parts.append(f'''
class WordAndBigramEmbedding(layers.Layer):
    """A word's vector plus a vector for the pair (previous word, word), hashed into `buckets` rows."""

    def __init__(self, vocab_size, dim, buckets, **kwargs):
        super().__init__(**kwargs)
        self.buckets = buckets
        self.embeddings = self.add_weight(shape=(vocab_size, dim), initializer="uniform", name="embeddings")
        self.bigram_embeddings = self.add_weight(shape=(buckets, dim), initializer="uniform", name="bigrams")

    def call(self, ids):
        ids = keras.ops.cast(ids, "int32")
        previous = keras.ops.pad(ids[:, :-1], [[0, 0], [1, 0]])  # the first word's previous word is padding
        pairs = (previous * {fmt.BIGRAM_HASH} + ids) % self.buckets
        return keras.ops.take(self.embeddings, ids, axis=0) + keras.ops.take(self.bigram_embeddings, pairs, axis=0)

    def compute_mask(self, ids, mask=None):
        return {"keras.ops.not_equal(ids, 0)" if config.mask else "None"}
''')
    if config.pooling == "max":
        parts.append('''
class MaskedMaxPooling1D(layers.Layer):
    """The max over the real words only (Keras' GlobalMaxPooling1D lets the padding in)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is not None:
            x = keras.ops.where(keras.ops.expand_dims(mask, -1), x, -1e9)
        return keras.ops.max(x, axis=1)

    def compute_mask(self, x, mask=None):
        return None
''')
    return ("\n# ---------------------------------------------------------------- the lab's own layers\n"
            + "\n".join(parts)) if parts else ""


def _model(config: Config) -> str:
    c = config
    lines = ["def build_model(steps_per_epoch=None):",
             f'    """{_describe(c)}."""',
             '    ids = keras.Input(shape=(MAXLEN,), dtype="int32", name="token_ids")']
    x = "ids"
    if c.word_dropout:
        lines.append(f'    x = WordDropout({c.word_dropout}, seed=1337, name="word_dropout")(ids)')
        x = "x"
    if c.bigram_buckets:
        lines.append(f"    x = WordAndBigramEmbedding(VOCAB_SIZE, {c.embedding_dim}, {c.bigram_buckets}, "
                     f'name="embedding")({x})')
    else:
        lines.append(f"    x = layers.Embedding(VOCAB_SIZE, {c.embedding_dim}, mask_zero={c.mask}, "
                     f'name="embedding")({x})')
    if c.mask and c.padding == "pre" and c.cell != "simple_rnn":
        lines.append("    # cuDNN (TensorFlow on a GPU) takes only right-padded masks: these layers keep Keras' loop.")
    for layer in range(1, c.layers + 1):
        options = [str(c.units)]
        if c.dropout:
            options.append(f"dropout={c.dropout}")
        if c.recurrent_dropout:
            options.append(f"recurrent_dropout={c.recurrent_dropout}")
        if layer < c.layers or c.pooling != "last":
            options.append("return_sequences=True")
        if c.mask and c.padding == "pre" and c.cell != "simple_rnn":
            options.append("use_cudnn=False")
        rnn = f"layers.{CELL_LAYERS[c.cell]}({', '.join(options)})"
        if c.bidirectional:
            lines.append(f'    x = layers.Bidirectional({rnn}, name="rnn_{layer}")(x)')
        else:
            lines.append(f"    x = layers.{CELL_LAYERS[c.cell]}({', '.join(options)}, name=\"rnn_{layer}\")(x)")
    if c.pooling == "max":
        lines.append("    x = MaskedMaxPooling1D()(x)  # the largest value of each unit over the review")
    elif c.pooling == "mean":
        lines.append("    x = layers.GlobalAveragePooling1D()(x)  # each unit's mean over the review")
    if c.head_dropout:
        lines.append(f"    x = layers.Dropout({c.head_dropout})(x)")
    lines.append('    probability = layers.Dense(1, activation="sigmoid", name="sentiment")(x)')
    lines.append('    model = keras.Model(ids, probability, name="sentiment")')
    options = [f"learning_rate={c.learning_rate}"]
    if c.clipnorm:
        options.append(f"clipnorm={c.clipnorm}")
    if c.weight_decay:
        options.append(f"weight_decay={c.weight_decay}")
    if c.weight_averaging:  # the weights' moving average replaces them at the end of each epoch
        options += ["use_ema=True", f"ema_momentum={c.weight_averaging}", "ema_overwrite_frequency=steps_per_epoch"]
    arguments = ", ".join(options) if len(options) < 3 else "\n        " + ",\n        ".join(options) + ",\n    "
    lines.append(f"    optimizer = keras.optimizers.{OPTIMIZER_CLASSES[c.optimizer]}({arguments})")
    lines.append('    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])')
    lines.append("    return model")
    title = "\n# ---------------------------------------------------------------- the network\n"
    return title + "\n".join(lines) + "\n"


def _weights(config: Config) -> str:
    directions = '("forward", "backward")' if config.bidirectional else '("forward",)'
    embedding = f'[arrays["{fmt.EMBEDDING}"]' + (f', arrays["{fmt.BIGRAMS}"]]' if config.bigram_buckets else "]")
    saved = '"' + fmt.EMBEDDING + '"' + (f', "{fmt.BIGRAMS}"' if config.bigram_buckets else "")
    return f'''
# ---------------------------------------------------------------- weights, in the lab's format (weights.npz)
DIRECTIONS = {directions}
PARTS = ({", ".join(f'"{part}"' for part in fmt.RNN_PARTS)})  # each recurrent layer's weights, as Keras orders them


def read_weights(source):
    """The weight arrays, the vocabulary and the temperature of a lab run's folder or zip (or of `train --save`).

    The temperature (meta.json's `calibration`, fitted on validation after training; 1 when there is none)
    divides the model's logit, so that a "70% positive" is right about 70% of the time.
    """
    source = Path(source)
    try:
        if source.suffix == ".zip":
            with zipfile.ZipFile(source) as archive:
                stored = np.load(io.BytesIO(archive.read("weights.npz")), allow_pickle=False)
                vocabulary = json.loads(archive.read("vocab.json"))
                meta = json.loads(archive.read("meta.json")) if "meta.json" in archive.namelist() else {{}}
        else:
            stored = np.load(source / "weights.npz", allow_pickle=False)
            vocabulary = json.loads((source / "vocab.json").read_text(encoding="utf-8"))
            meta_file = source / "meta.json"
            meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {{}}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        message = f"--weights {{source}}: not a run's folder or zip with weights.npz and vocab.json ({{error}})"
        raise SystemExit(message) from None
    arrays = {{name: stored[name] for name in stored.files}}
    # The lab stores an embedding table as int8 rows times a float16 scale per row ("{fmt.SCALE}"), and
    # with an embedding rank as rows times a basis ("{fmt.BASIS}"): multiply them out.
    for name in [n for n in arrays if n.endswith("{fmt.SCALE}")]:
        table = name[: -len("{fmt.SCALE}")]
        arrays[table] = arrays[table].astype("float32") * arrays.pop(name).astype("float32")
    for name in [n for n in arrays if n.endswith("{fmt.BASIS}")]:
        table = name[: -len("{fmt.BASIS}")]
        arrays[table] = arrays[table] @ arrays.pop(name).astype("float32")
    return arrays, vocabulary, float((meta.get("calibration") or {{}}).get("temperature", 1.0))


def set_weights(model, arrays):
    model.get_layer("embedding").set_weights({embedding})
    for layer in range(1, LAYERS + 1):
        model.get_layer(f"rnn_{{layer}}").set_weights(
            [arrays[f"rnn_{{layer}}/{{direction}}/{{part}}"] for direction in DIRECTIONS for part in PARTS])
    model.get_layer("sentiment").set_weights([arrays["{fmt.HEAD_KERNEL}"], arrays["{fmt.HEAD_BIAS}"]])


def save_weights(model, vocabulary, folder):
    """weights.npz and vocab.json in the lab's names (float32 tables), for `predict --weights`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = dict(zip([{saved}], model.get_layer("embedding").get_weights(), strict=True))
    for layer in range(1, LAYERS + 1):
        values = iter(model.get_layer(f"rnn_{{layer}}").get_weights())
        arrays.update({{f"rnn_{{layer}}/{{direction}}/{{part}}": next(values)
                       for direction in DIRECTIONS for part in PARTS}})
    arrays["{fmt.HEAD_KERNEL}"], arrays["{fmt.HEAD_BIAS}"] = model.get_layer("sentiment").get_weights()
    np.savez(folder / "weights.npz", **arrays)
    (folder / "vocab.json").write_text(json.dumps(vocabulary), encoding="utf-8")
'''


def _commands(config: Config) -> str:
    stopping = ("    callbacks = [keras.callbacks.EarlyStopping(**EARLY_STOPPING)]\n" if config.early_stopping
                else "    callbacks = []\n")
    return '''
# ---------------------------------------------------------------- train, predict, summary
def train(args):
    keras.utils.set_random_seed(SEED)
    (train_texts, y_train), (validation_texts, y_validation), (test_texts, y_test) = split(*load_imdb(args.data))
    if args.max_train:  # a quick try on fewer reviews
        train_texts, y_train = train_texts[: args.max_train], y_train[: args.max_train]
        validation_texts, y_validation = validation_texts[: args.max_train], y_validation[: args.max_train]
    vocabulary = build_vocabulary(train_texts)
    x_train, x_validation, x_test = (encode(t, vocabulary) for t in (train_texts, validation_texts, test_texts))
    print(f"{len(x_train)} training, {len(x_validation)} validation and {len(x_test)} test reviews")
    model = build_model(steps_per_epoch=math.ceil(len(x_train) / BATCH_SIZE))
    print(f"parameters: {model.count_params():,}")
''' + stopping + '''    history = model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=args.epochs or EPOCHS,
                        shuffle=True, validation_data=(x_validation, y_validation), callbacks=callbacks, verbose=2)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    print(json.dumps({"epochs": len(history.history["loss"]), "train_loss": history.history["loss"][-1],
                      "test_loss": loss, "test_accuracy": accuracy}))
    if args.save:
        save_weights(model, vocabulary, args.save)
        print(f"saved to {args.save}: predict with --weights {args.save}")


def predict(args):
    arrays, vocabulary, temperature = read_weights(args.weights)
    model = build_model()
    set_weights(model, arrays)
    x = encode(args.texts, vocabulary)
    p = np.clip(np.asarray(model(x, training=False), dtype="float64")[:, 0], 1e-7, 1 - 1e-7)
    probabilities = 1 / (1 + np.exp(-np.log(p / (1 - p)) / temperature))  # calibrated, as the lab shows it
    for text, ids, p in zip(args.texts, x, probabilities, strict=True):
        known = int((ids > 1).sum())  # a text with no word the model knows gets no score
        print(json.dumps({"text": text, "words": known, "probability": float(p) if known else None}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    training = commands.add_parser("train", help="train on IMDB with the run's settings and seed")
    training.add_argument("--data", default="tfds", help="tfds, or a folder of train/test .jsonl.gz (default tfds)")
    training.add_argument("--epochs", type=int, help=f"at most this many epochs (default {EPOCHS})")
    training.add_argument("--max-train", type=int, help="train (and validate) on at most this many reviews")
    training.add_argument("--save", help="a folder for weights.npz and vocab.json")
    predicting = commands.add_parser("predict", help="score texts with saved weights")
    predicting.add_argument("--weights", required=True, help="a lab run's folder or zip, or a train --save folder")
    predicting.add_argument("texts", nargs="+", help="reviews to score")
    commands.add_parser("summary", help="print the layers and the parameter count")
    args = parser.parse_args()
    if args.command == "train":
        train(args)
    elif args.command == "predict":
        predict(args)
    else:
        model = build_model()
        model.summary()
        print(f"parameters: {model.count_params():,}")


if __name__ == "__main__":
    main()'''
