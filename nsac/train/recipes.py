"""Recipes: YAML files that override a base, `--set key=value` on top, checked into frozen dataclasses.

A recipe is `nsac/train/recipes/NAME.yaml` or any YAML file. It names the recipe it builds on with
`inherit:` (default `base`); mappings merge key by key, anything else replaces, and a `model:` section
naming another model than its parent's starts afresh (the parent's hyperparameters belong to its model).
`--set` keys are `section.field` (`train.max_steps=20`) or a bare field where only one section has it
(`max_steps=20`); values are YAML (`kinds=[mpd,msstft]`, `loudness_lufs=null`). Unknown keys and bad values
raise ParameterError naming what is valid.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nsac.errors import ParameterError
from nsac.train.config import SECTIONS, TOP_LEVEL, ModelSpec, Recipe
from nsac.train.models import model_class

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
BASE = "base"
#: keys a resumed run may change: they steer the run, not what is learnt
RESUMABLE_KEYS = frozenset({
    "data.path", "data.num_workers", "data.prefetch_factor", "degrade.cache_dir", "train.max_steps",
    "train.log_every", "train.valid_every", "train.checkpoint_every", "train.keep_checkpoints",
    "train.progress", "train.device", "train.threads",
})
_MAX_INHERIT_DEPTH = 16


def recipe_names() -> list[str]:
    """Recipes shipped with nsac (the base, which trains nothing by itself, is left out)."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml") if p.stem != BASE)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: a recipe must be a mapping of sections, not {type(data).__name__}")
    return data


def _recipe_path(name: str) -> Path:
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise ParameterError(f"recipe file {name} does not exist")
        return candidate
    path = RECIPES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ParameterError(f"unknown recipe {name!r}; known recipes: {', '.join(recipe_names())} "
                             "(or give the path of a .yaml file)")
    return path


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, other values in `override` replace those in `base`."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def raw_recipe(name: str) -> dict[str, Any]:
    """The merged mapping of recipe `name` and everything it inherits, before any check."""
    chain: list[dict[str, Any]] = []
    seen: list[Path] = []
    current: str | None = name
    folder = Path.cwd()
    while current is not None:
        if current.endswith((".yaml", ".yml")) and not Path(current).is_absolute():
            current = str(folder / current)  # a file inherits relative to its own folder
        path = _recipe_path(current).resolve()
        if path in seen or len(seen) > _MAX_INHERIT_DEPTH:
            raise ParameterError(f"recipe inheritance loops: {' -> '.join(p.stem for p in seen + [path])}")
        seen.append(path)
        data = _read_yaml(path)
        parent = data.pop("inherit", BASE if path != (RECIPES_DIR / f"{BASE}.yaml").resolve() else None)
        if parent is not None and not isinstance(parent, str):
            raise ParameterError(f"{path}: inherit must be a recipe name or a .yaml path, not {parent!r}")
        chain.append(data)
        current, folder = parent, path.parent
    merged: dict[str, Any] = {}
    for data in reversed(chain):
        model = data.get("model")
        inherited_name = (merged.get("model") or {}).get("name")
        if isinstance(model, Mapping) and model.get("name", inherited_name) != inherited_name:
            # another model family: the parent's hyperparameters are not its fields, so they are dropped
            merged = {**merged, "model": {}}
        merged = merge(merged, data)
    merged["name"] = Path(name).stem
    return merged


def _section_fields(section: str, raw: Mapping[str, Any]) -> list[str]:
    if section == "model":
        name = (raw.get("model") or {}).get("name", "")
        fields = ["name"]
        if name:
            fields += [f.name for f in dataclasses.fields(model_class(name).Config)]
        return fields
    return [f.name for f in dataclasses.fields(SECTIONS[section])]


def valid_keys(raw: Mapping[str, Any]) -> list[str]:
    """Every key `--set` accepts for this recipe, qualified."""
    keys = list(TOP_LEVEL)
    for section in ["model", *SECTIONS]:
        keys += [f"{section}.{name}" for name in _section_fields(section, raw)]
    return keys


def _unknown_key(key: str, keys: list[str]) -> ParameterError:
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    close += difflib.get_close_matches(key, [k.split(".")[-1] for k in keys], n=1, cutoff=0.75)
    hint = f"did you mean {close[0]}? " if close else ""
    return ParameterError(f"unknown recipe key {key!r}; {hint}valid keys: {', '.join(keys)}")


