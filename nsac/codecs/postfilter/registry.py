"""Shipped enhancers: which weights clean up after which (codec, bitrate), and loading them for inference.

An enhancer is a model of this package (MODEL_CLASSES) with weights in nsac/pretrained; its JSON config
names the model and its hyperparameters. Loading checks the registered sha256 and loads strictly.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from torch import nn

from nsac.errors import ParameterError, WeightsError
from nsac.pretrained import load_config, load_into

#: (legacy codec, bitrate in bit/s) -> the shipped enhancer picked by default for files coded so
DEFAULT_ENHANCERS: dict[tuple[str, int], str] = {
    ("opus", 6000): "postfilter-opus-6k",
    ("opus", 9000): "postfilter-opus-9k",
    ("codec2", 3200): "postfilter-codec2-3200",
    ("amrwb", 12650): "postfilter-amrwb-12k65",
    ("aac", 32000): "postfilter-aac-32k",  # 48 kHz music
}
#: model name in an enhancer's config -> "module:Class" (nsac.train registers the same classes for training)
MODEL_CLASSES: dict[str, str] = {
    "stft-enhancer": "nsac.codecs.postfilter.model:StftEnhancer",
    "subband-gan": "nsac.codecs.postfilter.subband:SubbandGanEnhancer",
    "mdct-lstm": "nsac.codecs.postfilter.mdct_lstm:MdctLstmEnhancer",
    "time-cnn": "nsac.codecs.postfilter.time_cnn:TimeCnnEnhancer",
    "cepstral-cnn": "nsac.codecs.postfilter.cepstral_cnn:CepstralCnnEnhancer",
    "dcae": "nsac.codecs.postfilter.dcae:DcaeEnhancer",
}


def default_enhancer(codec: str, bitrate_bps: int) -> str:
    """The shipped enhancer for `codec` at `bitrate_bps`; ParameterError listing what ships otherwise."""
    try:
        return DEFAULT_ENHANCERS[(codec, int(bitrate_bps))]
    except KeyError:
        known = ", ".join(f"{c}@{b}" for c, b in sorted(DEFAULT_ENHANCERS))
        raise ParameterError(f"no enhancer ships for {codec} at {bitrate_bps} bit/s; enhancers exist for "
                             f"{known} (or name one with --enhance NAME)") from None


def _model_class(name: str) -> Any:
    import importlib

    try:
        module_name, class_name = MODEL_CLASSES[name].split(":")
    except KeyError:
        raise WeightsError(f"enhancer model {name!r} is unknown; known: {', '.join(MODEL_CLASSES)}") from None
    return getattr(importlib.import_module(module_name), class_name)


@functools.lru_cache(maxsize=8)
def load_enhancer(name: str) -> nn.Module:
    """The enhancer `name` in eval mode with its verified weights (cached: models hold no stream state)."""
    config = load_config(name)
    if config.get("task") != "postfilter":
        raise ParameterError(f"weights {name!r} are a {config.get('task')!r} model, not a post-filter")
    section = dict(config["model"])
    cls = _model_class(section.pop("name"))
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(section) - fields)
    if unknown:
        raise WeightsError(f"{name}.json sets {', '.join(unknown)}, which {cls.__name__} does not know")
    model = cls(cls.Config(**section), sample_rate_hz=int(config["sample_rate_hz"]))
    load_into(model, name)
    model.requires_grad_(False)
    return model.eval()
