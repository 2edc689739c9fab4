"""Batches of reviews of similar length, each cut to the longest review in it.

Half of IMDB's reviews are shorter than 175 words, so a model padded to 400 steps spends most of
its time reading padding. With the padding masked, those steps change nothing (the state is
carried through them), so cutting them off gives the same result in about half the time.
Lengths are rounded up to a few sizes, because JAX compiles a step once per input shape.
"""

from __future__ import annotations

import math

import keras
import numpy as np

SHAPES = 8  # at most this many sequence lengths, so at most this many compilations
CHUNK_BATCHES = 32  # reviews are sorted by length within chunks of this many shuffled batches


def bucket_lengths(lengths: np.ndarray, maxlen: int) -> np.ndarray:
    """Each length rounded up to one of at most SHAPES sizes (never 0, never past maxlen)."""
    width = max(8, math.ceil(maxlen / SHAPES / 8) * 8)
    return np.minimum(np.maximum(np.ceil(lengths / width), 1).astype(int) * width, maxlen)


class LengthBatches(keras.utils.PyDataset):
    """(ids, labels) batches for Keras `fit`; a new shuffle every epoch when `shuffle` is set.

    Shuffled reviews are cut into chunks, each chunk sorted by length and split into batches,
    and the batches shuffled again: batches stay random, but their reviews are alike in length.

    For an ensemble (`members` > 1) a batch holds one row of reviews per member, (B, M, T): while
    training, each member reads the data in its own order (labels (B, M)), as if trained alone; for
    validation every member reads the same reviews (labels (B,)), so their mean can be scored.
    `cut=False` keeps whole rows (for a model whose padding is not masked).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, padding: str = "pre",
                 shuffle: bool = False, seed: int = 0, members: int = 1, cut: bool = True):
        super().__init__()
        self.x, self.y, self.batch_size, self.padding, self.shuffle = x, y, batch_size, padding, shuffle
        self.members, self.cut = members, cut
        self.lengths = (x != 0).sum(axis=1)
        self.rng = np.random.default_rng(seed)
        self.batches: list[np.ndarray] = []  # each (M, B) row indices
        self._arrange()

    def _arrange(self) -> None:
        """The same sequence of batch sizes for every member, so their rows stack."""
        chunk = self.batch_size * CHUNK_BATCHES
        per_member = []
        for _ in range(self.members if self.shuffle else 1):
            order = self.rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))
            batches = []
            for start in range(0, len(order), chunk):
                part = order[start:start + chunk]
                part = part[np.argsort(self.lengths[part], kind="stable")]
                batches += [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
            per_member.append(batches)
        if not self.shuffle:  # validation: every member reads the same reviews
            per_member *= self.members
        shuffled = self.rng.permutation(len(per_member[0])) if self.shuffle else range(len(per_member[0]))
        self.batches = [np.stack([batches[i] for batches in per_member]) for i in shuffled]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.batches[index]  # (M, B)
        maxlen = self.x.shape[1]
        keep = int(bucket_lengths(self.lengths[rows].max(initial=0), maxlen)) if self.cut else maxlen
        x = self.x[rows, maxlen - keep:] if self.padding == "pre" else self.x[rows, :keep]  # (M, B, T)
        if self.members == 1:
            return x[0], self.y[rows[0]]
        y = self.y[rows].T if self.shuffle else self.y[rows[0]]
        return x.transpose(1, 0, 2), y

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._arrange()
