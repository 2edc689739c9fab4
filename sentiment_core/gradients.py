"""Gradients through time, on whichever Keras backend is loaded (JAX, TensorFlow or PyTorch).

Two measurements need gradients: how much the loss still depends on the hidden
state at an early step (‖∂L/∂h_t‖, the vanishing-gradient picture) and which
words a prediction leans on (integrated gradients). Both unroll or re-run the
trained layers with Keras ops and differentiate with the backend's own autodiff.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import layers, ops

from .models import MaskedMaxPooling1D, first_member, recurrent_layers


def _grad(fn: Callable, x: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """d fn(x) / dx for a scalar-valued fn, with the active backend's autodiff.

    `x` may be a list of arrays (the gradients come back stacked): a list lets a step loop take its
    own array without slicing one, and on JAX each slice's gradient is a `pad` compiled once per step.
    """
    parts = x if isinstance(x, list) else [x]

    def call(args):
        return fn(args if isinstance(x, list) else args[0])

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grads = jax.grad(call)([ops.convert_to_tensor(p) for p in parts])
        grads = [np.asarray(g) for g in grads]
    elif backend == "tensorflow":
        import tensorflow as tf

        args = [tf.convert_to_tensor(p) for p in parts]
        with tf.GradientTape() as tape:
            tape.watch(args)
            y = call(args)
        grads = [g.numpy() for g in tape.gradient(y, args)]
    elif backend == "torch":
        import torch

        args = [torch.tensor(p, requires_grad=True) for p in parts]
        call(args).backward()
        grads = [a.grad.detach().cpu().numpy() for a in args]
    else:
        raise NotImplementedError(f"gradients on the {backend} backend")
    return np.stack(grads) if isinstance(x, list) else grads[0]


def _compiled(fn: Callable, variables: list) -> Callable:
    """`fn(*args)` as one compiled program on JAX, reading `variables` (every one it reads) as arguments.

    Run op by op, each step of an unrolled loop dispatches dozens of small ops, and JAX compiles and
    keeps an executable for each kind (~1.5 MB apiece, ~100 MB for one gradient probe). Compiled, a
    step is a few executables; with the weights as arguments, one compile serves every epoch.
    """
    if keras.backend.backend() != "jax":
        return fn
    import jax

    def pure(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            return fn(*args)

    program = jax.jit(pure)
    return lambda *args: program([v.value for v in variables], *args)


def _apply(stack: list[layers.Layer], x, mask):
    """Run the layers after a given point, passing the padding mask where Keras expects it."""
    for layer in stack:
        if isinstance(layer, (layers.RNN, layers.Bidirectional, MaskedMaxPooling1D, layers.GlobalAveragePooling1D)):
            pooling = isinstance(layer, MaskedMaxPooling1D)
            x = layer(x, mask=mask) if pooling else layer(x, mask=mask, training=False)
            returns_sequences = getattr(layer, "return_sequences", False)
            mask = mask if returns_sequences else None
        else:
            x = layer(x)
    return x


def _embed(model: keras.Model, token_ids: np.ndarray):
    embedding = model.get_layer("embedding")
    mask = ops.convert_to_tensor(token_ids != 0) if embedding.mask_zero else None
    return embedding(ops.convert_to_tensor(token_ids)), mask


def _after(model: keras.Model, layer: layers.Layer) -> list[layers.Layer]:
    stack = [lyr for lyr in model.layers if not isinstance(lyr, layers.InputLayer)]
    return stack[stack.index(layer) + 1:]


def _probe_programs(model: keras.Model, first: layers.Layer, cell: layers.Layer) -> tuple[Callable, Callable]:
    """One step of `cell` (with a perturbation added to h_t, the state kept where the mask says so),
    and the loss of the layers after `first` on its outputs, each compiled as one program (_compiled)."""

    def step(x_t, states, perturbation, keep):
        _, new_states = cell(x_t, states, training=False)
        new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
        new_states[0] = new_states[0] + perturbation
        if keep is not None:
            new_states = [ops.where(keep, new, old) for new, old in zip(new_states, states, strict=False)]
        return new_states

    def head_loss(outputs, backward, mask, y):
        x = ops.stack(outputs, axis=1) if first.return_sequences else outputs[-1]
        if backward is not None:
            x = ops.concatenate([x, backward], axis=-1)
        probability = _apply(_after(model, first), x, mask)
        return ops.mean(keras.losses.binary_crossentropy(y, probability))

    return _compiled(step, list(model.variables)), _compiled(head_loss, list(model.variables))


def hidden_state_grad_norms(model: keras.Model, token_ids: np.ndarray, labels: np.ndarray,
                            programs: dict | None = None) -> np.ndarray:
    """Mean over the batch of ‖∂L/∂h_t‖ for the first recurrent layer's forward state, t = 1..T.

    The layer is unrolled step by step with its own cell, and a zero perturbation
    is added to each h_t: the gradient with respect to that perturbation is ∂L/∂h_t.
    Padded steps carry the state unchanged, as Keras does under a mask. In an ensemble, this is
    the first member's own loss. Pass the same `programs` dict for every measurement of one model
    (as training does each epoch) and the unrolled steps are compiled once, not at each call.
    """
    model = first_member(model)
    first = recurrent_layers(model)[0]
    forward = first.forward_layer if isinstance(first, layers.Bidirectional) else first
    cell, units = forward.cell, forward.cell.units
    embedded, mask = _embed(model, token_ids)
    steps = token_ids.shape[1]
    y = ops.convert_to_tensor(labels.reshape(-1, 1).astype("float32"))
    backward = None
    if isinstance(first, layers.Bidirectional):
        backward = first.backward_layer(embedded, mask=mask, training=False)
        if first.return_sequences:
            backward = ops.flip(backward, axis=1)

    programs = {} if programs is None else programs
    if cell not in programs:
        programs[cell] = _probe_programs(model, first, cell)
    step, head_loss = programs[cell]

    def loss_of(perturbations):  # one (B, U) array per step
        states = [ops.zeros((token_ids.shape[0], units))] * (2 if isinstance(cell, layers.LSTMCell) else 1)
        outputs = []
        for t in range(steps):
            keep = None if mask is None else ops.expand_dims(mask[:, t], -1)
            states = step(embedded[:, t], states, perturbations[t], keep)
            outputs.append(states[0])
        return head_loss(outputs, backward, mask if first.return_sequences else None, y)

    # A measurement leaves the model as it found it, so measuring during training changes nothing:
    # the cells draw dropout masks from the model's seed generators, whose states are put back, and
    # a cell called directly caches those masks at this batch's shape (the RNN layer only resets
    # them at the end of its own call), so they are cleared.
    seeds = [(v, np.asarray(v)) for v in model.non_trainable_variables if "seed_generator" in v.path]
    try:
        grads = _grad(loss_of, [np.zeros((token_ids.shape[0], units), dtype="float32") for _ in range(steps)])
    finally:
        for variable, state in seeds:
            variable.assign(state)
        for reset in ("reset_dropout_mask", "reset_recurrent_dropout_mask"):
            getattr(cell, reset, lambda: None)()
    return np.linalg.norm(grads, axis=-1).mean(axis=1)


def integrated_gradients(model: keras.Model, token_ids: np.ndarray, steps: int = 32) -> np.ndarray:
    """Signed attribution per position of one padded review (shape (T,)), baseline: all-zero embeddings.

    Sums to about p(review) - p(baseline) (the completeness property of Sundararajan et al. 2017).
    In an ensemble, these are the first member's attributions.
    """
    model = first_member(model)
    embedded, mask = _embed(model, token_ids.reshape(1, -1))
    embedded = np.asarray(embedded)[0]
    alphas = (np.arange(1, steps + 1, dtype="float32") / steps).reshape(-1, 1, 1)
    path = alphas * embedded[None]
    batch_mask = None if mask is None else ops.repeat(mask, steps, axis=0)
    stack = _after(model, model.get_layer("embedding"))

    def total_probability(x):
        return ops.sum(_apply(stack, x, batch_mask))

    grads = _grad(total_probability, path.astype("float32"))
    return (grads.mean(axis=0) * embedded).sum(axis=-1)
