"""Hyperparameters: refused with the field named, presets valid, the notebook's exact model."""

from __future__ import annotations

import pytest

from sentiment_core.config import PRESETS, Config, ConfigError


@pytest.mark.parametrize("changes,field", [
    (dict(units=0), "units"),
    (dict(vocab_size=5), "vocab_size"),
    (dict(maxlen=100_000), "maxlen"),
    (dict(cell="transformer"), "cell"),
    (dict(dropout=1.5), "dropout"),
    (dict(mask="false"), "mask"),
    (dict(bidirectional="yes"), "bidirectional"),
    (dict(units=True), "units"),
    (dict(units="32"), "units"),
    (dict(units=32.5), "units"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(optimizer="adagrad"), "optimizer"),
    (dict(pooling="attention"), "pooling"),
    (dict(split="random"), "split"),
    (dict(layers=9), "layers"),
    (dict(seed=-1), "seed"),
])
def test_bad_hyperparameters_are_refused_naming_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        Config(**changes)
    with pytest.raises(ConfigError, match=field):
        Config().replace(**changes)
    with pytest.raises(ConfigError, match=field):
        Config.from_dict({**Config().to_dict(), **changes})


def test_unknown_field_in_from_dict_is_named():
    with pytest.raises(ConfigError, match="attention_heads"):
        Config.from_dict({"units": 8, "attention_heads": 4})


def test_post_padding_without_mask_reading_the_last_step_is_refused():
    with pytest.raises(ConfigError, match="padding"):
        Config(padding="post", mask=False, pooling="last")
    Config(padding="post", mask=False, pooling="mean")  # pooling reads every step: allowed
    Config(padding="post", mask=True)


def test_round_trip_and_whole_floats():
    config = Config(units=16, learning_rate=0.01, bidirectional=True)
    assert Config.from_dict(config.to_dict()) == config
    assert Config(units=16.0).units == 16  # a whole float is a whole number


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name):
    preset = PRESETS[name]
    assert Config.from_dict(preset.to_dict()) == preset


def test_notebook_preset_builds_the_notebooks_model():
    from sentiment_core.models import build_model, summary_rows

    rows = summary_rows(PRESETS["notebook"])
    assert [(r["type"], r["output shape"], r["parameters"]) for r in rows] == [
        ("Embedding", "(None, 100, 32)", 320_000),
        ("SimpleRNN", "(None, 32)", 2_080),
        ("Dense", "(None, 1)", 33),
    ]
    assert sum(r["parameters"] for r in rows) == 322_113
    assert build_model(PRESETS["notebook"]).count_params() == 322_113
