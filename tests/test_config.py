"""Hyperparameters: each declared once and completely, refused with the field named, presets valid,
the notebook's exact model."""

from __future__ import annotations

from dataclasses import fields

import pytest

from sentiment_core.config import GROUPED, GROUPS, PRESETS, SCHEMA, Config, ConfigError


@pytest.mark.parametrize("name", [f.name for f in fields(Config)])
def test_every_hyperparameter_is_declared_completely(name):
    p = SCHEMA[name]
    assert p.label and len(p.help) >= 20 and p.group in GROUPS
    assert type(p.default) is p.type and p.default == getattr(Config(), name)
    if p.type is bool:
        assert not p.range and not p.choices
    elif p.type is str:
        assert p.choices and p.default in p.choices and not p.range
    else:
        low, high = p.range
        assert low <= p.default <= high and 0 < p.step <= high - low
    if p.cap:  # a server's maximum: named SENTIMENT_MAX_..., and its default within the range
        variable, default = p.cap
        assert variable.startswith("SENTIMENT_MAX_") and p.range[0] <= default <= p.range[1]


def test_the_schema_is_the_dataclass_in_its_order():
    assert list(SCHEMA) == [f.name for f in fields(Config)]
    assert sorted(p.name for group in GROUPED.values() for p in group) == sorted(SCHEMA)


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


def test_refusals_give_the_allowed_values():
    with pytest.raises(ConfigError, match="units must be between 1 and 1,024, got 2000"):
        Config(units=2000)
    with pytest.raises(ConfigError, match="pooling must be one of last, max, mean, got 'attention'"):
        Config(pooling="attention")


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
