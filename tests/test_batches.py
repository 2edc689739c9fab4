"""Length-bucketed batches: every review once an epoch, only padding cut, and a masked model reads them the same."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment_core.batches import SHAPES, LengthBatches, bucket_lengths
from sentiment_core.models import build_model


def padded_reviews(n: int, maxlen: int, padding: str, seed: int = 0, longest: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((n, maxlen), np.int32)
    for row, length in enumerate(rng.integers(0, (longest or maxlen) + 1, n)):
        ids = rng.integers(1, 50, length)
        if padding == "pre":
            x[row, maxlen - length:] = ids
        else:
            x[row, :length] = ids
    return x


def test_bucket_lengths_use_few_shapes_and_never_cut_a_review():
    lengths = np.arange(0, 401)
    buckets = bucket_lengths(lengths, 400)
    assert (buckets >= np.maximum(lengths, 1)).all() and buckets.max() == 400
    assert len(np.unique(buckets)) <= SHAPES
    assert bucket_lengths(np.array([0, 3, 5]), 5).tolist() == [5, 5, 5]  # never past maxlen


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_an_epoch_holds_every_review_once_and_cuts_only_padding(padding):
    x = padded_reviews(1000, 120, padding)
    y = np.arange(1000)
    batches = LengthBatches(x, y, batch_size=32, padding=padding, shuffle=True, seed=3)
    assert len(batches) == int(np.ceil(1000 / 32))
    seen = []
    for i in range(len(batches)):
        xb, yb = batches[i]
        assert len(xb) <= 32 and xb.shape[1] <= 120
        width = 120 - xb.shape[1]
        pads = np.zeros((len(xb), width), np.int32)
        restored = np.hstack([pads, xb] if padding == "pre" else [xb, pads])
        np.testing.assert_array_equal(restored, x[yb])  # the rows, with only padding taken off
        seen += yb.tolist()
    assert sorted(seen) == list(range(1000))
    widths = {batches[i][0].shape[1] for i in range(len(batches))}
    assert len(widths) > 1 and max(widths) <= 120  # short batches really are shorter


def test_shuffling_changes_every_epoch_and_follows_the_seed():
    x, y = padded_reviews(500, 60, "pre"), np.arange(500)
    first = LengthBatches(x, y, 16, shuffle=True, seed=1)
    order = [first[i][1].tolist() for i in range(len(first))]
    again = LengthBatches(x, y, 16, shuffle=True, seed=1)
    assert order == [again[i][1].tolist() for i in range(len(again))]
    first.on_epoch_end()
    assert [first[i][1].tolist() for i in range(len(first))] != order
    fixed = LengthBatches(x, y, 16)
    fixed.on_epoch_end()
    assert sorted(np.concatenate([fixed[i][1] for i in range(len(fixed))]).tolist()) == list(range(500))


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_a_masked_model_gives_the_same_output_without_the_cut_padding(tiny_config, padding):
    config = tiny_config(maxlen=40, padding=padding, bidirectional=True, pooling="max")
    model = build_model(config, compile=False, any_length=True)
    x = padded_reviews(64, 40, padding, seed=5, longest=20)
    batches = LengthBatches(x, np.zeros(64), batch_size=64, padding=padding)
    cut, _ = batches[0]
    rows = batches.batches[0][0]
    assert cut.shape[1] < 40
    np.testing.assert_allclose(model.predict(cut, verbose=0), model.predict(x[rows], verbose=0), atol=1e-6)


def test_ensemble_members_each_read_every_review_in_their_own_order_and_validate_on_the_same():
    x, y = padded_reviews(300, 50, "pre"), np.arange(300)
    train = LengthBatches(x, y, 32, shuffle=True, seed=2, members=3)
    seen = [[], [], []]
    for i in range(len(train)):
        xb, yb = train[i]
        assert xb.shape[:2] == (len(yb), 3) and yb.shape == (len(yb), 3)
        for member in range(3):
            width = 50 - xb.shape[2]
            np.testing.assert_array_equal(np.hstack([np.zeros((len(yb), width), np.int32), xb[:, member]]),
                                          x[yb[:, member]])
            seen[member] += yb[:, member].tolist()
    assert all(sorted(s) == list(range(300)) for s in seen)
    assert seen[0] != seen[1] != seen[2]  # their own orders
    validation = LengthBatches(x, y, 32, members=3)
    xb, yb = validation[0]
    assert yb.shape == (32,) and all((xb[:, m] == xb[:, 0]).all() for m in range(3))
    whole = LengthBatches(x, y, 32, shuffle=True, members=3, cut=False)
    assert all(whole[i][0].shape[2] == 50 for i in range(len(whole)))
