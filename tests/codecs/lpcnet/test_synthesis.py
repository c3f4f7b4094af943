"""The compiled sample loop computes what the torch model computes; its state makes pieces equal wholes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nsac.codecs.lpcnet.model import LPCNetConfig, LPCNetModel
from nsac.codecs.lpcnet.synthesis import Sampling, Vocoder
from nsac.dsp.features import FRAME_SIZE
from nsac.dsp.mulaw import mulaw_encode
from nsac.train.lpcnet_train import mulaw_code

SMALL = LPCNetConfig(pitch_embedding=8, conditioning=16, sample_embedding=8, gru_a_units=24, gru_b_units=8)
N_FRAMES = 3


def _model(seed: int = 0) -> LPCNetModel:
    torch.manual_seed(seed)
    model = LPCNetModel(SMALL).eval()
    with torch.no_grad():  # larger weights than the initialisation, so that every path matters
        for parameter in model.parameters():
            parameter.mul_(3.0)
    return model


def _inputs(seed: int = 1):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(N_FRAMES + 4, 20)).astype(np.float32)
    pitch = rng.integers(32, 257, size=N_FRAMES + 4)
    lpc = np.zeros((N_FRAMES, 17), dtype=np.float32)
    lpc[:, 0], lpc[:, 1], lpc[:, 2] = 1.0, -0.9, 0.3
    return features, pitch, lpc


def test_conditioning_equals_torch_frame_rate_network():
    model = _model()
    features, pitch, _ = _inputs()
    with torch.no_grad():
        inputs = torch.from_numpy(features)[None], torch.from_numpy(pitch)[None]
        expected = model.frame_rate(*inputs)[0].numpy()
    np.testing.assert_allclose(Vocoder(model).conditioning(features, pitch), expected, atol=1e-5)


def test_sample_loop_logits_equal_teacher_forced_torch_model():
    """Feed torch the codes the loop produced; its logits must be the loop's (float32 tolerance)."""
    model = _model()
    vocoder = Vocoder(model)
    features, pitch, lpc = _inputs()
    logits = np.zeros((N_FRAMES * FRAME_SIZE, SMALL.levels), dtype=np.float32)
    s = vocoder.synthesize(vocoder.new_state(), vocoder.conditioning(features, pitch), lpc,
                           np.zeros(N_FRAMES), logits=logits).astype(np.float64)
    a = np.repeat(lpc[:, 1:].astype(np.float64), FRAME_SIZE, axis=0)
    padded = np.concatenate([np.zeros(16), s])
    lagged = np.stack([padded[16 - i: 16 - i + s.size] for i in range(1, 17)], axis=1)
    prediction = -(lagged * a).sum(axis=1)
    previous = np.concatenate([[0.0], s[:-1]])
    excitation = s - prediction
    previous_excitation = np.concatenate([[0.0], excitation[:-1]])
    codes = [torch.from_numpy(mulaw_encode(v))[None] for v in (previous, prediction, previous_excitation)]
    with torch.no_grad():
        expected = model(torch.from_numpy(features)[None], torch.from_numpy(pitch)[None], *codes)[0].numpy()
    assert np.isfinite(s).all() and np.std(s) > 0
    np.testing.assert_allclose(logits, expected, atol=2e-4, rtol=1e-4)


def test_pieces_equal_whole_and_seed_decides():
    vocoder = Vocoder(_model())
    features, pitch, lpc = _inputs()
    cond = vocoder.conditioning(features, pitch)
    whole = vocoder.synthesize(vocoder.new_state(7), cond, lpc, np.full(N_FRAMES, 0.9))
    state = vocoder.new_state(7)
    pieces = np.concatenate([vocoder.synthesize(state, cond[:1], lpc[:1], np.full(1, 0.9)),
                             vocoder.synthesize(state, cond[1:], lpc[1:], np.full(N_FRAMES - 1, 0.9))])
    np.testing.assert_array_equal(whole, pieces)
    other = vocoder.synthesize(vocoder.new_state(8), cond, lpc, np.full(N_FRAMES, 0.9))
    assert not np.array_equal(whole, other)


def test_mulaw_codes_agree_between_training_and_numpy():
    x = np.random.default_rng(3).uniform(-1.2, 1.2, 10_000)
    np.testing.assert_array_equal(mulaw_code(torch.from_numpy(x)).numpy(), mulaw_encode(x))


@pytest.mark.parametrize(("correlation", "power"), [(0.0, 1.0), (1 / 3, 1.0), (1.0, 2.0)])
def test_voicing_power(correlation, power):
    assert Sampling().power(correlation) == pytest.approx(power)
