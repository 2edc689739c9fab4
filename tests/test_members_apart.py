"""Ensembles trained apart (`members_apart`): each network alone, in worker processes, on its own share of the
training reviews; saved as an ordinary ensemble run."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import tiny

from sentiment_core import weights
from sentiment_core.inference import Engine
from sentiment_core.members_apart import MEMBER_HOLDOUT, member_config, member_holdouts
from sentiment_core.protocol import BatchEvent, EndEvent, EpochEvent, StartEvent, StatusEvent
from sentiment_core.runner import train_and_save

TEXTS = ["A wonderful, moving film.", "Awful. I walked out.", "great", "the plot was dull but the acting superb"]


def test_each_network_leaves_out_its_own_tenth():
    holdouts = member_holdouts(1_000, 6, seed=42)
    assert [len(h) for h in holdouts] == [int(1_000 * MEMBER_HOLDOUT)] * 6
    assert len(np.unique(np.concatenate(holdouts))) == 600  # no review held out twice
    assert all(np.array_equal(a, b) for a, b in zip(holdouts, member_holdouts(1_000, 6, seed=42), strict=True))
    assert not np.array_equal(holdouts[0], member_holdouts(1_000, 6, seed=7)[0])
    wrapped = member_holdouts(1_000, 11, seed=1)  # more networks than tenths: the eleventh repeats the first
    assert np.array_equal(wrapped[10], wrapped[0]) and max(h.max() for h in wrapped) < 1_000


def test_each_network_has_its_own_seed_and_trains_alone():
    config = tiny(members=4, members_apart=True, seed=2**31 - 2)
    alone = [member_config(config, m) for m in range(4)]
    assert [c.seed for c in alone] == [2**31 - 2, 2**31 - 1, 0, 1]
    assert all(c.members == 1 and c.replace(seed=config.seed) == alone[0] for c in alone)


def test_networks_trained_apart_hash_word_pairs_each_their_own_way():
    assert weights.bigram_hashes(3, apart=False) == [weights.BIGRAM_HASH] * 3  # every run saved before
    apart = weights.bigram_hashes(8, apart=True)
    assert apart[0] == weights.BIGRAM_HASH and len(set(apart)) == 8
    ids = np.random.default_rng(0).integers(0, 2_000, size=(50, 40))
    buckets = [weights.bigram_ids(ids, 500, np, h) for h in apart[:2]]
    assert (buckets[0] != buckets[1]).mean() > 0.9


@pytest.fixture(scope="module")
def apart(tmp_path_factory, cache_dir):
    events = []
    config = tiny(members=3, members_apart=True, epochs=3, early_stopping=True, patience=1, bigram_buckets=300,
                  word_dropout=0.2, embedding_rank=4, bidirectional=True, pooling="max")
    run = train_and_save(config, "sample", tmp_path_factory.mktemp("apart") / "apart", events.append,
                         cache_dir=cache_dir)
    return run, events


def test_the_ensemble_is_a_run_whose_engine_matches_keras(apart):
    run, _ = apart
    assert run.config.members == 3 and run.weights["head/kernel"].shape[0] == 3
    engine = Engine.from_run(run, calibrated=False)
    ids = engine.encode(TEXTS)
    keras_members = np.asarray(keras.saving.load_model(run.path / "model.keras").predict(ids, verbose=0))
    members, _, _ = engine.forward_members(ids)
    np.testing.assert_allclose(members.T, keras_members, atol=1e-5)
    np.testing.assert_allclose(engine.predict_ids(ids), keras_members.mean(axis=1), atol=1e-5)
    assert np.ptp(keras_members, axis=1).max() > 1e-3  # three different networks
    layers = [keras.saving.load_model(run.path / "model.keras").get_layer(p + "embedding") for p in ("", "m2_", "m3_")]
    assert [layer.bigram_hash for layer in layers] == weights.bigram_hashes(3, apart=True)
    assert run.meta["status"] == "complete" and 0.0 < run.metrics["accuracy"] <= 1.0


def test_the_run_records_each_networks_stopping_and_the_ensembles_validation(apart):
    run, _ = apart
    members = run.history["members"]
    assert [m["member"] for m in members] == [1, 2, 3] and [m["seed"] for m in members] == [42, 43, 44]
    for m in members:
        assert 1 <= m["epochs"] <= 3 and (m["best_epoch"] is None or 1 <= m["best_epoch"] <= m["epochs"])
        assert 0.0 <= m["holdout_accuracy"] <= 1.0 and 0.0 <= m["ensemble_val_accuracy"] <= 1.0
    # the validation split is the run's own: held out from every network, and it is what calibration used
    assert run.meta["samples"]["validation"] == run.meta["calibration"]["n"]
    card = (run.path / "card.md").read_text()
    assert "3 networks trained apart" in card and f"{members[-1]['ensemble_val_accuracy']:.4f}" in card


def test_the_curves_are_the_first_networks_and_the_others_report_in_status_lines(apart):
    run, events = apart
    kinds = [type(e) for e in events]
    assert kinds.count(StartEvent) == 1 and kinds.count(EndEvent) == 1 and kinds[-1] is EndEvent
    start = next(e for e in events if isinstance(e, StartEvent))
    assert start.parameters == run.meta["parameters"]  # the ensemble's, not one network's
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [e.epoch for e in epochs] == list(range(1, run.history["members"][0]["epochs"] + 1))
    steps = [e.global_step for e in events if isinstance(e, BatchEvent)]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # one network's batches, not interleaved
    lines = [e.message for e in events if isinstance(e, StatusEvent)]
    for network in (2, 3):
        assert any(line.startswith(f"network {network} of 3: epoch 1") for line in lines), lines
        assert any(line.startswith(f"network {network} of 3 done") for line in lines), lines


def test_a_stop_keeps_the_networks_that_trained_and_starts_no_more(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setenv("SENTIMENT_MEMBER_PROCESSES", "1")  # one at a time, so networks 2 and 3 have not begun
    seen = []
    config = tiny(members=3, members_apart=True, epochs=50, batch_size=4)
    run = train_and_save(config, "sample", tmp_path / "stopped", seen.append, should_stop=lambda: bool(
        [e for e in seen if isinstance(e, BatchEvent)]), cache_dir=cache_dir)
    assert run.meta["status"] == "stopped" and run.config.members == 1 and len(run.history["members"]) == 1
    assert run.history["members"][0]["epochs"] <= 1
    probabilities = Engine.from_run(run).predict(TEXTS)
    assert np.isfinite(probabilities).all()
