"""The stored-weight format: what a run's `weights.npz` holds, under which names, in which numbers.

That file is a contract between the trainer that writes it (models.py, in Keras), the NumPy engine
that reads it (inference.py), and every run already saved on disk (artifacts/shipped/ among them).
A name, a rounding or a hash changed on one side only would not fail: it would load into wrong
predictions. So both sides take the format from here, and nothing here may change for saved runs.

Only NumPy is imported: the engine imports this module and must stay free of Keras, JAX and TensorFlow.

The arrays, each with a leading member axis in an ensemble (members > 1):
  embedding                        (V, D) word table
  embedding/bigrams                (buckets, D) hashed word-pair table, when bigram_buckets > 0
  rnn_{layer}/{direction}/{part}   Keras' cell weights; layers from 1, direction forward|backward
  head/kernel, head/bias           the sigmoid head
Embedding tables may be stored int8 with a float16 `/scale` per row, and cut to rows times a `/basis`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

EMBEDDING = "embedding"
BIGRAMS = "embedding/bigrams"
HEAD_KERNEL = "head/kernel"
HEAD_BIAS = "head/bias"
RNN_PARTS = ("kernel", "recurrent_kernel", "bias")
SCALE = "/scale"  # suffixes added to an embedding table's name by quantize_tables
BASIS = "/basis"

BIGRAM_HASH = 7919  # a prime; vocab_size * BIGRAM_HASH + vocab_size stays below 2**31 (int32 in Keras)
# Member m of an ensemble trained apart hashes word pairs with the m-th of these primes (the first is BIGRAM_HASH).
APART_BIGRAM_HASHES = (7919, 7927, 7933, 7937, 7949, 7951, 7963, 7993)


def rnn_key(layer: int, direction: str, part: str) -> str:
    """The name of one recurrent weight; `layer` counts from 1, as the Keras layers are named."""
    return f"rnn_{layer}/{direction}/{part}"


def bigram_hashes(members: int, apart: bool) -> list[int]:
    """The multiplier each member hashes word pairs with. Side by side, all share BIGRAM_HASH, as every run
    saved before ensembles trained apart does. Trained apart, each member has its own prime, so the pairs that
    share a bucket differ from member to member and so do the mistakes those collisions cause."""
    return [APART_BIGRAM_HASHES[m] if apart else BIGRAM_HASH for m in range(members)]


def bigram_bucket(previous: Any, token: Any, buckets: int, multiplier: int = BIGRAM_HASH) -> Any:
    return (previous * multiplier + token) % buckets


def bigram_ids(token_ids: Any, buckets: int, xp: ModuleType = np, multiplier: int = BIGRAM_HASH) -> Any:
    """The bucket of each (previous token, token) pair; the first token's previous token is padding.

    One formula for both readers: `xp` is numpy in the engine (pass int64 ids) or keras.ops in the
    model (int32 ids, which the multipliers keep from overflowing).
    """
    return bigram_bucket(xp.pad(token_ids[:, :-1], [[0, 0], [1, 0]]), token_ids, buckets, multiplier)


def quantize_tables(weights: dict[str, np.ndarray], rank: int = 0) -> dict[str, np.ndarray]:
    """Embedding tables as int8 steps of a float16 scale per row (about a quarter of their float32 bytes).

    Embeddings are most of a run's bytes; rounding each row to 255 levels moves predictions by ~1e-3.
    With 0 < rank < the embedding size, each table is first cut to its top `rank` singular directions:
    int8 rows (V, rank) times a float32 basis (rank, D). A classifier reads words along few directions:
    the shipped `best` keeps its validation accuracy and loss at rank 8 of 64 (README).
    """
    out = dict(weights)
    for name in [n for n in weights if n.startswith(EMBEDDING)]:
        table = np.asarray(weights[name], dtype=np.float32)
        if 0 < rank < table.shape[-1]:
            u, s, vt = np.linalg.svd(table.astype(np.float64), full_matrices=False)  # (..., V, D): per member
            table = (u[..., :rank] * s[..., None, :rank]).astype(np.float32)
            out[name + BASIS] = vt[..., :rank, :].astype(np.float32)
        scale = (np.abs(table).max(axis=-1, keepdims=True) / 127).astype(np.float16)
        scale = np.where(scale > 0, scale, np.float16(1))
        out[name] = np.clip(np.rint(table / scale), -127, 127).astype(np.int8)
        out[name + SCALE] = scale
    return out


def dequantize_tables(weights: dict[str, np.ndarray], expand: bool = True) -> dict[str, np.ndarray]:
    """The inverse of `quantize_tables`; runs saved with float16 or float32 tables pass through.
    `expand=False` leaves cut tables as rows and basis (the engine multiplies only the rows it reads)."""
    out = dict(weights)
    for scale_name in [n for n in weights if n.endswith(SCALE)]:
        name = scale_name.removesuffix(SCALE)
        out[name] = np.asarray(weights[name], dtype=np.float32) * out.pop(scale_name).astype(np.float32)
    for basis_name in [n for n in weights if n.endswith(BASIS) and expand]:
        name = basis_name.removesuffix(BASIS)
        out[name] = out[name] @ out.pop(basis_name).astype(np.float32)
    return out
