"""The predictive 1.47 kb/s LPCNet quantizer: 22-byte super-packets, any bytes decode, the encoder's decoded
features are the decoder's, pieces equal wholes, and the trained predictor earns its keep on real speech."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nsac.codecs.lpcnet.codebooks import shipped_codebooks
from nsac.codecs.lpcnet.pred import TABLES_FILE, TABLES_SHA256, shipped_tables
from nsac.dsp.features import cepstral_distance_db, compute_features
from nsac.errors import BitstreamError, ParameterError, WeightsError
from nsac.quant import lpcnet_pred_quantizer as pq
from nsac.quant import lpcnet_quantizer as lq
from nsac.quant.vq import load_codebooks


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """BLAS on one thread: these matrices are small, and the machine may be shared."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the test dependencies
        yield
        return
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def speech_features():
    """Features of the shipped example speech (7.9 s), whole super-packets."""
    from nsac.audio import read
    from nsac.examples import example_path

    audio, rate = read(example_path("speech"))
    assert rate == 16000
    x = audio[0].astype(np.float64)
    f = compute_features(x[: x.size // 1920 * 1920])
    return f.cepstrum, f.pitch_period, f.pitch_correlation


def test_allocation_fills_22_bytes_and_the_rate_is_under_1500_bps():
    a = pq.DEFAULT_ALLOCATION
    assert sum(a.subpacket_bits(j) for j in range(pq.SUBPACKETS)) == pq.SUPERPACKET_BITS == 176
    assert pq.SUPERPACKET_BITS / 0.120 <= 1500
    with pytest.raises(ParameterError):
        pq.BitAllocation(5, ((9, 9, 9), (9, 9, 9), (9, 9, 9)))


def test_pack_unpack_round_trip_and_errors():
    rng = np.random.default_rng(0)
    a = pq.DEFAULT_ALLOCATION
    for _ in range(50):
        fields = np.array([[rng.integers(0, 1 << b) for b in a.field_bits(j).values()] for j in range(3)])
        packet = pq.pack_superpacket(fields)
        assert len(packet) == pq.SUPERPACKET_BYTES
        np.testing.assert_array_equal(pq.unpack_superpacket(packet), fields)
    with pytest.raises(BitstreamError):
        pq.unpack_superpacket(b"\x00" * 21)
    fields[2, 6] = 256  # the short last stage of sub-packet 2 has 8 bits
    with pytest.raises(ParameterError):
        pq.pack_superpacket(fields)


def test_every_byte_pattern_decodes_to_bounded_features():
    tables = shipped_tables()
    rng = np.random.default_rng(1)
    packets = [bytes(22), b"\xff" * 22] + [rng.bytes(22) for _ in range(60)]
    features = pq.decode(packets, tables=tables)
    assert features.cepstrum.shape == (12 * len(packets), 18)
    for array in features:
        assert np.isfinite(array).all()
    margin = 10.0  # the middle frame's delta may leave the end frames' range a little
    assert np.all(features.cepstrum >= tables.cepstrum_min - margin)
    assert np.all(features.cepstrum <= tables.cepstrum_max + margin)
    assert np.all((features.pitch_period >= 32) & (features.pitch_period <= 256))


def test_encoder_and_decoder_agree_and_pieces_equal_whole(speech_features):
    tables = shipped_tables()
    cepstrum, period, correlation = speech_features
    encoder = pq.PredictiveEncoder(tables)
    packets = encoder.encode(cepstrum, period, correlation)
    n_super = cepstrum.shape[0] // 12
    assert len(packets) == n_super and {len(p) for p in packets} == {22}
    decoded = pq.decode(packets, tables=tables)
    np.testing.assert_array_equal(decoded.cepstrum[-4:], encoder.state.frames[0])
    pieces = pq.PredictiveEncoder(tables)
    split = []
    for start, stop in ((0, 1), (1, 4), (4, n_super)):
        rows = slice(12 * start, 12 * stop)
        split += pieces.encode(cepstrum[rows], period[rows], correlation[rows])
    assert split == packets
    assert pq.encode(cepstrum, period, correlation, tables=tables) == packets


def test_tables_are_checked_by_their_hash(tmp_path):
    copy = tmp_path / TABLES_FILE.name
    shutil.copy(TABLES_FILE, copy)
    load_codebooks(copy, sha256=TABLES_SHA256)
    data = bytearray(copy.read_bytes())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightsError):
        load_codebooks(copy, sha256=TABLES_SHA256)
    tensors, _ = load_codebooks(TABLES_FILE, sha256=TABLES_SHA256)
    del tensors["energy"]
    with pytest.raises(WeightsError):
        pq.PredictiveTables.from_tensors(tensors, base=shipped_codebooks())


def _distance(tables, features) -> float:
    packets = pq.encode(*features, tables=tables)
    decoded = pq.decode(packets, tables=tables)
    return float(np.mean(cepstral_distance_db(features[0], decoded.cepstrum)))


def test_trained_predictor_beats_a_zeroed_one_and_matches_the_1600_bps_quantizer(speech_features):
    tables = shipped_tables()
    predictor = tables.predictor
    zeroed = pq.PredictorWeights(*(np.zeros_like(getattr(predictor, n)) if n.endswith("_out")
                                   else getattr(predictor, n) for n in pq.PredictorWeights.TENSOR_NAMES))
    tensors = tables.to_tensors()
    tensors.update({f"predictor.{n}": getattr(zeroed, n) for n in pq.PredictorWeights.TENSOR_NAMES})
    broken = pq.PredictiveTables.from_tensors(tensors, base=tables.base)
    ours = _distance(tables, speech_features)
    without = _distance(broken, speech_features)
    tensors = tables.to_tensors()
    tensors["stage1_512"] = tensors["stage1_512"][np.random.default_rng(0).permutation(512)]
    mismatched = pq.PredictiveTables.from_tensors(tensors, base=tables.base)
    packets = pq.encode(*speech_features, tables=tables)
    shuffled = float(np.mean(cepstral_distance_db(speech_features[0],
                                                  pq.decode(packets, tables=mismatched).cepstrum)))
    books = shipped_codebooks()
    baseline = float(np.mean(cepstral_distance_db(speech_features[0], lq.decode(
        lq.encode(*speech_features, codebooks=books), codebooks=books).cepstrum)))
    # measured with the shipped tables: ours 1.77 dB, zeroed 1.83 dB, 1.6 kb/s 1.88 dB
    assert ours < 1.85
    assert ours < without - 0.03
    assert ours < shuffled - 0.5
    assert ours < baseline - 0.05


def test_concealment_keeps_the_decoder_running(speech_features):
    tables = shipped_tables()
    packets = pq.encode(*speech_features, tables=tables)
    decoder = pq.PredictiveDecoder(tables)
    decoder.decode(packets[0])
    last = decoder.state.frames[0, -1]
    decoder.conceal(np.repeat(last[None], 12, axis=0), np.full(12, 100.0), np.zeros(12))
    assert decoder.state.position == 0
    out = decoder.decode(packets[2])
    assert np.isfinite(out.cepstrum).all()
    with pytest.raises(ParameterError):
        decoder.conceal(np.zeros((5, 18)), np.zeros(5), np.zeros(5))