def resolve_key(key: str, raw: Mapping[str, Any]) -> str:
    """The qualified key `section.field` (or top-level key) that `key` names; ParameterError otherwise."""
    keys = valid_keys(raw)
    if key in keys:
        return key
    matches = [k for k in keys if k.split(".")[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ParameterError(f"recipe key {key!r} is ambiguous; write one of {', '.join(matches)}")
    raise _unknown_key(key, keys)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `key=value` strings (YAML values) to a raw recipe mapping."""
    import yaml

    out = merge({}, raw)
    for text in overrides:
        key, sep, value_text = text.partition("=")
        if not sep or not key:
            raise ParameterError(f"--set {text!r} must look like key=value, e.g. max_steps=20")
        try:
            value = yaml.safe_load(value_text) if value_text else ""
        except yaml.YAMLError:
            value = value_text
        qualified = resolve_key(key.strip().replace("-", "_"), out)
        if "." not in qualified:
            out[qualified] = value
        else:
            section, name = qualified.split(".", 1)
            out[section] = merge(out.get(section) or {}, {name: value})
    return out


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Coerce a YAML value to the field type `hint`, or raise ParameterError naming the key."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _convert(value, next(a for a in args if a is not type(None)), key)
    if hint is Any:
        return value
    if origin is tuple:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], key) for v in items)
        if len(items) != len(args):
            raise ParameterError(f"{key}={value!r} must have {len(args)} items")
        return tuple(_convert(v, a, key) for v, a in zip(items, args))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ParameterError(f"{key}={value!r} must be a mapping, e.g. {{application: voip}}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ParameterError(f"{key}={value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ParameterError(f"{key}={value!r} must be an integer")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ParameterError(f"{key}={value!r} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParameterError(f"{key}={value!r} must be a string")
        return value
    raise ParameterError(f"{key}: unsupported field type {hint}")  # a bug in a Config class, not in a recipe


def build_dataclass(cls: type, mapping: Mapping[str, Any] | None, where: str) -> Any:
    """Instantiate the frozen dataclass `cls` from a mapping, refusing unknown keys."""
    mapping = mapping or {}
    if not isinstance(mapping, Mapping):
        raise ParameterError(f"recipe section {where!r} must be a mapping, not {mapping!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in mapping if k not in names]
    if unknown:
        raise _unknown_key(f"{where}.{unknown[0]}", [f"{where}.{n}" for n in names])
    return cls(**{k: _convert(v, hints[k], f"{where}.{k}") for k, v in mapping.items()})


def recipe_from_dict(raw: Mapping[str, Any]) -> Recipe:
    """Check a raw recipe mapping and build the Recipe."""
    known = {"name", "model", *TOP_LEVEL, *SECTIONS}
    unknown = [k for k in raw if k not in known]
    if unknown:
        raise _unknown_key(unknown[0], valid_keys(raw))
    model_raw = dict(raw.get("model") or {})
    model_name = model_raw.pop("name", "")
    if not model_name:
        raise ParameterError("the recipe names no model: set model.name (see nsac/train/models.py)")
    model_config = build_dataclass(model_class(model_name).Config, model_raw, "model")
    sections = {name: build_dataclass(cls, raw.get(name), name) for name, cls in SECTIONS.items()}
    top = {key: _convert(raw[key], hint, key) for key, hint in TOP_LEVEL.items() if key in raw}
    return Recipe(name=str(raw.get("name", "")), model=ModelSpec(model_name, model_config), **top, **sections)


def load_recipe(name: str, overrides: Sequence[str] = ()) -> Recipe:
    """Recipe `name` (shipped name or YAML path) with `key=value` overrides applied."""
    return recipe_from_dict(apply_overrides(raw_recipe(name), overrides))


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Plain nested dict (lists for tuples) that `recipe_from_dict` turns back into the same Recipe."""

    def plain(value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    model = {"name": recipe.model.name, **plain(dataclasses.asdict(recipe.model.config))}
    out: dict[str, Any] = {"name": recipe.name, "task": recipe.task, "seed": recipe.seed, "model": model}
    for section in SECTIONS:
        out[section] = plain(dataclasses.asdict(getattr(recipe, section)))
    return out


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; section dicts only (codec options stay one value)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        qualified = f"{prefix}{key}"
        if isinstance(value, Mapping) and not prefix:
            out.update(flatten(value, f"{qualified}."))
        else:
            out[qualified] = value
    return out


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every key that differs between two recipe dicts."""
    a, b = flatten(old), flatten(new)
    return [(key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
