"""Tests for nsac export and nsac.pretrained: registered hashes, strict loading, tampered files refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nsac import pretrained
from nsac.errors import ParameterError, WeightsError
from nsac.train import checkpoint as ckpt
from nsac.train.export import export_checkpoint, load_exported
from nsac.train.trainer import TrainResult


@pytest.fixture()
def exported(smoke_run: tuple[Path, TrainResult], tmp_path: Path) -> Path:
    """The smoke run's checkpoint exported as 'smoke-test' into a temporary pretrained folder."""
    export_checkpoint(smoke_run[1].checkpoint, "smoke-test", directory=tmp_path)
    return tmp_path


def test_export_writes_weights_config_and_registry(exported: Path,
                                                   smoke_run: tuple[Path, TrainResult]) -> None:
    weights = exported / "smoke-test.safetensors"
    registry = json.loads((exported / "registry.json").read_text())
    assert registry["smoke-test"]["weights_sha256"] == pretrained.sha256_file(weights)
    assert registry["smoke-test"]["config_sha256"] == pretrained.sha256_file(exported / "smoke-test.json")
    config = pretrained.load_config("smoke-test", directory=exported)
    state = ckpt.load(smoke_run[1].checkpoint)
    assert config["model"] == state["config"]["model"] and config["step"] == 20 and config["ema"] is True
    assert config["git_revision"] == state["git_revision"] and config["sample_rate_hz"] == 16000
    assert pretrained.weights_id("smoke-test", directory=exported) == bytes.fromhex(
        registry["smoke-test"]["weights_sha256"])[:8]
    assert pretrained.list_pretrained(exported) == ["smoke-test"]


def test_exported_model_loads_strictly_with_the_ema_weights(exported: Path,
                                                           smoke_run: tuple[Path, TrainResult]) -> None:
    model = load_exported("smoke-test", directory=exported)
    ema = ckpt.load(smoke_run[1].checkpoint)["ema"]
    assert model.state_dict().keys() == ema.keys()
    assert all(torch.equal(model.state_dict()[k], ema[k]) for k in ema)
    assert not model.training


def test_the_environment_variable_chooses_the_folder(exported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pretrained.ENV_DIR, str(exported))
    assert pretrained.pretrained_dir() == exported
    assert set(pretrained.load_weights("smoke-test")) == set(load_exported("smoke-test").state_dict())


@pytest.mark.parametrize("suffix,what", [(".safetensors", "weights"), (".json", "config")])
def test_a_tampered_file_is_refused(exported: Path, suffix: str, what: str) -> None:
    path = exported / f"smoke-test{suffix}"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=f"does not match the registered .*the {what} were changed"):
        load_exported("smoke-test", directory=exported)


def test_missing_unknown_and_misfitting_weights(exported: Path) -> None:
    with pytest.raises(WeightsError, match="no pretrained weights named 'other'.*known: smoke-test"):
        pretrained.load_weights("other", directory=exported)
    with pytest.raises(ParameterError, match="weights name 'Bad Name'"):
        pretrained.load_weights("Bad Name", directory=exported)
    with pytest.raises(WeightsError, match="do not fit Linear"):
        pretrained.load_into(torch.nn.Linear(2, 2), "smoke-test", directory=exported)
    (exported / "smoke-test.safetensors").unlink()
    with pytest.raises(WeightsError, match="is missing"):
        pretrained.load_weights("smoke-test", directory=exported)


def test_export_refuses_what_is_no_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable nsac training checkpoint"):
        export_checkpoint(tmp_path / "x.pt", "x", directory=tmp_path)


def test_export_overrides_an_inference_setting_and_records_why(smoke_run: tuple[Path, TrainResult],
                                                               tmp_path: Path) -> None:
    export_checkpoint(smoke_run[1].checkpoint, "smoke-cal", directory=tmp_path,
                      model_overrides=["model.levels=8"], calibration="levels=8 chosen on validation clips")
    config = pretrained.load_config("smoke-cal", directory=tmp_path)
    assert config["model"]["levels"] == 8 and config["calibration"] == "levels=8 chosen on validation clips"
    assert load_exported("smoke-cal", directory=tmp_path).config.levels == 8


def test_export_overrides_are_checked(smoke_run: tuple[Path, TrainResult], tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="only model.KEY=VALUE"):
        export_checkpoint(smoke_run[1].checkpoint, "x", directory=tmp_path, model_overrides=["optim.lr=1"])
    with pytest.raises(ParameterError, match="no_such_key"):
        export_checkpoint(smoke_run[1].checkpoint, "x", directory=tmp_path,
                          model_overrides=["model.no_such_key=1"])
    with pytest.raises(WeightsError, match="do not fit"):  # a size change cannot take the trained weights
        export_checkpoint(smoke_run[1].checkpoint, "x", directory=tmp_path, model_overrides=["model.channels=9"])
    assert not (tmp_path / "x.json").exists()
