"""What a model forgets: how strongly its final score depends on each word it read ("connectivity").

For a review, the connectivity of the word at step t is ‖∂s/∂x_t‖, the size of the gradient of the
final score s with respect to the vector x_t the recurrent layer reads there (the word's embedding, plus
its hashed bigram's when the run has them). The score is the logit of the model's probability,
s = log(p / (1 - p)): for one network exactly the head's value before its sigmoid; for an ensemble the
logit of the members' mean probability, and x_t is then every member's vector for the word. The logit
rather than p, so that a confident review (p near 0 or 1, where the sigmoid is flat) still shows which
words it leans on. A SimpleRNN's connectivity fades within a few dozen words; gates let an LSTM or GRU
keep early words (Karpathy et al. 2015 and Linzen et al. 2016 looked at memory this way).

The gradient is a hand-written backward pass through time (BPTT) over the NumPy engine's own forward
pass, so the app computes it without Keras, TensorFlow or JAX; tests/test_connectivity.py holds it to
Keras' autodiff within 1e-5 for every cell and model shape.
"""

from __future__ import annotations

import numpy as np

from .inference import Engine, _run_direction, _sigmoid
from .text import Token, pad
from .weights import HEAD_BIAS, HEAD_KERNEL, RNN_PARTS, rnn_key

BATCH = 32  # reviews per pass: bounds the memory of the stored states (best: 4 members × 2 directions)


def score_gradients(engine: Engine, token_ids: np.ndarray) -> np.ndarray:
    """∂s/∂x_t for padded reviews (B, T): shape (M, B, T, D), members first; s = logit of the probability.

    Steps that are padding in every row of a masked model change nothing and get a zero gradient.
    """
    token_ids = np.asarray(token_ids)
    return np.concatenate([_gradients(engine, token_ids[i : i + BATCH]) for i in range(0, len(token_ids), BATCH)],
                          axis=1) if len(token_ids) else np.zeros((engine.config.members, 0, token_ids.shape[1],
                                                                   engine.config.embedding_dim), np.float32)


def connectivity_of_ids(engine: Engine, token_ids: np.ndarray) -> np.ndarray:
    """‖∂s/∂x_t‖ per review and step (B, T), over every member's vector in an ensemble."""
    grads = score_gradients(engine, token_ids)
    return np.sqrt(np.square(grads, dtype=np.float64).sum(axis=(0, 3))).astype(np.float32)


def connectivity(engine: Engine, text: str) -> tuple[list[Token], np.ndarray]:
    """The tokens the model reads of `text` and each one's connectivity, in reading order. Raises NoWordsError."""
    tokens = engine.tokens(text, words_required=True)
    values = connectivity_of_ids(engine, engine.encode([text]))[0]
    return tokens, values[engine.positions(len(tokens))]


def by_distance(engine: Engine, token_lists: list[list[int]], distances: int) -> np.ndarray:
    """Mean connectivity at distance d = 1..`distances` from the end of each review (d = 1: the last word).

    Every review must be at least `distances` words long (as the model reads it), so that every point
    is the mean of the same reviews.
    """
    c = engine.config
    if any(len(ids) < distances for ids in token_lists):
        raise ValueError(f"every review must be at least {distances} words long")
    values = connectivity_of_ids(engine, pad(token_lists, c.maxlen, c.padding, c.truncating))
    rows = []
    for row, ids in zip(values, token_lists, strict=True):
        real = row[engine.positions(min(len(ids), c.maxlen))]
        rows.append(real[::-1][:distances])
    return np.mean(rows, axis=0)


def forgetting_curve(engine: Engine, texts: list[str], distances: int = 100, count: int = 100
                     ) -> tuple[np.ndarray, int]:
    """`by_distance` over the first `count` of `texts` that are at least `distances` words long as the model
    reads them (at most maxlen: `distances` is cut to it), and how many there were. Raises ValueError if none."""
    distances = min(distances, engine.config.maxlen)
    lists = []
    for text in texts:
        ids = [t.id for t in engine.tokens(text)]
        if len(ids) >= distances:
            lists.append(ids)
            if len(lists) == count:
                break
    if not lists:
        raise ValueError(f"no review is at least {distances} words long")
    return by_distance(engine, lists, distances), len(lists)


