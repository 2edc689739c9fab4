"""The preprocessing cache: keyed on the text settings, equal to a fresh encoding, rebuilt when damaged."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment_core import data, features, text

ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def assert_same(a: features.Encoded, b: features.Encoded) -> None:
    assert a.vocab.words == b.vocab.words
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert getattr(a, name).dtype == getattr(b, name).dtype


def test_second_prepare_is_served_from_the_cache(tmp_path, tiny_config):
    config = tiny_config()
    first = features.prepare("sample", config, tmp_path)
    assert not first.cached
    assert len(list(tmp_path.glob("*.npz"))) == 1
    second = features.prepare("sample", config, tmp_path)
    assert second.cached
    assert_same(first, second)
    # settings that do not change the arrays share the entry; text settings do not
    assert features.prepare("sample", config.replace(units=4, cell="lstm", epochs=3), tmp_path).cached
    other = features.prepare("sample", config.replace(maxlen=41), tmp_path)
    assert not other.cached and other.x_train.shape[1] == 41
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_prepared_arrays_equal_the_inference_encoding(tmp_path, tiny_config):
    config = tiny_config(maxlen=50, padding="post", truncating="post")
    encoded = features.prepare("sample", config, tmp_path)
    ds = data.load("sample", config.split, config.validation_fraction, config.seed)
    assert encoded.vocab.words == text.Vocabulary.build(ds.train.texts, config.vocab_size).words
    for split, x, y in ((ds.train, encoded.x_train, encoded.y_train), (ds.validation, encoded.x_val, encoded.y_val),
                        (ds.test, encoded.x_test, encoded.y_test)):
        np.testing.assert_array_equal(x, text.encode(split.texts, encoded.vocab, 50, "post", "post"))
        np.testing.assert_array_equal(y, split.labels)
    assert (len(encoded.x_train), len(encoded.x_val), len(encoded.x_test)) == (1600, 400, 1000)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "missing_array"])
def test_a_damaged_cache_entry_is_rebuilt(tmp_path, tiny_config, damage):
    config = tiny_config()
    fresh = features.prepare("sample", config, tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    raw = entry.read_bytes()
    if damage == "garbage":
        entry.write_bytes(b"\x93NUMPY garbage" * 50)
    elif damage == "truncated":
        entry.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        entry.write_bytes(b"")
    else:
        with np.load(entry, allow_pickle=False) as z:
            kept = {k: z[k] for k in z.files if k != "x_test"}
        with open(entry, "wb") as f:
            np.savez(f, **kept)
    rebuilt = features.prepare("sample", config, tmp_path)
    assert not rebuilt.cached
    assert_same(fresh, rebuilt)
    assert features.prepare("sample", config, tmp_path).cached  # and the entry is whole again


def test_no_cache_dir_writes_nothing(tmp_path, tiny_config, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = features.DEFAULT_CACHE
    before = sorted(default.iterdir()) if default.exists() else []
    encoded = features.prepare("sample", tiny_config(maxlen=33), None)
    assert not encoded.cached and encoded.x_train.shape == (1600, 33)
    assert not list(tmp_path.iterdir())
    assert (sorted(default.iterdir()) if default.exists() else []) == before


def test_cache_key_follows_the_source(tmp_path, tiny_config):
    config = tiny_config()
    assert features.cache_key("sample", config) == features.cache_key("sample", config.replace(units=3))
    assert features.cache_key("sample", config) != features.cache_key("sample", config.replace(vocab_size=2001))
    assert features.cache_key("sample", config) != features.cache_key("sample", config.replace(seed=1))
    assert features.cache_key("sample", config) != features.cache_key(str(tmp_path), config)
