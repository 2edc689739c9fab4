"""keras.layers.SimpleRNN with a leaner loop on the JAX backend: same layer, weights and results.

At every step Keras' loop runs the whole cell, the input projection x·K included, and for a
mask it picks states with `where`s, which on these CPUs cost as much as the step's matmul. Here
the input projections of all steps are one large matmul before the loop, the mask is a 0/1
factor, and the backward pass is written out so that its loop only carries the gradient through
h·R; ∂R is one matmul after it. The notebook preset's epoch is ~20% shorter
(benchmarks/lean_rnn.py); tests/test_lean_rnn.py checks outputs and gradients against Keras'
loop. Any other case (backends, recurrent dropout, unrolling) runs Keras' loop.
"""

from __future__ import annotations

import functools

import keras
from keras import activations, layers, ops


@functools.cache
def masked_tanh_scan():
    """f(xw, keep, R, h0) -> every state h_t, time-major (T, B, U), where
    h_t = keep_t·tanh(xw_t + h_{t-1}·R) + (1 − keep_t)·h_{t-1} and keep is (T, B, 1) of 0/1.
    Built on first use, so that other backends never import JAX."""
    import jax
    import jax.numpy as jnp

    def forward(xw, keep, recurrent, h0):
        def step(h, inputs):
            xw_t, keep_t = inputs
            candidate = jnp.tanh(xw_t + h @ recurrent)
            h = keep_t * candidate + (1 - keep_t) * h
            return h, (h, candidate)

        _, (states, candidates) = jax.lax.scan(step, h0, (xw, keep))
        return states, (states, candidates, keep, recurrent, h0)

    def backward(saved, d_states):
        states, candidates, keep, recurrent, h0 = saved

        def step(d_h, inputs):
            d_out, candidate, keep_t = inputs
            d_h = d_h + d_out
            d_pre = d_h * keep_t * (1 - candidate * candidate)  # through tanh, where the step was kept
            return d_h * (1 - keep_t) + d_pre @ recurrent.T, d_pre

        d_h0, d_pre = jax.lax.scan(step, jnp.zeros_like(h0), (d_states, candidates, keep), reverse=True)
        previous = jnp.concatenate([h0[None], states[:-1]])
        return d_pre, jnp.zeros_like(keep), jnp.einsum("tbi,tbj->ij", previous, d_pre), d_h0

    # Outside of differentiation, JAX drops the candidates that only the backward pass reads.
    scan = jax.custom_vjp(lambda xw, keep, recurrent, h0: forward(xw, keep, recurrent, h0)[0])
    scan.defvjp(forward, backward)
    return scan


@keras.saving.register_keras_serializable(package="sentiment_core")
class LeanSimpleRNN(layers.SimpleRNN):
    """A SimpleRNN; on JAX its loop is `masked_tanh_scan`."""

    def uses_lean_loop(self) -> bool:
        cell = self.cell
        return (keras.backend.backend() == "jax" and not self.unroll
                and cell.recurrent_dropout == 0 and cell.use_bias and cell.activation is activations.tanh)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self.uses_lean_loop():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        inputs = sequences
        dropout_mask = cell.get_dropout_mask(sequences[:, 0, :])  # the one Keras drew for this batch
        if training and dropout_mask is not None:
            inputs = inputs * ops.expand_dims(dropout_mask, 1)
        xw = ops.matmul(inputs, cell.kernel) + cell.bias  # (B, T, U): every step's input at once
        keep = ops.ones(ops.shape(xw)[:2], xw.dtype) if mask is None else ops.cast(mask, xw.dtype)
        if self.go_backwards:  # read from the last word; outputs stay in reading order, as Keras returns them
            xw, keep = ops.flip(xw, axis=1), ops.flip(keep, axis=1)
        states = masked_tanh_scan()(ops.transpose(xw, (1, 0, 2)), ops.expand_dims(ops.transpose(keep), -1),
                                    ops.convert_to_tensor(cell.recurrent_kernel), initial_state[0])
        outputs = ops.transpose(states, (1, 0, 2))
        if self.zero_output_for_mask and mask is not None:  # as Keras does inside Bidirectional
            outputs = outputs * ops.expand_dims(keep, -1)
        return outputs[:, -1], outputs, [states[-1]]