def _gradients(engine: Engine, token_ids: np.ndarray) -> np.ndarray:
    c, w = engine.config, engine.w
    steps = token_ids.shape[1]
    mask = token_ids != 0 if c.mask else np.ones(token_ids.shape, dtype=bool)
    active = np.ones(steps, dtype=bool)
    if c.mask and mask.any() and not mask.all():  # as Engine.forward_members: all-padding steps change nothing
        active = mask.any(axis=0)
        token_ids, mask = token_ids[:, active], mask[:, active]
    distinct, where = engine._distinct_inputs(token_ids)
    x = distinct[:, where]  # (M, B, T, D)

    # Forward, keeping each layer's input and each direction's states.
    inputs, states = [], []
    for layer in range(1, c.layers + 1):
        inputs.append(x)
        outs, saved = [], {}
        for direction in engine.directions:
            kernel, recurrent, bias = (w[rnn_key(layer, direction, part)] for part in RNN_PARTS)
            out, _, traced = _run_direction(c.cell, x, mask, kernel, recurrent, bias,
                                            reverse=direction == "backward", trace=c.cell == "lstm")
            saved[direction] = (out, traced.get("c"))
            outs.append(out)
        states.append(saved)
        x = np.concatenate(outs, axis=-1)

    # The head: ∂s/∂features per member.
    features = _pool(c.pooling, x, mask, states[-1], engine.directions)
    d_features = _head_gradient(features, w[HEAD_KERNEL], w[HEAD_BIAS])  # (M, B, F)

    # Back through the pooling, then each layer from the top.
    units = c.units
    d_out = np.zeros_like(x)  # ∂s/∂(top layer's outputs) (M, B, T, F)
    d_final = {d: np.zeros((*x.shape[:2], units), np.float32) for d in engine.directions}
    if c.pooling == "last":
        for k, direction in enumerate(engine.directions):
            d_final[direction] = d_features[..., k * units : (k + 1) * units]
    elif c.pooling == "max":
        masked = np.where(mask[None, ..., None], x, np.float32(-1e9))
        winners = (masked == masked.max(axis=2, keepdims=True)).astype(np.float32)
        d_out = winners / winners.sum(axis=2, keepdims=True) * d_features[:, :, None]  # ties share, as in JAX
    else:
        weights = mask[None, ..., None].astype(np.float32)
        d_out = weights / np.maximum(weights.sum(axis=2, keepdims=True), 1.0) * d_features[:, :, None]
    for layer in range(c.layers, 0, -1):
        d_x = np.zeros_like(inputs[layer - 1])
        for k, direction in enumerate(engine.directions):
            kernel, recurrent, bias = (w[rnn_key(layer, direction, part)] for part in RNN_PARTS)
            out, cells = states[layer - 1][direction]
            d_x += _backward_direction(c.cell, inputs[layer - 1], mask, kernel, recurrent, bias, out, cells,
                                       d_out[..., k * units : (k + 1) * units], d_final[direction],
                                       reverse=direction == "backward")
        d_out = d_x
        d_final = {d: np.zeros_like(v) for d, v in d_final.items()}  # lower layers pass on every output
    full = np.zeros((*d_out.shape[:2], steps, d_out.shape[-1]), np.float32)
    full[:, :, active] = d_out
    return full


def _pool(pooling: str, x: np.ndarray, mask: np.ndarray, top: dict, directions) -> np.ndarray:
    """The features the head reads, as Engine.forward_members pools them."""
    if pooling == "last":
        finals = []
        for direction in directions:
            out = top[direction][0]
            finals.append(out[:, :, 0] if direction == "backward" else out[:, :, -1])
        return np.concatenate(finals, axis=-1)
    if pooling == "max":
        return np.where(mask[None, ..., None], x, np.float32(-1e9)).max(axis=2)
    weights = mask[None, ..., None].astype(np.float32)
    return (x * weights).sum(axis=2) / np.maximum(weights.sum(axis=2), 1.0)


