"""The registry of trainable models: recipe `model.name` -> class, built from its own frozen config.

A trainable model is an `nn.Module` with a class attribute `Config` (a frozen dataclass of its
hyperparameters) and a constructor `(config, *, sample_rate_hz)`. Its forward takes audio (batch, 1, time)
and returns audio of the same shape, or `(audio, aux)` where `aux` maps names to extra loss terms (already
weighted; e.g. a VQ commitment loss) that the trainer adds to the generator's loss and logs.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from nsac.errors import ParameterError

#: model name -> "module:Class"; imported only when the model is built
_MODELS: dict[str, str] = {
    "smoke": "nsac.train.smoke_model:SmokeAutoencoder",
    "stft-enhancer": "nsac.codecs.postfilter.model:StftEnhancer",
    "subband-gan": "nsac.codecs.postfilter.subband:SubbandGanEnhancer",
    "mdct-lstm": "nsac.codecs.postfilter.mdct_lstm:MdctLstmEnhancer",
    "time-cnn": "nsac.codecs.postfilter.time_cnn:TimeCnnEnhancer",
    "cepstral-cnn": "nsac.codecs.postfilter.cepstral_cnn:CepstralCnnEnhancer",
    "dcae": "nsac.codecs.postfilter.dcae:DcaeEnhancer",
    "soundstream": "nsac.codecs.autoencoder.model:SoundStreamAutoencoder",
    "soundstream-stft": "nsac.codecs.autoencoder.stft_model:StftAutoencoder",
    "s2h-autoencoder": "nsac.codecs.autoencoder_s2h.model:S2HAutoencoder",
}


def model_names() -> list[str]:
    return sorted(_MODELS)


def model_class(name: str) -> Any:
    """The class registered as `name`; ParameterError naming the known models otherwise."""
    try:
        target = _MODELS[name]
    except KeyError:
        known = ", ".join(model_names())
        raise ParameterError(f"unknown model {name!r} in the recipe's model.name; known models: "
                             f"{known}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_model(name: str, config: Any, *, sample_rate_hz: int) -> nn.Module:
    return model_class(name)(config, sample_rate_hz=sample_rate_hz)
