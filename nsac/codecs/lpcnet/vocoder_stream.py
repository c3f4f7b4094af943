"""From decoded features to audio, packet by packet: what `lpcnet` and `lpcnet-pred` decoders share.

A packet brings the features of four 10 ms frames. Frame ``k`` can be synthesized once the features of
frame ``k + 2`` are known (the frame-rate network's look-ahead), so after packet ``i`` (frames ``4i..4i+3``)
the frames ``4i - 2 .. 4i + 1`` are synthesized: 640 samples per packet, two frames (320 samples) of decoder
delay. Before the first frame the features are the first frame's, repeated; the output of the two frames
before the stream starts is silence. Everything is state of one :class:`FeatureStreamSynthesizer`, so a
stream decoded in any number of pieces gives the same samples.

The weights: :func:`load_vocoder` loads a registered LPCNet model once per process (they are read-only).
"""

from __future__ import annotations

import functools

import numpy as np

from nsac.codecs.lpcnet.model import FEATURE_CONTEXT_FRAMES, LPCNetConfig, LPCNetModel
from nsac.codecs.lpcnet.synthesis import DEFAULT_SEED, Vocoder
from nsac.dsp.features import FRAME_SIZE, lpc_from_cepstrum, network_input, pitch_embedding_index
from nsac.dsp.lpc import PREEMPHASIS_COEFFICIENT, deemphasis
from nsac.errors import WeightsError

DEFAULT_WEIGHTS = "lpcnet"


def load_vocoder(name: str = DEFAULT_WEIGHTS) -> Vocoder:
    """The vocoder of the registered weights `name` (checked against their sha256; read once per process
    and pretrained folder)."""
    from nsac.pretrained import pretrained_dir

    return _load_vocoder(name, str(pretrained_dir()))


@functools.lru_cache(maxsize=4)
def _load_vocoder(name: str, directory: str) -> Vocoder:
    from nsac.codecs.lpcnet.codebooks import CODEBOOKS_SHA256
    from nsac.pretrained import load_config, load_into

    config = load_config(name, directory=directory)
    if config.get("task") != "lpcnet":
        raise WeightsError(f"weights {name!r} are a {config.get('task')!r} model, not an LPCNet vocoder")
    if config.get("codebooks_sha256") != CODEBOOKS_SHA256:
        theirs = str(config.get("codebooks_sha256"))[:8]
        raise WeightsError(f"weights {name!r} were trained for other quantizer codebooks ({theirs}, this nsac "
                           f"has {CODEBOOKS_SHA256[:8]}): use the weights that came with this nsac")
    section = {k: v for k, v in config["model"].items() if k != "name"}
    model = LPCNetModel(LPCNetConfig.from_dict(section))
    load_into(model, name, directory=directory)
    return Vocoder(model.eval())


class FeatureStreamSynthesizer:
    """Push the decoded features of whole packets, get the audio they complete (de-emphasised, [-1, 1])."""

    def __init__(self, vocoder: Vocoder, *, seed: int = DEFAULT_SEED) -> None:
        self.vocoder = vocoder
        self.state = vocoder.new_state(seed)
        self._inputs = np.zeros((0, 20), dtype=np.float32)
        self._pitch = np.zeros(0, dtype=np.int64)
        self._lpc = np.zeros((0, 17), dtype=np.float32)
        self._correlation = np.zeros(0, dtype=np.float64)
        self._first = True
        self._previous_output = 0.0

    def push(self, cepstrum: np.ndarray, pitch_period: np.ndarray,
             pitch_correlation: np.ndarray) -> np.ndarray:
        """Features of 4 frames -> 640 samples (float32); frames wait 2 frames for their look-ahead."""
        cepstrum = np.asarray(cepstrum, dtype=np.float64)
        inputs = network_input(cepstrum, pitch_period, pitch_correlation)
        pitch = pitch_embedding_index(pitch_period)
        lpc, _ = lpc_from_cepstrum(cepstrum)
        correlation = np.asarray(pitch_correlation, dtype=np.float64)
        n_new = cepstrum.shape[0]
        silence = 0
        if self._first:
            c = FEATURE_CONTEXT_FRAMES
            inputs = np.concatenate([np.repeat(inputs[:1], c, axis=0), inputs])
            pitch = np.concatenate([np.repeat(pitch[:1], c), pitch])
            lpc = np.concatenate([np.repeat(lpc[:1], c, axis=0), lpc])
            correlation = np.concatenate([np.repeat(correlation[:1], c), correlation])
            silence = c * FRAME_SIZE
            self._first = False
        self._inputs = np.concatenate([self._inputs, inputs])
        self._pitch = np.concatenate([self._pitch, pitch])
        self._lpc = np.concatenate([self._lpc, lpc.astype(np.float32)])
        self._correlation = np.concatenate([self._correlation, correlation])
        # the buffer holds 2 frames of context before the first frame still to synthesize; ready: all but
        # the last 2 (their look-ahead has not arrived)
        c = FEATURE_CONTEXT_FRAMES
        n_ready = self._inputs.shape[0] - 2 * c
        conditioning = self.vocoder.conditioning(self._inputs, self._pitch)
        excitation_frames = slice(c, c + n_ready)
        signal = self.vocoder.synthesize(self.state, conditioning, self._lpc[excitation_frames],
                                         self._correlation[excitation_frames])
        keep = slice(n_ready, None)
        self._inputs, self._pitch = self._inputs[keep], self._pitch[keep]
        self._lpc, self._correlation = self._lpc[keep], self._correlation[keep]
        audio = deemphasis(signal.astype(np.float64), coefficient=PREEMPHASIS_COEFFICIENT,
                           previous=self._previous_output)
        if audio.size:
            self._previous_output = float(audio[-1])
        out = np.concatenate([np.zeros(silence), audio])
        assert out.size == n_new * FRAME_SIZE
        return np.clip(out, -1.0, 1.0).astype(np.float32)