def _head_gradient(features: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """∂s/∂features (M, B, F) for s = logit(mean of the members' sigmoid(features · kernel + bias)).

    ∂s/∂logit_m = p_m (1 - p_m) / (M p (1 - p)); 1 for one network. In float64, from the logits, so
    that 1 - p keeps its digits for a confident review.
    """
    members = kernel.shape[0]
    if members == 1:
        return np.broadcast_to(kernel[:, None, :, 0], (*features.shape[:2], kernel.shape[1])).astype(np.float32)
    logits = (features.astype(np.float64) @ kernel.astype(np.float64) + bias[:, None].astype(np.float64))[..., 0]
    p, q = 1.0 / (1.0 + np.exp(-logits)), 1.0 / (1.0 + np.exp(logits))
    weight = p * q / (members * p.mean(axis=0) * q.mean(axis=0))  # (M, B)
    return (weight[..., None] * kernel[:, None, :, 0]).astype(np.float32)


def _backward_direction(cell: str, x: np.ndarray, mask: np.ndarray, kernel, recurrent, bias, out: np.ndarray,
                        cells: np.ndarray | None, d_out: np.ndarray, d_final: np.ndarray,
                        reverse: bool) -> np.ndarray:
    """∂s/∂x (M, B, T, E) of one direction of one layer, given ∂s/∂outputs (M, B, T, U) and ∂s/∂final h.

    `out` holds the state after each step (carried through masked steps), `cells` an LSTM's cell
    states. The gates and their derivatives are computed for all steps at once from the previous
    states, time-major so that each step's slice is contiguous; then one loop runs backwards through
    time, carrying ∂s/∂h (and ∂s/∂c) through h R and through masked steps.
    """
    units = recurrent.shape[-2]

    def time_major(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(a, 2, 0))  # (M, B, T, ...) -> (T, M, B, ...)

    def before(a: np.ndarray) -> np.ndarray:
        """The value before each step in the direction's reading order (zeros before the first)."""
        shifted = np.zeros_like(a)
        if reverse:
            shifted[:-1] = a[1:]
        else:
            shifted[1:] = a[:-1]
        return shifted

    out = time_major(out)
    previous = before(out)
    input_bias = bias[:, 0] if cell == "gru" else bias
    xp = time_major(x) @ kernel + input_bias[:, None]  # (T, M, B, G)
    hr = previous @ recurrent
    if cell == "simple_rnn":
        slope = 1.0 - np.tanh(xp + hr) ** 2
    elif cell == "lstm":
        z = xp + hr
        i, f, o = (_sigmoid(z[..., k * units : (k + 1) * units]) for k in (0, 1, 3))
        g = np.tanh(z[..., 2 * units : 3 * units])
        previous_c = before(time_major(cells))
        tanh_c = np.tanh(f * previous_c + i * g)
        # ∂c/∂(pre-activations of i, f, g) per unit of ∂c, and ∂h/∂(pre-activation of o) per unit of ∂h
        gate_slopes = np.concatenate([g * i * (1.0 - i), previous_c * f * (1.0 - f), i * (1.0 - g * g)], axis=-1)
        output_slope = tanh_c * o * (1.0 - o)
        through_c = o * (1.0 - tanh_c * tanh_c)
    else:
        m = hr + bias[:, 1][:, None]
        zr = _sigmoid(xp[..., : 2 * units] + m[..., : 2 * units])
        z, r = zr[..., :units], np.ascontiguousarray(zr[..., units:])
        mn = m[..., 2 * units :]
        n = np.tanh(xp[..., 2 * units :] + r * mn)
        n_slope = (1.0 - z) * (1.0 - n * n)  # ∂h/∂(pre-activation of n)
        z_slope = (previous - n) * z * (1.0 - z)  # ∂h/∂(pre-activation of z)
        r_slope = mn * r * (1.0 - r)  # ∂(pre-activation of n)/∂(pre-activation of r)
        z = np.ascontiguousarray(z)

    d_out = time_major(d_out)
    keep = mask.T[:, None, :, None].astype(np.float32)  # (T, 1, B, 1)
    d_xp = np.zeros_like(xp)
    d_h = d_final.astype(np.float32)
    d_c = np.zeros_like(d_h)
    recurrent_t = np.swapaxes(recurrent, -1, -2)  # (M, G, U)
    for t in (range(xp.shape[0]) if reverse else range(xp.shape[0] - 1, -1, -1)):  # the direction's last step first
        d_h = d_h + d_out[t]
        d_new = keep[t] * d_h
        carried = (1.0 - keep[t]) * d_h
        if cell == "simple_rnn":
            d_pre = d_xp[t]
            np.multiply(d_new, slope[t], out=d_pre)
            d_h = carried + d_pre @ recurrent_t
        elif cell == "lstm":
            d_cell = keep[t] * d_c + d_new * through_c[t]
            d_pre = d_xp[t]
            np.multiply(np.tile(d_cell, 3), gate_slopes[t], out=d_pre[..., : 3 * units])
            np.multiply(d_new, output_slope[t], out=d_pre[..., 3 * units :])
            d_c = (1.0 - keep[t]) * d_c + d_cell * f[t]
            d_h = carried + d_pre @ recurrent_t
        else:
            d_pre = d_xp[t]
            d_n = np.multiply(d_new, n_slope[t], out=d_pre[..., 2 * units :])
            np.multiply(d_new, z_slope[t], out=d_pre[..., :units])
            np.multiply(d_n, r_slope[t], out=d_pre[..., units : 2 * units])
            d_m = d_pre.copy()
            d_m[..., 2 * units :] *= r[t]
            d_h = carried + d_new * z[t] + d_m @ recurrent_t
    return np.moveaxis(d_xp @ np.swapaxes(kernel, -1, -2), 0, 2)
