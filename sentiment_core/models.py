"""Keras models built from a Config.

The backend is JAX unless KERAS_BACKEND says otherwise: on these CPUs it trains the
notebook's SimpleRNN about 7x faster than TensorFlow (see benchmarks/pipeline.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # also set by the package's __init__

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

from . import weights as weight_format  # noqa: E402
from .config import Config  # noqa: E402
from .lean_rnn import LeanSimpleRNN  # noqa: E402

RNN_LAYERS = {"simple_rnn": LeanSimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}
OPTIMIZERS = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}


@keras.saving.register_keras_serializable(package="sentiment_core")
class MaskedMaxPooling1D(layers.Layer):
    """Max over real steps only; Keras' GlobalMaxPooling1D lets padding into the max."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, sequence, mask=None):
        if mask is not None:
            sequence = ops.where(ops.expand_dims(mask, -1), sequence, ops.full_like(sequence, -1e9))
        return ops.max(sequence, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="sentiment_core")
class WordAndBigramEmbedding(layers.Layer):
    """Word embedding plus a hashed embedding of the word pair ending at each step.

    The recurrent layer then sees "not good" as one input, not only as two steps.
    `embeddings` is the word table, as in keras.layers.Embedding, so both kinds read the same.
    """

    def __init__(self, vocab_size: int, dim: int, buckets: int, mask_zero: bool = True,
                 bigram_hash: int = weight_format.BIGRAM_HASH, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.dim, self.buckets, self.mask_zero = vocab_size, dim, buckets, mask_zero
        self.bigram_hash = bigram_hash
        self.embeddings = self.add_weight(shape=(vocab_size, dim), initializer="uniform", name="embeddings")
        self.bigram_embeddings = self.add_weight(shape=(buckets, dim), initializer="uniform", name="bigrams")

    def call(self, token_ids):
        token_ids = ops.cast(token_ids, "int32")
        pairs = weight_format.bigram_ids(token_ids, self.buckets, ops, self.bigram_hash)
        return ops.take(self.embeddings, token_ids, axis=0) + ops.take(self.bigram_embeddings, pairs, axis=0)

    def compute_mask(self, token_ids, mask=None):
        return ops.not_equal(token_ids, 0) if self.mask_zero else None

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.dim)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim, "buckets": self.buckets,
                "mask_zero": self.mask_zero, "bigram_hash": self.bigram_hash}


@keras.saving.register_keras_serializable(package="sentiment_core")
class WordDropout(layers.Layer):
    """While training, replace a random fraction of the words by the out-of-vocabulary id.

    A regularizer that makes the model look at more than its favourite words. At
    inference it passes the ids through, so the NumPy engine has nothing to mirror.
    """

    def __init__(self, rate: float, seed: int = 1337, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seed = rate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, token_ids, training=None):
        if not training or self.rate == 0:
            return token_ids
        drop = keras.random.uniform(ops.shape(token_ids), seed=self.seed_generator) < self.rate
        return ops.where(ops.logical_and(drop, ops.not_equal(token_ids, 0)), ops.ones_like(token_ids), token_ids)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def member_prefix(member: int) -> str:
    """Layer names of member 0 are the plain ones ("embedding", "rnn_1", "sentiment"); others get "m2_", ..."""
    return "" if member == 0 else f"m{member + 1}_"


