"""Tests for nsac.train.recipes and config: YAML inheritance, --set overrides, checks and their messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nsac.errors import ParameterError
from nsac.train import recipes
from nsac.train.config import SECTIONS, TrainConfig
from nsac.train.recipes import (
    apply_overrides,
    differences,
    load_recipe,
    raw_recipe,
    recipe_from_dict,
    recipe_names,
    recipe_to_dict,
    resolve_key,
)


def test_base_yaml_states_the_dataclass_defaults() -> None:
    """base.yaml documents the defaults; it must not drift from the dataclasses."""
    base = recipes._read_yaml(recipes.RECIPES_DIR / "base.yaml")
    for section, cls in SECTIONS.items():
        defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                    for f in dataclasses.fields(cls)}
        built = dataclasses.asdict(recipes.build_dataclass(cls, base[section], section))
        assert built == {k: (tuple(v) if isinstance(v, list) else v) for k, v in defaults.items()}, section
        assert set(base[section]) == set(defaults), section


@pytest.mark.parametrize("name", recipe_names())
def test_every_shipped_recipe_loads_and_round_trips(name: str) -> None:
    raw = raw_recipe(name)
    if raw.get("task") == "lpcnet":  # LPCNet's own loop: its section must build its settings
        from nsac.train.lpcnet_train import TrainSettings

        assert TrainSettings(**raw["lpcnet"]).gru_a_units > 0
        return
    recipe = load_recipe(name)
    assert recipe.name == name
    assert recipe_from_dict(recipe_to_dict(recipe)) == recipe


def test_smoke_overrides_the_base_and_inherits_the_rest() -> None:
    recipe = load_recipe("smoke")
    assert recipe.model.name == "smoke" and recipe.train.max_steps == 20
    assert recipe.data.sample_rate_hz == 16000  # from base
    post = load_recipe("smoke-postfilter")
    assert post.task == "postfilter" and post.degrade.codec == "opus" and post.train.max_steps == 20


def test_set_takes_bare_and_qualified_keys_with_yaml_values() -> None:
    recipe = load_recipe("smoke", ["max_steps=40", "optim.lr=1e-4", "kinds=[mpd, msstft]",
                                   "loudness_lufs=null", "progress=false", "model.channels=4",
                                   "degrade.options={application: voip}"])
    assert recipe.train.max_steps == 40
    assert recipe.optim.lr == 1e-4
    assert recipe.discriminator.kinds == ("mpd", "msstft")
    assert recipe.data.loudness_lufs is None
    assert recipe.train.progress is False
    assert recipe.model.config.channels == 4
    assert recipe.degrade.options == {"application": "voip"}
    assert load_recipe("smoke", ["kinds=mpd"]).discriminator.kinds == ("mpd",)


def test_unknown_key_is_one_line_naming_the_valid_keys() -> None:
    with pytest.raises(ParameterError) as error:
        load_recipe("smoke", ["max_step=3"])
    message = str(error.value)
    assert "\n" not in message
    assert "unknown recipe key 'max_step'" in message
    assert "did you mean train.max_steps?" in message
    assert "train.max_steps" in message and "optim.lr" in message and "model.channels" in message


def test_unknown_key_inside_a_yaml_section_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("inherit: smoke\noptim:\n  learning_rate: 0.1\n")
    with pytest.raises(ParameterError, match="unknown recipe key 'optim.learning_rate'.*optim.lr"):
        load_recipe(str(path))


@pytest.mark.parametrize("setting,message", [
    ("max_steps=abc", "train.max_steps='abc' must be an integer"),
    ("max_steps=0", "train.max_steps=0 must be >= 1"),
    ("gain_p=1.5", "augment.gain_p=1.5 must be a probability"),
    ("progress=3", "train.progress=3 must be true or false"),
    ("kinds=[gan]", "discriminator.kinds has \\['gan'\\]"),
    ("task=denoise", "task='denoise'; use one of autoencoder, postfilter"),
    ("model.name=nope", "unknown model 'nope'"),
    ("max_steps", "must look like key=value"),
])
def test_bad_values_say_what_is_valid(setting: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        load_recipe("smoke", [setting])


def test_postfilter_needs_a_codec() -> None:
    with pytest.raises(ParameterError, match="needs degrade.codec"):
        load_recipe("smoke", ["task=postfilter"])


def test_ambiguous_bare_key_asks_for_the_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recipes, "valid_keys", lambda raw: ["model.channels", "discriminator.channels"])
    with pytest.raises(ParameterError, match="ambiguous; write one of model.channels, discriminator.chan"):
        resolve_key("channels", {})


def test_unknown_recipe_lists_the_known_ones() -> None:
    with pytest.raises(ParameterError, match="unknown recipe 'smok'; known recipes: .*smoke"):
        load_recipe("smok")


def test_a_recipe_file_inherits_relative_to_itself_and_loops_are_refused(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text("inherit: smoke\ntrain:\n  max_steps: 7\n")
    (tmp_path / "child.yaml").write_text("inherit: parent.yaml\noptim:\n  lr: 0.5\n")
    recipe = load_recipe(str(tmp_path / "child.yaml"))
    assert recipe.name == "child" and recipe.train.max_steps == 7 and recipe.optim.lr == 0.5
    (tmp_path / "a.yaml").write_text("inherit: b.yaml\n")
    (tmp_path / "b.yaml").write_text("inherit: a.yaml\n")
    with pytest.raises(ParameterError, match="inheritance loops"):
        raw_recipe(str(tmp_path / "a.yaml"))


def test_differences_name_changed_keys() -> None:
    a = recipe_to_dict(load_recipe("smoke"))
    b = recipe_to_dict(load_recipe("smoke", ["optim.lr=0.1", "max_steps=5"]))
    assert [d[0] for d in differences(a, b)] == ["optim.lr", "train.max_steps"]
    assert apply_overrides(raw_recipe("smoke"), []) == raw_recipe("smoke")


def test_hyperparameters_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().max_steps = 3  # type: ignore[misc]


def test_a_child_naming_another_model_drops_the_parents_hyperparameters(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text("inherit: postfilter-opus-6k\nmodel:\n  name: smoke\n")
    recipe = load_recipe(str(tmp_path / "child.yaml"))
    assert recipe.model.name == "smoke" and recipe.degrade.codec == "opus"
    (tmp_path / "same.yaml").write_text("inherit: postfilter-opus-6k\nmodel:\n  channels: 8\n")
    same = load_recipe(str(tmp_path / "same.yaml"))
    assert same.model.config.channels == 8 and same.model.config.gru_layers == 2  # same model: merged
