"""The psychoacoustic ablation's recipes: the same model and recipe, with and without the psychoacoustic terms."""

from __future__ import annotations

from nsac.train.recipes import differences, load_recipe, recipe_to_dict

BASE = "autoencoder-16k-ablation-base"
PSY = "autoencoder-16k-ablation-psy"
PSYCHOACOUSTIC_KEYS = {"loss.priority_weight", "loss.priority_domain", "loss.noise_modulation_weight",
                       "loss.noise_modulation_reduce", "loss.psychoacoustic_level",
                       "loss.psychoacoustic_hop_samples"}


def test_the_arms_differ_only_in_the_psychoacoustic_terms() -> None:
    base, psy = recipe_to_dict(load_recipe(BASE)), recipe_to_dict(load_recipe(PSY))
    changed = {key for key, _, _ in differences(base, psy)} - {"name"}
    assert changed <= PSYCHOACOUSTIC_KEYS, changed - PSYCHOACOUSTIC_KEYS
    assert {"loss.priority_weight", "loss.noise_modulation_weight"} <= changed


def test_only_the_test_arm_weights_the_psychoacoustic_terms() -> None:
    base, psy = load_recipe(BASE), load_recipe(PSY)
    assert base.loss.priority_weight == 0 and base.loss.noise_modulation_weight == 0
    assert psy.loss.priority_weight > 0 and psy.loss.noise_modulation_weight > 0


def test_the_ablation_codec_is_the_shipped_model_trained_shorter_without_a_gan() -> None:
    recipe, full = load_recipe(BASE), load_recipe("autoencoder-16k-stft")
    assert recipe.model.name == full.model.name == "soundstream-stft"
    assert not recipe.adversarial and full.adversarial
    assert recipe.model.config.channels == full.model.config.channels
    assert recipe.model.config.hop_samples == full.model.config.hop_samples
    assert recipe.train.max_steps < full.train.max_steps
    # the ablation table's default bitrates (3, 6 and 12 codebooks) are all within the model
    assert recipe.model.config.n_codebooks >= 12