def _network(config: Config, token_ids, member: int, of_ensemble: int):
    """Embedding -> RNN layer(s) -> optional pooling over time -> sigmoid: one member's probability.
    `of_ensemble` is its place in the ensemble (its word-pair hash and word dropout's seed), `member` in this model."""
    prefix = member_prefix(member)
    ids = token_ids
    if config.word_dropout:
        ids = WordDropout(config.word_dropout, seed=1337 + of_ensemble, name=prefix + "word_dropout")(ids)
    if config.bigram_buckets:
        bigram_hash = weight_format.bigram_hashes(of_ensemble + 1, config.members_apart)[of_ensemble]
        x = WordAndBigramEmbedding(config.vocab_size, config.embedding_dim, config.bigram_buckets,
                                   mask_zero=config.mask, bigram_hash=bigram_hash, name=prefix + "embedding")(ids)
    else:
        x = layers.Embedding(config.vocab_size, config.embedding_dim, mask_zero=config.mask,
                             name=prefix + "embedding")(ids)
    # On a GPU with the TensorFlow backend, LSTM and GRU run cuDNN, which accepts only right-padded
    # masks: a left-padded one fails an assertion at run time, so those layers keep Keras' own loop.
    left_padded_mask = config.mask and config.padding == "pre"
    cudnn = {} if config.cell == "simple_rnn" else {"use_cudnn": False if left_padded_mask else "auto"}
    for i in range(1, config.layers + 1):
        rnn = RNN_LAYERS[config.cell](
            config.units,
            dropout=config.dropout,
            recurrent_dropout=config.recurrent_dropout,
            return_sequences=i < config.layers or config.pooling != "last",
            name=f"{prefix}rnn_{i}",
            **cudnn,
        )
        if config.bidirectional:
            rnn = layers.Bidirectional(rnn, name=f"{prefix}bi_rnn_{i}")
        x = rnn(x)
    if config.pooling == "max":
        x = MaskedMaxPooling1D(name=prefix + "max_over_time")(x)
    elif config.pooling == "mean":
        x = layers.GlobalAveragePooling1D(name=prefix + "mean_over_time")(x)
    if config.head_dropout:
        x = layers.Dropout(config.head_dropout, name=prefix + "head_dropout")(x)
    return layers.Dense(1, activation="sigmoid", name=prefix + "sentiment")(x)


def _per_member(labels, member_probabilities):
    """Labels (B, M) when each member read its own reviews (training), else one label per row for all."""
    labels = ops.cast(labels, member_probabilities.dtype)
    if len(labels.shape) == 2 and labels.shape[-1] == member_probabilities.shape[-1]:
        return labels, True
    return ops.broadcast_to(ops.reshape(labels, (-1, 1)), ops.shape(member_probabilities)), False


def members_loss(labels, member_probabilities):
    """Each member's binary cross-entropy, averaged over the members: no member's gradient depends on another."""
    labels, _ = _per_member(labels, member_probabilities)
    return keras.losses.binary_crossentropy(labels, member_probabilities)


def ensemble_accuracy(labels, member_probabilities):
    """Accuracy of the members' mean probability, what the ensemble predicts, where all read the same
    reviews; while training (each member its own reviews), the members' mean accuracy."""
    labels, own = _per_member(labels, member_probabilities)
    if own:
        return keras.metrics.binary_accuracy(labels, member_probabilities)
    return keras.metrics.binary_accuracy(labels[:, :1], ops.mean(member_probabilities, axis=-1, keepdims=True))


def build_model(config: Config, compile: bool = True, steps_per_epoch: int | None = None,
                any_length: bool = False, member_inputs: bool = False, member_offset: int = 0) -> keras.Model:
    """One network, or `config.members` of them side by side on the same input.

    Members share nothing but the batches: each starts from its own random weights and is trained
    on its own loss (the loss is their mean, so no member's gradient depends on another), and the
    model outputs one probability per member. Their mean is the prediction.
    With weight averaging, the optimizer writes the averaged weights into the model every
    `steps_per_epoch` steps, so validation, early stopping and the saved run all see them.
    `any_length` accepts batches cut shorter than maxlen (batches.LengthBatches). `member_inputs` takes
    (B, M, T) batches, one row of reviews per member, so that each member reads the data in its own
    order while training; the saved and rebuilt models take (B, T) and give every member the same review.
    `member_offset` > 0 builds member `member_offset` of an ensemble trained apart, alone (members_apart.py).
    """
    steps = None if any_length else config.maxlen
    if member_inputs and config.members > 1:
        token_ids = keras.Input(shape=(config.members, steps), dtype="int32", name="token_ids")
        streams = [token_ids[:, member] for member in range(config.members)]
    else:
        token_ids = keras.Input(shape=(steps,), dtype="int32", name="token_ids")
        streams = [token_ids] * config.members
    outputs = [_network(config, stream, member, member_offset + member) for member, stream in enumerate(streams)]
    probability = outputs[0] if len(outputs) == 1 else layers.Concatenate(name="members")(outputs)
    model = keras.Model(token_ids, probability, name=f"{config.cell}_sentiment")
    if not compile:
        return model
    averaging = config.weight_averaging > 0
    optimizer = OPTIMIZERS[config.optimizer](learning_rate=config.learning_rate,
                                             clipnorm=config.clipnorm or None,
                                             weight_decay=config.weight_decay or None,
                                             use_ema=averaging, ema_momentum=config.weight_averaging or 0.99,
                                             ema_overwrite_frequency=steps_per_epoch if averaging else None)
    if config.members == 1:
        model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    else:
        model.compile(optimizer=optimizer, loss=members_loss,
                      metrics=[keras.metrics.MeanMetricWrapper(ensemble_accuracy, name="accuracy")])
    return model


