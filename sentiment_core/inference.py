"""The forward pass of every model the engine builds, in NumPy, from a run's saved weights.

No TensorFlow, Keras or JAX is imported here: the app predicts and draws hidden
states in a process that starts fast and stays small. tests/test_inference.py holds
it to Keras' own outputs within 1e-5. The equations are Keras 3's cells:
  SimpleRNN  h = tanh(x K + h R + b)
  LSTM       i, f, g, o = split(x K + h R + b); c = f c + i tanh(g) (i, f, o sigmoid); h = o tanh(c)
  GRU        z, r = sigmoid(...); n = tanh(x K_n + b_n + r (h R_n + b'_n)); h = z h + (1 - z) n
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calibration import apply_temperature, temperature_of
from .config import Config
from .text import OOV, Token, Vocabulary, encode, known_words, pad, read_as_model, require_words
from .weights import (
    BASIS,
    BIGRAMS,
    EMBEDDING,
    HEAD_BIAS,
    HEAD_KERNEL,
    RNN_PARTS,
    bigram_bucket,
    bigram_hashes,
    dequantize_tables,
    rnn_key,
)

# Steps (reviews x members x maxlen) in one batch of predict_ids. best's six networks score 2,048 reviews in
# batches of 109 at 362 MiB peak, against 1,069 MiB in batches of 512: as fast on a quiet machine (8.3-8.8 s
# against 8.6 s), twice as fast with a training alongside (18.9 s against 40.1 s).
BATCH_STEPS = 2**18
GATES = {"simple_rnn": (), "lstm": ("input", "forget", "output"), "gru": ("update", "reset")}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # = 1 / (1 + e^-x), without overflow warnings


def _sigmoid_inplace(x: np.ndarray) -> np.ndarray:
    """`_sigmoid` computed in x's own memory (the same operations, so the same numbers)."""
    x *= 0.5
    np.tanh(x, out=x)
    x += 1.0
    x *= 0.5
    return x


