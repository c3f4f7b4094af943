"""The pitch side information (nsac.quant.pitch): grid error, hold through unvoiced frames, interpolation,
and chunked coding equal to whole."""

from __future__ import annotations

import math

import pytest
import torch

from nsac.errors import ParameterError
from nsac.quant.pitch import PitchQuantizer


def quantizer(bits: int = 7) -> PitchQuantizer:
    return PitchQuantizer(bits=bits, min_hz=62.5, max_hz=500.0, hold_below=0.4, subframes=4)


@pytest.mark.parametrize("bits", [5, 7])
def test_codes_land_within_half_a_step_of_the_pitch(bits: int) -> None:
    q = quantizer(bits)
    f0_hz = torch.exp2(torch.linspace(math.log2(62.5), math.log2(500.0), 997, dtype=torch.float64))[None]
    codes = q.encode(f0_hz, torch.ones_like(f0_hz))
    assert int(codes.min()) == 0 and int(codes.max()) == 2**bits - 1
    error_octaves = (q.log2_hz(codes) - torch.log2(f0_hz)).abs().max()
    assert float(error_octaves) <= q.octaves_per_step / 2 + 1e-12
    assert q.octaves_per_step == pytest.approx(3 / (2**bits - 1))
    # beyond the range: the end codes
    outside = q.encode(torch.tensor([[20.0, 4000.0]]), torch.ones(1, 2))
    assert outside.tolist() == [[0, 2**bits - 1]]


def test_unvoiced_frames_hold_the_last_voiced_code() -> None:
    q = quantizer()
    f0_hz = torch.tensor([[300.0, 100.0, 400.0, 90.0, 150.0, 70.0]])
    periodicity = torch.tensor([[0.1, 0.9, 0.2, 0.3, 0.8, 0.39]])
    codes = q.encode(f0_hz, periodicity, previous=torch.tensor([5]))
    expected = q.encode(torch.tensor([[100.0, 150.0]]), torch.ones(1, 2))[0].tolist()
    assert codes[0].tolist() == [5, expected[0], expected[0], expected[0], expected[1], expected[1]]


def test_decoding_interpolates_from_the_previous_code_and_ends_on_each_code() -> None:
    q = quantizer()
    codes = torch.tensor([[10, 50, 50, 20]])
    f0_hz = q.decode(codes, previous=torch.tensor([30]))
    assert f0_hz.shape == (1, 16)
    log2_f0 = torch.log2(f0_hz[0]).view(4, 4)
    assert torch.allclose(log2_f0[:, -1], q.log2_hz(codes[0]))
    steps = torch.diff(torch.cat([q.log2_hz(torch.tensor([30])), torch.log2(f0_hz[0])]))
    # a frame moves by a quarter of its change in each sub-frame: linear in log2 f0
    assert torch.allclose(steps.view(4, 4), steps.view(4, 4)[:, :1].expand(4, 4))
    assert torch.allclose(log2_f0[2], log2_f0[1, -1].expand(4))  # no change, a steady pitch


def test_chunks_chained_through_the_previous_code_equal_the_whole() -> None:
    q = quantizer()
    generator = torch.Generator().manual_seed(4)
    f0_hz = 62.5 * torch.exp2(3 * torch.rand(2, 30, generator=generator, dtype=torch.float64))
    periodicity = torch.rand(2, 30, generator=generator)
    whole_codes = q.encode(f0_hz, periodicity)
    whole_f0 = q.decode(whole_codes)
    codes, decoded, previous_in, previous_out = [], [], None, None
    for start, stop in ((0, 1), (1, 1), (1, 13), (13, 30)):
        chunk = q.encode(f0_hz[:, start:stop], periodicity[:, start:stop], previous_in)
        if chunk.shape[-1]:
            previous_in = chunk[:, -1]
        decoded.append(q.decode(chunk, previous_out))
        if chunk.shape[-1]:
            previous_out = chunk[:, -1]
        codes.append(chunk)
    assert torch.equal(torch.cat(codes, -1), whole_codes)
    assert torch.allclose(torch.cat(decoded, -1), whole_f0, rtol=1e-12, atol=0)  # exp2 may differ by an ulp


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ParameterError, match="bits"):
        PitchQuantizer(bits=0, min_hz=62.5, max_hz=500.0, hold_below=0.4, subframes=4)
    with pytest.raises(ParameterError, match="range"):
        PitchQuantizer(bits=7, min_hz=500.0, max_hz=62.5, hold_below=0.4, subframes=4)
    with pytest.raises(ParameterError, match="0..127"):
        quantizer().decode(torch.tensor([[128]]))
    with pytest.raises(ParameterError, match="batch, frames"):
        quantizer().encode(torch.ones(3), torch.ones(3))