def first_member(model: keras.Model) -> keras.Model:
    """The model of member 0 alone (the model itself when it has one member), sharing its layers."""
    if model.get_layer("sentiment") is model.layers[-1]:
        return model
    return keras.Model(model.inputs, model.get_layer("sentiment").output)


def save_keras(model: keras.Model, config: Config, path) -> None:
    """Save the weights in Keras' own format, without the optimizer's state (it would triple the size)."""
    plain = build_model(config, compile=False)
    plain.set_weights(model.get_weights())
    plain.save(path)


def summary_rows(config: Config) -> list[dict]:
    """Layer, output shape and parameter count, for a table before training starts."""
    model = build_model(config)
    shown_as = {LeanSimpleRNN: "SimpleRNN"}  # the same layer to a learner; only its JAX loop differs
    return [{"layer": layer.name, "type": shown_as.get(type(layer), type(layer).__name__),
             "output shape": str(tuple(layer.output.shape)), "parameters": layer.count_params()}
            for layer in model.layers[1:]]


def recurrent_layers(model: keras.Model, member: int = 0) -> list[layers.Layer]:
    prefix = member_prefix(member)
    return [layer for layer in model.layers if layer.name.startswith((prefix + "rnn_", prefix + "bi_rnn_"))]


def quantize_embeddings(model: keras.Model, rank: int = 0) -> dict[str, np.ndarray]:
    """The weights to store, embedding tables as int8 with a scale per row, first cut to `rank`
    directions if 0 < rank < their size (weights.quantize_tables).

    The model's tables are set to exactly the values stored, so model.keras, weights.npz, the NumPy
    engine and every metric computed from them hold the same numbers.
    """
    stored = weight_format.quantize_tables(export_weights(model), rank)
    load_weights(model, stored)
    return stored


def _member_variables(model: keras.Model, member: int) -> dict:
    """Each weight of one member under its stored name (weights.py), the name the NumPy engine reads."""
    prefix = member_prefix(member)
    embedding = model.get_layer(prefix + "embedding")
    variables = {weight_format.EMBEDDING: embedding.embeddings}
    if isinstance(embedding, WordAndBigramEmbedding):
        variables[weight_format.BIGRAMS] = embedding.bigram_embeddings
    for i, layer in enumerate(recurrent_layers(model, member), 1):
        directions = ({"forward": layer.forward_layer, "backward": layer.backward_layer}
                      if isinstance(layer, layers.Bidirectional) else {"forward": layer})
        for direction, rnn in directions.items():
            for part in weight_format.RNN_PARTS:
                variables[weight_format.rnn_key(i, direction, part)] = getattr(rnn.cell, part)
    head = model.get_layer(prefix + "sentiment")
    variables[weight_format.HEAD_KERNEL], variables[weight_format.HEAD_BIAS] = head.kernel, head.bias
    return variables


def _members(model: keras.Model) -> int:
    return sum(layer.name.endswith("sentiment") for layer in model.layers)


def export_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """Weights under stable names; with several members, each array gains a leading member axis."""
    members = [_member_variables(model, m) for m in range(_members(model))]
    if len(members) == 1:
        return {name: np.asarray(v) for name, v in members[0].items()}
    return {name: np.stack([np.asarray(m[name]) for m in members]) for name in members[0]}


def load_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """The inverse of `export_weights`: a saved run's arrays into a model built from its config."""
    weights = weight_format.dequantize_tables(weights)
    count = _members(model)
    for member in range(count):
        for name, variable in _member_variables(model, member).items():
            variable.assign(weights[name] if count == 1 else weights[name][member])