def _step(cell: str, xp: np.ndarray, h: np.ndarray, c: np.ndarray, recurrent: np.ndarray,
          recurrent_bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One step of a cell for every member and row: new h, new c (LSTM; else c as given) and the gates.

    The operations run in place, in the order of the equations above: the same numbers, fewer arrays.
    xp is the step's input projection (x K + b), (M, B, G); h and c (M, B, U).
    """
    units = recurrent.shape[-2]
    if cell == "simple_rnn":
        new_h = h @ recurrent
        new_h += xp
        return np.tanh(new_h, out=new_h), c, {}
    if cell == "lstm":
        z = h @ recurrent
        z += xp
        _sigmoid_inplace(z[..., : 2 * units])
        i, f = z[..., :units], z[..., units : 2 * units]
        g, o = np.tanh(z[..., 2 * units : 3 * units]), _sigmoid_inplace(z[..., 3 * units :])
        new_c = f * c
        g *= i
        new_c += g
        new_h = np.tanh(new_c)
        new_h *= o
        return new_h, new_c, {"input": i, "forget": f, "output": o}
    m = h @ recurrent
    m += recurrent_bias
    zr = _sigmoid_inplace(xp[..., : 2 * units] + m[..., : 2 * units])
    z, r = zr[..., :units], zr[..., units:]
    n = r * m[..., 2 * units :]
    n += xp[..., 2 * units :]
    np.tanh(n, out=n)
    n *= 1.0 - z
    new_h = z * h
    new_h += n
    return new_h, c, {"update": z, "reset": r}


def _run_direction(cell: str, x: np.ndarray, mask: np.ndarray, kernel, recurrent, bias, reverse: bool,
                   trace: bool, where: np.ndarray | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One direction of one layer over a batch, for every member at once (leading axis M).

    x (M, B, T, E), mask (B, T); returns outputs (M, B, T, U), final h (M, B, U), traced states.
    The members ride along in the same NumPy calls, so an ensemble costs about one network's steps.
    With `where` (B, T), x is (M, N, E): the distinct input rows, and `where` says which row each step reads.
    """
    batch, steps = mask.shape
    members = x.shape[0]
    units = recurrent.shape[-2]
    input_bias = bias[:, 0] if cell == "gru" else bias
    if where is None:
        projected = x @ kernel[:, None] + input_bias[:, None, None]  # all input projections in one matmul
    else:  # each distinct row projected once (a batch of variants of one review shares nearly all of them)
        distinct = x @ kernel + input_bias[:, None]
    recurrent_bias = bias[:, 1][:, None] if cell == "gru" else None
    h = np.zeros((members, batch, units), dtype=np.float32)
    c = np.zeros_like(h)
    outputs = np.zeros((members, batch, steps, units), dtype=np.float32)
    names = ("h", "c", *GATES[cell]) if cell == "lstm" else ("h", *GATES[cell])
    traced = {n: np.zeros((members, batch, steps, units), dtype=np.float32) for n in names} if trace else {}
    whole = mask.all(axis=0)  # steps that are real in every row need no `where`
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        xp = projected[:, :, t] if where is None else distinct[:, where[:, t]]
        new_h, new_c, gates = _step(cell, xp, h, c, recurrent, recurrent_bias)
        if whole[t]:
            h = new_h
            if cell == "lstm":
                c = new_c
        else:
            keep = mask[:, t : t + 1]
            h = np.where(keep, new_h, h)
            if cell == "lstm":
                c = np.where(keep, new_c, c)
        outputs[:, :, t] = h
        if trace:
            traced["h"][:, :, t] = h
            if cell == "lstm":
                traced["c"][:, :, t] = c
            for name, value in gates.items():
                traced[name][:, :, t] = value
    return outputs, h, traced


@dataclass(frozen=True)
class _Variants:
    """How one direction reads occlusion's variants of a review, in that direction's reading order.

    base_in (M, L, G) is the review's input projection per step read; variant v reads at_word[:, v] at step
    word_at[v] and, where next_at[v] >= 0, at_next[:, v] at step next_at[v] (its bigram there changed).
    """

    base_in: np.ndarray
    at_word: np.ndarray
    at_next: np.ndarray
    word_at: np.ndarray
    next_at: np.ndarray


def _occluded_features(cell: str, pooling: str, directions: list[_Variants], recurrent: np.ndarray,
                       recurrent_bias: np.ndarray | None) -> list[np.ndarray]:
    """Every direction of a one-layer model over V variants of one review, each read only where it differs.

    Before its first differing step a variant's states are the review's own, so it starts there from the
    review's state. Each direction holds its variants in the order they start, so the ones running at step t
    are its first rows; the directions ride along as extra members (recurrent is (D*M, U, G)), one NumPy
    call per step for both. A direction with fewer running rows computes a spare one, which is reset before
    use. Returns each direction's pooled features (M, V, U), as `Engine.forward_members` pools.
    """
    members, steps, _ = directions[0].base_in.shape
    variants, units = len(directions[0].word_at), recurrent.shape[-2]
    base_in = np.concatenate([d.base_in for d in directions])  # (D*M, L, G)
    base_h = np.zeros((len(base_in), steps, units), np.float32)
    base_c = np.zeros_like(base_h)
    h = c = np.zeros((len(base_in), 1, units), np.float32)
    for t in range(steps):  # the review itself
        h, c, _ = _step(cell, base_in[:, t : t + 1], h, c, recurrent, recurrent_bias)
        base_h[:, t], base_c[:, t] = h[:, 0], c[:, 0]
    before = None  # per step, the review's pool over the steps read up to it
    if pooling != "last":
        before = (np.maximum.accumulate if pooling == "max" else np.cumsum)(base_h, axis=1)
    starts, rows_of, injected = [], [], []  # per direction: sorted starts, variant -> row, (step, row, input)
    for d in directions:
        start = np.where(d.next_at >= 0, np.minimum(d.word_at, d.next_at), d.word_at)
        order = np.argsort(start, kind="stable")  # row r holds variant order[r]
        row = np.empty(variants, np.int64)
        row[order] = np.arange(variants)
        starts.append(start[order])
        rows_of.append(row)
        at = {}
        for v in range(variants):
            at.setdefault(int(d.word_at[v]), []).append((row[v], d.at_word[:, v]))
            if d.next_at[v] >= 0:
                at.setdefault(int(d.next_at[v]), []).append((row[v], d.at_next[:, v]))
        injected.append(at)
    h_all = np.zeros((len(base_in), variants, units), np.float32)
    c_all = np.zeros_like(h_all)
    pool = np.full_like(h_all, -np.inf if pooling == "max" else 0.0)
    running = [0] * len(directions)
    for t in range(steps):
        for k in range(len(directions)):  # rows starting now take the review's state (at t = 0: untouched)
            count = int(np.searchsorted(starts[k], t, side="right"))
            fresh, rows = slice(running[k], count), slice(k * members, (k + 1) * members)
            running[k] = count
            if fresh.start < fresh.stop and t > 0:
                h_all[rows, fresh], c_all[rows, fresh] = base_h[rows, t - 1 : t], base_c[rows, t - 1 : t]
                if before is not None:
                    pool[rows, fresh] = before[rows, t - 1 : t]
        width = max(running)
        if width == 0:
            continue
        xp = np.repeat(base_in[:, t : t + 1], width, axis=1)
        for k in range(len(directions)):
            for row, value in injected[k].get(t, ()):
                xp[k * members : (k + 1) * members, row] = value
        new_h, new_c, _ = _step(cell, xp, h_all[:, :width], c_all[:, :width], recurrent, recurrent_bias)
        h_all[:, :width], c_all[:, :width] = new_h, new_c
        if pooling == "max":
            np.maximum(pool[:, :width], new_h, out=pool[:, :width])
        elif pooling == "mean":
            pool[:, :width] += new_h
    features = h_all if pooling == "last" else pool / np.float32(steps) if pooling == "mean" else pool
    return [features[k * members : (k + 1) * members, rows_of[k]] for k in range(len(directions))]


@dataclass(frozen=True)
class Reading:
    """One review as the model read it: real tokens only, in reading order."""

    tokens: list[Token]
    probability: float
    # layers[l][direction][name] -> (n_tokens, units); names: h, c, and the gates
    layers: list[dict[str, dict[str, np.ndarray]]]
    as_it_reads: np.ndarray  # (n_tokens,) probability if the review ended at each token
    features: np.ndarray  # the vector the output head sees (the first member's, in an ensemble)
    members: np.ndarray  # (M,) each member's probability; `probability` is their mean


class Engine:
    """Predictions and insides of one saved model (one network, or an ensemble of them).

    Every weight is held with a leading member axis. Predictions are the members' mean; the
    insides (hidden states, gates, head features) are the first member's.
    """

    def __init__(self, config: Config, vocab: Vocabulary, weights: dict[str, np.ndarray], temperature: float = 1.0):
        self.config, self.vocab = config, vocab
        self.temperature = temperature  # fitted on validation after training (calibration.py); 1 = as trained
        stacked = config.members > 1  # an ensemble's arrays already have the member axis
        self.w = {k: np.asarray(v, dtype=np.float32) if stacked else np.asarray(v, dtype=np.float32)[None]
                  for k, v in dequantize_tables(weights, expand=False).items()}
        self.directions = ("forward", "backward") if config.bidirectional else ("forward",)
        self.bigram_hashes = bigram_hashes(config.members, config.members_apart)
        expected = config.units * {"simple_rnn": 1, "lstm": 4, "gru": 3}[config.cell]
        kernel = self.w[rnn_key(1, "forward", "kernel")]
        if kernel.ndim != 3 or kernel.shape[0] != config.members or kernel.shape[2] != expected:
            raise ValueError("weights do not match the run's config")

    @classmethod
    def from_run(cls, run, calibrated: bool = True) -> Engine:
        """The run's engine; `calibrated=False` leaves out its temperature: the network exactly as trained."""
        return cls(run.config, run.vocab, run.weights, temperature_of(run.meta) if calibrated else 1.0)

    def encode(self, texts: list[str]) -> np.ndarray:
        c = self.config
        return encode(texts, self.vocab, c.maxlen, c.padding, c.truncating)

    def forward(self, token_ids: np.ndarray, trace: bool = False):
        """Probabilities (B,), head features (B, F), and per-layer traces when asked.

        In an ensemble the probability is the members' mean; features and traces are the first member's.
        The probability is calibrated by the run's temperature (the members' own are not).
        """
        probs, features, traces = self.forward_members(token_ids, trace)
        probs = apply_temperature(probs.mean(axis=0), self.temperature)
        first = [{d: {n: v[0] for n, v in traced[d].items()} for d in traced} for traced in traces]
        return (probs, features[0], first) if trace else (probs, features[0])

    def forward_members(self, token_ids: np.ndarray, trace: bool = False):
        """Every member's probabilities (M, B), head features (M, B, F) and traces (M, B, T, U)."""
        c = self.config
        token_ids = np.asarray(token_ids)
        mask = token_ids != 0 if c.mask else np.ones(token_ids.shape, dtype=bool)
        if c.mask and not trace and mask.any() and not mask.all():
            # Steps that are padding in every row change nothing under a mask: skip them.
            # (Pre/post padding keeps the remaining steps contiguous, so bigrams are unchanged.)
            active = mask.any(axis=0)
            token_ids, mask = token_ids[:, active], mask[:, active]
        x, where = self._distinct_inputs(token_ids)
        traces, finals = [], []
        for layer in range(1, c.layers + 1):
            outs, finals, traced = [], [], {}
            for direction in self.directions:
                kernel, recurrent, bias = (self.w[rnn_key(layer, direction, part)] for part in RNN_PARTS)
                out, final, tr = _run_direction(c.cell, x, mask, kernel, recurrent, bias,
                                                reverse=direction == "backward", trace=trace,
                                                where=where if layer == 1 else None)
                outs.append(out)
                finals.append(final)
                traced[direction] = tr
            x = np.concatenate(outs, axis=-1)
            traces.append(traced)
        if c.pooling == "last":
            features = np.concatenate(finals, axis=-1)
        elif c.pooling == "max":
            features = (x if mask.all() else np.where(mask[None, ..., None], x, -1e9)).max(axis=2)
        else:
            weights = mask[None, ..., None].astype(np.float32)
            features = (x * weights).sum(axis=2) / np.maximum(weights.sum(axis=2), 1.0)
        return self._heads(features), features, traces

    def _distinct_inputs(self, token_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first layer's distinct input vectors (M, N, E) and which one each step reads (B, T).

        A step's input is its word's embedding plus, with bigrams, its bigram's: one per (previous word, word)
        pair, from which each member hashes its own bucket (weights.bigram_hashes).
        """
        ids = token_ids.astype(np.int64)  # the model's hash needs int64 (the ids may come as int32)
        buckets = self.config.bigram_buckets
        if not buckets:
            distinct, where = np.unique(ids, return_inverse=True)
            return self._embed(EMBEDDING, distinct), where.reshape(ids.shape)
        words = max(self.config.vocab_size, int(ids.max(initial=0)) + 1)
        distinct, where = np.unique(np.pad(ids[:, :-1], [[0, 0], [1, 0]]) * words + ids, return_inverse=True)
        previous, word = np.divmod(distinct, words)
        pairs = np.stack([bigram_bucket(previous, word, buckets, h) for h in self.bigram_hashes])  # (M, N)
        return self._embed(EMBEDDING, word) + self._embed(BIGRAMS, pairs, per_member=True), where.reshape(ids.shape)

    def _embed(self, table: str, ids: np.ndarray, per_member: bool = False) -> np.ndarray:
        """(M, *ids.shape, D) rows of an embedding table; a cut table is held as rows times a basis.
        With `per_member`, ids is (M, ...): member m reads rows ids[m] of its own table."""
        table_rows = self.w[table]
        if per_member:
            rows = table_rows[np.arange(len(table_rows)).reshape(-1, *[1] * (np.ndim(ids) - 1)), ids]
        else:
            rows = table_rows[:, ids]
        basis = self.w.get(table + BASIS)
        if basis is None:
            return rows
        dims = np.ndim(ids) - (1 if per_member else 0)
        return np.matmul(rows, basis.reshape(basis.shape[0], *[1] * (dims - 1), *basis.shape[1:]))

    def _heads(self, features: np.ndarray) -> np.ndarray:
        """(M, B, F) -> (M, B): each member's head on its own features."""
        return _sigmoid(features @ self.w[HEAD_KERNEL] + self.w[HEAD_BIAS][:, None])[..., 0]

    def head(self, features: np.ndarray) -> np.ndarray:
        """The first member's head on features (..., F)."""
        return _sigmoid(features @ self.w[HEAD_KERNEL][0] + self.w[HEAD_BIAS][0])[..., 0]

    def predict(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """Probability positive per text; NaN for a text with no word the model knows (see NoWordsError)."""
        return self.predict_ids(self.encode(list(texts)), batch_size)

    @property
    def batch_size(self) -> int:
        """Reviews per forward pass when scoring many: fewer, the more members and steps each one has."""
        return max(16, BATCH_STEPS // (self.config.members * self.config.maxlen))

    def predict_ids(self, ids: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        if len(ids) == 0:
            return np.zeros(0, dtype=np.float32)
        batch_size = batch_size or self.batch_size
        probs = np.concatenate([self.forward(ids[i : i + batch_size])[0] for i in range(0, len(ids), batch_size)])
        return np.where(known_words(ids) > 0, probs, np.float32(np.nan))

    def probability(self, text: str) -> float:
        """One text's probability positive, as `predict` gives it. Raises NoWordsError."""
        self.tokens(text, words_required=True)
        return float(self.predict([text])[0])

    def tokens(self, text: str, words_required: bool = False) -> list[Token]:
        """The tokens the model reads of `text`, in reading order (at most maxlen, cut as in training).
        With `words_required`, a text with no word the model knows raises NoWordsError."""
        c = self.config
        tokens = read_as_model(text, self.vocab, c.maxlen, c.truncating)
        return require_words(text, tokens) if words_required else tokens

    def positions(self, n_tokens: int) -> np.ndarray:
        """Where a review's n real tokens sit in its padded row."""
        maxlen = self.config.maxlen
        return np.arange(maxlen - n_tokens, maxlen) if self.config.padding == "pre" else np.arange(n_tokens)

    def read(self, text: str) -> Reading:
        """Everything the model computes while reading `text`. Raises NoWordsError."""
        tokens = self.tokens(text, words_required=True)
        ids = self.encode([text])
        members, features, traces = self.forward_members(ids, trace=True)
        where = self.positions(len(tokens))
        layers = [{d: {n: v[0, 0, where] for n, v in traced[d].items()} for d in traced} for traced in traces]
        probability = float(apply_temperature(members[:, 0].mean(), self.temperature))
        return Reading(tokens, probability, layers, self._as_it_reads(ids, where, layers),
                       features[0, 0], members[:, 0])

    def _as_it_reads(self, ids: np.ndarray, where: np.ndarray, layers) -> np.ndarray:
        """The probability the model gives if the review stopped after each token.

        A one-way model has read exactly tokens 1..t at step t, so the head is applied to
        the state there (pooled over steps 1..t for max/mean pooling). A bidirectional
        model reads the end first, an unmasked model pools over its padding too, and an
        ensemble's other members are not traced, so there each prefix is re-read as a review of its own.
        """
        c = self.config
        if c.bidirectional or c.members > 1 or (not c.mask and c.pooling != "last"):
            real = ids[0, where]
            prefixes = [real[: t + 1].tolist() for t in range(len(real))]
            return self.forward(pad(prefixes, c.maxlen, c.padding, c.truncating))[0]
        top = layers[-1]["forward"]["h"]  # (n, U), at the real tokens
        if c.pooling == "max":
            top = np.maximum.accumulate(top, axis=0)
        elif c.pooling == "mean":
            top = np.cumsum(top, axis=0) / np.arange(1, len(top) + 1)[:, None]
        return apply_temperature(self.head(top), self.temperature)

    def occlusion(self, text: str, mode: str = "unk") -> tuple[list[Token], np.ndarray]:
        """p(review) - p(review without token t), per token; positive means the word pushed towards positive.

        mode 'unk' replaces the word by the out-of-vocabulary id, 'remove' deletes it. Raises NoWordsError.
        """
        tokens, _, deltas = self.occlusion_scored(text, mode)
        return tokens, deltas

    def occlusion_scored(self, text: str, mode: str = "unk") -> tuple[list[Token], float, np.ndarray]:
        """`occlusion`, with the review's own probability, which it computes in the same batch."""
        c = self.config
        tokens = self.tokens(text, words_required=True)
        ids = [t.id for t in tokens]
        if mode == "unk" and c.layers == 1:
            p = float(self.forward(pad([ids], c.maxlen, c.padding, c.truncating))[0][0])
            return tokens, p, p - self._occluded_one_layer(ids)
        variants = [ids[:i] + ([OOV] if mode == "unk" else []) + ids[i + 1 :] for i in range(len(ids))]
        batch = pad([ids, *variants], c.maxlen, c.padding, c.truncating)
        probs = np.concatenate([self.forward(batch[i : i + 256])[0] for i in range(0, len(batch), 256)])
        return tokens, float(probs[0]), probs[0] - probs[1:]

    def _occluded_one_layer(self, ids: list[int]) -> np.ndarray:
        """p(review with token t read as unknown), for every t, of a one-layer model (`occlusion`'s variants).

        Reading every variant whole costs a review's steps per word. A variant differs from the review only at
        its word (and, with bigrams, at the next step), so reading forwards its states before the word are the
        review's own, and reading backwards those after it: each direction starts a variant there from the
        review's state, about half the steps. The same numbers as the whole reading (tests/test_lab.py).
        """
        c = self.config
        if c.mask:  # the steps of a masked model's batch of same-length variants: the words alone
            row, words = np.asarray(ids, np.int64), np.arange(len(ids))
        else:
            row, words = pad([ids], c.maxlen, c.padding, c.truncating)[0].astype(np.int64), self.positions(len(ids))
        steps = len(row)
        nexts = np.where(words + 1 < steps, words + 1, -1) if c.bigram_buckets else np.full(len(ids), -1)
        previous = np.where(words > 0, row[np.maximum(words - 1, 0)], 0)
        windows = np.stack([previous, np.full(len(ids), OOV), row[np.minimum(words + 1, steps - 1)]], axis=1)
        x_row, where_row = self._distinct_inputs(row[None])
        x_win, where_win = self._distinct_inputs(windows)  # (previous, unknown, next): the variant's changed inputs
        plans, recurrents, recurrent_biases = [], [], []
        for direction in self.directions:
            kernel, recurrent, bias = (self.w[rnn_key(1, direction, part)] for part in RNN_PARTS)
            input_bias = (bias[:, 0] if c.cell == "gru" else bias)[:, None]
            windowed = x_win @ kernel + input_bias
            base_in = (x_row @ kernel + input_bias)[:, where_row[0]]
            at_word, at_next = windowed[:, where_win[:, 1]], windowed[:, where_win[:, 2]]
            if direction == "forward":
                plans.append(_Variants(base_in, at_word, at_next, words, nexts))
            else:  # read backwards: step t of the reading is step L-1-t of the review
                plans.append(_Variants(base_in[:, ::-1], at_word, at_next, steps - 1 - words,
                                       np.where(nexts >= 0, steps - 1 - nexts, -1)))
            recurrents.append(recurrent)
            recurrent_biases.append(bias[:, 1][:, None] if c.cell == "gru" else None)
        features = _occluded_features(c.cell, c.pooling, plans, np.concatenate(recurrents),
                                      np.concatenate(recurrent_biases) if c.cell == "gru" else None)
        return apply_temperature(self._heads(np.concatenate(features, axis=-1)).mean(axis=0), self.temperature)
