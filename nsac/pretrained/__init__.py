"""Shipped weights: NAME.safetensors + NAME.json per model, sha256 recorded in registry.json, checked on load.

    nsac/pretrained/
      registry.json        {"NAME": {"weights_sha256": "...", "config_sha256": "..."}, ...}
      NAME.safetensors     the state dict (no pickle)
      NAME.json            how to rebuild the model: model name and hyperparameters, sample rate, provenance

A file whose hash differs from the registry's is refused with WeightsError, so tampered or half-copied weights
never run. The folder is this package's, or $NSAC_PRETRAINED_DIR, or a `directory` argument (tests, private
models). Nothing here imports nsac.train: inference code reads weights, only export writes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nsac.errors import ParameterError, WeightsError

REGISTRY = "registry.json"
ENV_DIR = "NSAC_PRETRAINED_DIR"
WEIGHTS_SUFFIX = ".safetensors"
CONFIG_SUFFIX = ".json"
#: model names: lower-case letters, digits, dot, dash and underscore, starting with a letter or digit
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: bytes of the sha256 that a .nsac header carries (Codec.weights_sha256_prefix)
HEADER_PREFIX_BYTES = 8
_HASH_CHUNK_BYTES = 1 << 20


def pretrained_dir(directory: str | Path | None = None) -> Path:
    """The folder of shipped weights: `directory`, else $NSAC_PRETRAINED_DIR, else this package's folder."""
    if directory is not None:
        return Path(directory)
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else Path(__file__).resolve().parent


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ParameterError(f"weights name {name!r} must match {NAME_PATTERN.pattern} "
                             "(e.g. postfilter-opus-6k)")
    return name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def read_registry(directory: str | Path | None = None) -> dict[str, dict[str, str]]:
    path = pretrained_dir(directory) / REGISTRY
    if not path.is_file():
        return {}
    try:
        registry = json.loads(path.read_text())
    except ValueError as exc:
        raise WeightsError(f"{path}: the registry is not valid JSON ({exc}); restore it from git") from None
    if not isinstance(registry, dict):
        raise WeightsError(f"{path}: the registry must be a JSON object of name -> hashes")
    return registry


def list_pretrained(directory: str | Path | None = None) -> list[str]:
    return sorted(read_registry(directory))


def _entry(name: str, directory: str | Path | None) -> dict[str, str]:
    registry = read_registry(directory)
    if check_name(name) not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise WeightsError(f"no pretrained weights named {name!r} in {pretrained_dir(directory)}; "
                           f"known: {known}")
    return registry[name]


def _verified(path: Path, expected: str, what: str) -> Path:
    if not path.is_file():
        raise WeightsError(f"{path}: the {what} of a registered model is missing; reinstall nsac or "
                           "re-export it")
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(f"{path}: sha256 {actual[:16]}... does not match the registered "
                           f"{expected[:16]}...; the {what} were changed or damaged: restore or re-export "
                           "them")
    return path


def weights_sha256(name: str, *, directory: str | Path | None = None) -> str:
    """The registered sha256 (hex) of NAME.safetensors."""
    return _entry(name, directory)["weights_sha256"]


def weights_id(name: str, *, directory: str | Path | None = None) -> bytes:
    """The first HEADER_PREFIX_BYTES of the weights' sha256, as a codec puts it in a .nsac header."""
    return bytes.fromhex(weights_sha256(name, directory=directory))[:HEADER_PREFIX_BYTES]


def load_config(name: str, *, directory: str | Path | None = None) -> dict[str, Any]:
    """NAME.json, after checking its sha256 against the registry."""
    folder = pretrained_dir(directory)
    path = _verified(folder / f"{name}{CONFIG_SUFFIX}", _entry(name, directory)["config_sha256"], "config")
    return json.loads(path.read_text())


def load_weights(name: str, *, directory: str | Path | None = None) -> dict[str, Any]:
    """NAME.safetensors as a state dict of CPU tensors, after checking its sha256 against the registry."""
    from safetensors.torch import load_file

    folder = pretrained_dir(directory)
    path = _verified(folder / f"{name}{WEIGHTS_SUFFIX}", _entry(name, directory)["weights_sha256"], "weights")
    return load_file(str(path), device="cpu")


def load_into(module: Any, name: str, *, directory: str | Path | None = None) -> dict[str, Any]:
    """Load verified weights into `module` strictly (every key, every shape); returns the model's config."""
    config = load_config(name, directory=directory)
    state = load_weights(name, directory=directory)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise WeightsError(f"weights {name!r} do not fit {type(module).__name__}: {detail}") from None
    return config


def _atomic_write(path: Path, data: bytes) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def register(name: str, state: Mapping[str, Any], config: Mapping[str, Any], *,
             directory: str | Path | None = None) -> Path:
    """Write NAME.safetensors and NAME.json, record their sha256 in registry.json; return the weights path.

    Replaces an existing entry of the same name (the registry then holds the new hashes).
    """
    from safetensors.torch import save

    folder = pretrained_dir(directory)
    folder.mkdir(parents=True, exist_ok=True)
    check_name(name)
    # clones: safetensors refuses tensors that share storage
    tensors = {key: value.detach().cpu().clone().contiguous() for key, value in state.items()}
    weights = save(tensors, metadata={"name": name, "format": "nsac-pretrained"})
    config_bytes = (json.dumps(dict(config), indent=2, sort_keys=True) + "\n").encode()
    weights_path = folder / f"{name}{WEIGHTS_SUFFIX}"
    _atomic_write(weights_path, weights)
    _atomic_write(folder / f"{name}{CONFIG_SUFFIX}", config_bytes)
    registry = read_registry(folder)
    registry[name] = {"weights_sha256": hashlib.sha256(weights).hexdigest(),
                      "config_sha256": hashlib.sha256(config_bytes).hexdigest()}
    _atomic_write(folder / REGISTRY, (json.dumps(registry, indent=2, sort_keys=True) + "\n").encode())
    return weights_path
