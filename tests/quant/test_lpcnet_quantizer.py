"""The 1.6 kb/s LPCNet packet: bit layout, round trips, ranges, fidelity on real speech, determinism."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nsac.codecs.lpcnet.codebooks import shipped_codebooks
from nsac.dsp.features import cepstral_distance_db, compute_features
from nsac.errors import BitstreamError, ParameterError
from nsac.quant import lpcnet_quantizer as lq

MAX_MEAN_DISTANCE_DB = 3.0
"""Mean band-level distance between quantized and unquantized cepstra (measured: about 2 dB)."""
DIAGRAM_LETTERS = {"E": "energy", "P": "pitch", "M": "modulation", "C": "correlation", "a": "stage1",
                   "b": "stage2", "c": "stage3", "d": "delta", "I": "interpolation"}


@pytest.fixture(scope="module")
def codebooks() -> lq.LPCNetCodebooks:
    return shipped_codebooks()


@pytest.fixture(scope="module")
def speech(speech_16k):
    x = speech_16k[0]
    x = x[: x.size // 640 * 640]  # whole packets
    features = compute_features(x)
    return features


@pytest.fixture(scope="module")
def coded(speech, codebooks):
    packets = lq.encode(speech.cepstrum, speech.pitch_period, speech.pitch_correlation, codebooks=codebooks)
    return packets, lq.decode(packets, codebooks=codebooks)


def test_bit_allocation_is_the_papers():
    bits = lq.FIELD_BITS
    assert sum(bits.values()) == 64 == 8 * lq.PACKET_BYTES
    assert (bits["pitch"], bits["modulation"], bits["correlation"], bits["energy"]) == (6, 3, 2, 7)
    assert bits["stage1"] + bits["stage2"] + bits["stage3"] == 30 and bits["delta"] == 13
    assert bits["interpolation"] == 3
    assert 64 / 0.040 == 1600.0  # bit/s
    assert len(lq.INTERPOLATION_CHOICES) == 1 << bits["interpolation"]
    assert sum(lq.DELTA_SIZES) * 2 == 1 << bits["delta"]


def test_layout_matches_the_diagram_in_the_docstring():
    row = next(line for line in lq.__doc__.splitlines() if line.strip().startswith("field"))
    letters = row.split("|", 1)[1].replace("|", "")
    assert len(letters) == 64
    for letter, name in DIAGRAM_LETTERS.items():
        fields = [0] * len(lq.FIELD_NAMES)
        fields[lq.FIELD_NAMES.index(name)] = (1 << lq.FIELD_BITS[name]) - 1
        value = int.from_bytes(lq.pack_packet(fields), "big")
        set_bits = "".join(letter if value >> (63 - i) & 1 else "." for i in range(64))
        assert set_bits == "".join(c if c == letter else "." for c in letters), name


def test_pack_unpack_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(500):
        fields = lq.PacketFields(*(int(rng.integers(0, 1 << lq.FIELD_BITS[n])) for n in lq.FIELD_NAMES))
        packet = lq.pack_packet(fields)
        assert len(packet) == 8 and lq.unpack_packet(packet) == fields
    assert lq.pack_packet([127, 63, 7, 3, 1023, 1023, 1023, 8191, 7]) == b"\xff" * 8


def test_bad_packets_and_fields_raise():
    with pytest.raises(BitstreamError):
        lq.unpack_packet(b"\x00" * 7)
    with pytest.raises(BitstreamError):
        lq.unpack_packet(b"\x00" * 9)
    with pytest.raises(ParameterError):
        lq.pack_packet([128, 0, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ParameterError):
        lq.pack_packet([0, 0, 0, 0, 0, 0, 0, 0, -1])


def test_speech_packets_are_8_bytes_and_fields_in_range(speech, coded):
    packets, decoded = coded
    assert len(packets) == speech.n_frames // 4
    assert all(isinstance(p, bytes) and len(p) == 8 for p in packets)
    fields = np.array([lq.unpack_packet(p) for p in packets])
    limits = np.array([1 << lq.FIELD_BITS[n] for n in lq.FIELD_NAMES])
    assert np.all((fields >= 0) & (fields < limits))
    assert decoded.cepstrum.shape == speech.cepstrum.shape
    assert np.all((32 <= decoded.pitch_period) & (decoded.pitch_period <= 256))
    assert np.all((0 < decoded.pitch_correlation) & (decoded.pitch_correlation < 1))


def test_quantized_features_are_close_to_the_originals(speech, coded):
    _, decoded = coded
    distance = cepstral_distance_db(speech.cepstrum, decoded.cepstrum)
    assert distance.mean() < MAX_MEAN_DISTANCE_DB
    voiced = speech.pitch_correlation > 0.6
    relative = np.abs(decoded.pitch_period[voiced] / speech.pitch_period[voiced] - 1)
    assert np.median(relative) < 0.03
    assert np.mean(decoded.pitch_correlation[voiced] >= lq.VOICING_THRESHOLD) > 0.9


def test_decoding_is_identical_in_another_process(coded, codebooks):
    packets, decoded = coded
    script = (
        "import sys, numpy as np\n"
        "from nsac.codecs.lpcnet.codebooks import shipped_codebooks\n"
        "from nsac.quant import lpcnet_quantizer as lq\n"
        "packets = [bytes.fromhex(h) for h in sys.stdin.read().split()]\n"
        "d = lq.decode(packets, codebooks=shipped_codebooks())\n"
        "out = np.concatenate([d.cepstrum.ravel(), d.pitch_period, d.pitch_correlation])\n"
        "sys.stdout.write(out.tobytes().hex())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], input=" ".join(p.hex() for p in packets),
                            capture_output=True, text=True, check=True)
    here = np.concatenate([decoded.cepstrum.ravel(), decoded.pitch_period, decoded.pitch_correlation])
    assert result.stdout == here.tobytes().hex()


def test_any_packet_decodes(codebooks):
    rng = np.random.default_rng(1)
    packets = [rng.bytes(8) for _ in range(300)] + [b"\x00" * 8, b"\xff" * 8]
    decoded = lq.decode(packets, codebooks=codebooks)
    assert np.all(np.isfinite(decoded.cepstrum))
    assert np.all((32 <= decoded.pitch_period) & (decoded.pitch_period <= 256))


def test_decoding_from_the_middle_with_the_memory_equals_the_whole(coded, codebooks):
    packets, decoded = coded
    k = len(packets) // 2
    memory = decoded.cepstrum[4 * k - 1]
    tail = lq.decode(packets[k:], codebooks=codebooks, memory=memory)
    np.testing.assert_array_equal(tail.cepstrum, decoded.cepstrum[4 * k:])
    np.testing.assert_array_equal(tail.pitch_period, decoded.pitch_period[4 * k:])


def test_encoder_choices_are_the_best_the_decoder_offers(speech, coded, codebooks):
    packets, decoded = coded
    fields = np.array([lq.unpack_packet(p) for p in packets])
    frames = speech.cepstrum.reshape(-1, 4, 18)
    column = lq.FIELD_NAMES.index("interpolation")
    for p in range(1, len(packets), 7):
        memory = decoded.cepstrum[4 * p - 1]
        errors = []
        for choice in range(len(lq.INTERPOLATION_CHOICES)):
            trial = fields[p].copy()
            trial[column] = choice
            out = lq.dequantize_packets(trial[None], codebooks=codebooks, memory=memory).cepstrum
            errors.append(np.sum((out[[0, 2]] - frames[p, [0, 2]]) ** 2))
        assert errors[fields[p, column]] == pytest.approx(min(errors))


def test_m_best_codes_the_end_frame_at_least_as_well_as_greedy(speech, codebooks):
    args = (speech.cepstrum, speech.pitch_period, speech.pitch_correlation)
    ends = speech.cepstrum[3::4]
    error = {}
    for survivors in (1, lq.DEFAULT_SURVIVORS):
        fields = lq.quantize_packets(*args, codebooks=codebooks, survivors=survivors)
        decoded = lq.dequantize_packets(fields, codebooks=codebooks).cepstrum[3::4]
        error[survivors] = np.mean(np.sum((decoded[:, 1:] - ends[:, 1:]) ** 2, axis=1))
    assert error[lq.DEFAULT_SURVIVORS] <= error[1]


def test_pitch_fields_code_a_gliding_voiced_pitch():
    period = np.array([[100.0, 102.0, 104.0, 106.0]])
    pitch, modulation, correlation = lq.quantize_pitch(period, np.full((1, 4), 0.9), np.zeros((1, 4)))
    decoded, value = lq.pitch_values(pitch, modulation, correlation)
    np.testing.assert_allclose(decoded, period, rtol=0.02)
    assert modulation[0] > lq.MODULATION_LEVELS + 1  # rising
    assert value[0, 0] == pytest.approx(0.9125)
    unvoiced = lq.quantize_pitch(period, np.full((1, 4), 0.1), np.zeros((1, 4)))
    assert unvoiced[1][0] == 0


def test_shipped_codebooks_are_identified(codebooks):
    assert len(codebooks.sha256) == 64
    assert [s.shape for s in codebooks.stages] == [(1024, 17)] * 3
    assert [d.shape for d in codebooks.delta] == [(2048, 18), (1024, 18), (1024, 18)]


# Golden values: the shipped example's packets 20..25 (first 3 s, codebooks f83280d9), and what three fixed
# packets decode to. A change here changes the bitstream: bump the codebook file and the format version.
GOLDEN_PACKETS = ["c954e35d0793ef85", "c354e35d0793486e", "b754f2b4ca1137f6", "8b50e351a5bea5de",
                  "8754235afd4cb8f6", "8350e3501711d80d"]
GOLDEN_INPUT = ["0123456789abcdef", "fedcba9876543210", "00ff00ff00ff00ff"]
GOLDEN_END_FRAMES = [
    [-14.0, -1.123, 1.1809, 2.3147, -2.0805, -1.5364, -1.7495, -0.2521, -0.8786, -0.4343, -0.5715, -0.1411,
     -0.3817, 0.0494, -0.2225, -0.1553, -0.3843, 0.0174],
    [17.75, -3.8407, 2.7397, 2.9145, -0.5906, -1.1299, -0.2044, 0.0625, -0.7, -0.5863, -0.5618, 0.1599,
     -0.0717, 0.0814, -0.0789, -0.0443, 0.005, 0.1266],
    [-14.0, -3.1309, 2.3386, 1.4624, -0.42, -0.601, -0.8501, -0.0616, -0.6204, -0.2366, -0.1231, 0.182,
     -0.233, -0.4661, -0.2443, 0.0378, -0.0532, 0.0333],
]
GOLDEN_PERIODS = [107.8155039, 105.9404517, 104.0653994, 102.1903472, 78.0168739, 78.0168739, 78.0168739,
                  78.0168739, 81.8741479, 86.6435157, 91.4128836, 96.1822514]
GOLDEN_CORRELATIONS = [0.5625] * 4 + [0.7375] * 4 + [0.3875] * 4


def test_golden_packets(speech, codebooks):
    packets = lq.encode(speech.cepstrum, speech.pitch_period, speech.pitch_correlation, codebooks=codebooks)
    assert [p.hex() for p in packets[20:26]] == GOLDEN_PACKETS


def test_golden_decoding(codebooks):
    decoded = lq.decode([bytes.fromhex(h) for h in GOLDEN_INPUT], codebooks=codebooks)
    np.testing.assert_allclose(decoded.cepstrum[[3, 7, 11]], GOLDEN_END_FRAMES, atol=5e-5)
    np.testing.assert_allclose(decoded.pitch_period, GOLDEN_PERIODS, atol=1e-6)
    np.testing.assert_allclose(decoded.pitch_correlation, GOLDEN_CORRELATIONS, atol=1e-12)
