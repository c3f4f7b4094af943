"""LPCNet's frame features: 18 Bark-band cepstral coefficients, pitch period and correlation per 10 ms frame.

Valin & Skoglund, "LPCNet: improving neural speech synthesis through linear prediction", ICASSP 2019, and
"A real-time wideband neural vocoder at 1.6 kb/s using LPCNet", Interspeech 2019. At 16 kHz, on the
pre-emphasised (``1 - 0.85 z^-1``) signal on the 16-bit scale:

* framing: frame ``k`` owns samples ``[160 k, 160 k + 160)``; its 20 ms analysis window is centred on them,
  ``[160 k - 80, 160 k + 240)`` (so the encoder looks 80 samples, 5 ms, ahead)::

        samples   |....:....|....:....|....:....|
        frames    |   k-1   |    k    |   k+1   |        160 samples each
        window k       /‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾\\              320 samples, power-complementary halves

* cepstrum: band energies of the 18 triangular bands (:mod:`nsac.dsp.lpcnet_bands`), ``log10(1e-2 + E)``
  floored at 80 dB below the loudest band so far and 25 dB below the previous band, orthonormal DCT, minus 4
  on ``c0``;
* LPC of order 16 from the cepstrum alone (:func:`lpc_from_cepstrum`): back to band energies, linearly
  interpolated to a power spectrum, inverse FFT to an autocorrelation, noise floor and lag window,
  Levinson-Durbin. The decoder calls the same function on the dequantized cepstrum;
* pitch: the LPC residual of each frame (its own LPC), low-passed by ``1 + 0.7 z^-1``, goes through
  :func:`nsac.dsp.pitch.estimate_pitch` (5 ms sub-frames, 32..256 samples, path decided per 40 ms block);
  a frame's period and correlation are the means over its two sub-frames.

The sample-rate network of LPCNet predicts the pre-emphasised signal of frame ``k``, ``preemphasis(audio)
[160 k : 160 k + 160]``, with the frame's LPC (see :func:`network_input` for the frame-rate network's input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from nsac.dsp import lpcnet_bands
from nsac.dsp.lpc import PREEMPHASIS_COEFFICIENT, lag_window, levinson_durbin, preemphasis
from nsac.dsp.pitch import PITCH_MAX_PERIOD, PITCH_MIN_PERIOD, SUBFRAME_SIZE, PitchTracker, estimate_pitch
from nsac.errors import AudioError, ParameterError

SAMPLE_RATE_HZ = 16000
FRAME_SIZE = 160
"""Samples per 10 ms frame."""
WINDOW_SIZE = 320
"""Samples per 20 ms analysis window."""
LOOKAHEAD = (WINDOW_SIZE - FRAME_SIZE) // 2
"""Samples the analysis window reaches past its frame (5 ms)."""
N_BANDS = lpcnet_bands.N_BANDS
LPC_ORDER = 16
FRAMES_PER_PITCH_BLOCK = 4
"""The pitch path is decided per 40 ms, one packet of the 1.6 kb/s quantizer."""
N_NETWORK_FEATURES = N_BANDS + 2
"""Frame-rate network input: 18 cepstral coefficients, pitch and correlation (see :func:`network_input`)."""

PCM_SCALE = 32768.0
"""Features are computed on the 16-bit scale: the floors below are in its units."""
LOG_ENERGY_FLOOR = 1e-2
"""Added to every band energy before the log10."""
BAND_RANGE_LOG10 = 8.0
"""No band is kept more than 80 dB below the loudest band below it..."""
BAND_DECAY_LOG10 = 2.5
"""...nor more than 25 dB below its lower neighbour (that keeps the LPC fit away from spectral holes)."""
C0_OFFSET = 4.0
"""Subtracted from c0 so that typical speech has c0 around zero."""
LPC_WHITE_NOISE_DB = -40.0
"""White-noise correction of the autocorrelation computed from the cepstrum, dB below r0."""
LPC_NOISE_FLOOR = WINDOW_SIZE / 12.0 / 38.0
"""An absolute floor added to r0 (about 0.7, from rounding noise on the 16-bit scale) for silent frames."""
LPC_LAG_WINDOW_HZ = 28.0
"""Gaussian lag window applied before Levinson-Durbin: widens formant peaks to tens of Hz."""
PITCH_LOWPASS = 0.7
"""The residual is filtered by ``1 + 0.7 z^-1`` before the pitch search (pitch lives in the low band)."""


@dataclass(frozen=True)
class Features:
    """LPCNet's per-frame features of one signal (n frames of 10 ms)."""

    cepstrum: NDArray[np.float64]
    """Band cepstrum, shape (n, 18)."""
    pitch_period: NDArray[np.float64]
    """Pitch period in samples at 16 kHz (32..256; unvoiced frames get a period too), shape (n,)."""
    pitch_correlation: NDArray[np.float64]
    """Normalised correlation at that period, about 0 (noise) to 1 (periodic), shape (n,)."""
    lpc: NDArray[np.float64]
    """``[1, a1, ..., a16]`` from :func:`lpc_from_cepstrum` of ``cepstrum``, shape (n, 17)."""

    @property
    def n_frames(self) -> int:
        return int(self.cepstrum.shape[0])


def analysis_window() -> NDArray[np.float64]:
    """The 320-sample window, shape (320,): ``sin(pi/2 sin^2(pi (n + 1/2) / 320))`` over 160, mirrored.

    The Vorbis power-complementary shape: overlapping windows of consecutive frames square-sum to one.
    """
    n = np.arange(WINDOW_SIZE - FRAME_SIZE)
    half = np.sin(0.5 * np.pi * np.sin(0.5 * np.pi * (n + 0.5) / (WINDOW_SIZE - FRAME_SIZE)) ** 2)
    return np.concatenate([half, half[::-1]])


def frame_power_spectra(x: ArrayLike) -> NDArray[np.float64]:
    """Power spectra of the analysis windows of a pre-emphasised, 16-bit-scale signal.

    Parameters
    ----------
    x : shape (samples,); frame ``k`` reads ``x[160 k - 80 : 160 k + 240]`` (zeros outside the signal)

    Returns
    -------
    ``|FFT(window * x) / 320|^2``, shape (ceil(samples / 160), 161)
    """
    x = np.asarray(x, dtype=np.float64)
    n_frames = -(-x.size // FRAME_SIZE)
    padded = np.zeros(n_frames * FRAME_SIZE + 2 * LOOKAHEAD)
    padded[LOOKAHEAD: LOOKAHEAD + x.size] = x
    frames = sliding_window_view(padded, WINDOW_SIZE)[::FRAME_SIZE][:n_frames]
    spectrum = np.fft.rfft(frames * analysis_window(), axis=-1) / WINDOW_SIZE
    return spectrum.real**2 + spectrum.imag**2


def log_band_energies(power: ArrayLike) -> NDArray[np.float64]:
    """``log10(1e-2 + E)`` of the 18 bands, floored, shape (..., 18) from a power spectrum (..., 161)."""
    energies = lpcnet_bands.band_energies(power)
    raw = np.log10(LOG_ENERGY_FLOOR + energies)
    out = np.empty_like(raw)
    loudest = np.full(raw.shape[:-1], -2.0)
    follow = np.full(raw.shape[:-1], -2.0)
    for band in range(N_BANDS):
        value = np.maximum(loudest - BAND_RANGE_LOG10, np.maximum(follow - BAND_DECAY_LOG10, raw[..., band]))
        out[..., band] = value
        loudest = np.maximum(loudest, value)
        follow = np.maximum(follow - BAND_DECAY_LOG10, value)
    return out


def cepstrum_from_power(power: ArrayLike) -> NDArray[np.float64]:
    """The 18 cepstral coefficients of power spectra, shape (..., 18) from (..., 161)."""
    cepstrum = lpcnet_bands.cepstrum_from_log_bands(log_band_energies(power))
    cepstrum[..., 0] -= C0_OFFSET
    return cepstrum


def lpc_from_cepstrum(cepstrum: ArrayLike, *,
                      order: int = LPC_ORDER) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """LPC of the spectral envelope that a band cepstrum describes (what the decoder does every frame).

    Parameters
    ----------
    cepstrum : shape (..., 18)
    order : LPC order

    Returns
    -------
    a : ``[1, a1, ..., a_order]``, shape (..., order + 1)
    error : prediction-error power (16-bit scale, over the window), shape (...)
    """
    c = np.array(cepstrum, dtype=np.float64)
    if c.shape[-1] != N_BANDS:
        raise ParameterError(f"a cepstrum has {N_BANDS} coefficients, got shape {c.shape}")
    c[..., 0] += C0_OFFSET
    bands = 10.0 ** lpcnet_bands.log_bands_from_cepstrum(c) * lpcnet_bands.band_compensation()
    power = lpcnet_bands.interpolate_bands(bands)
    # The power spectrum is real and even, so its inverse DFT (unscaled, as a sum) is the autocorrelation.
    r = np.fft.irfft(power, n=WINDOW_SIZE, axis=-1)[..., : order + 1] * WINDOW_SIZE
    r[..., 0] += LPC_NOISE_FLOOR
    r = lag_window(r, bandwidth_hz=LPC_LAG_WINDOW_HZ, sample_rate_hz=SAMPLE_RATE_HZ,
                   white_noise_db=LPC_WHITE_NOISE_DB)
    result = levinson_durbin(r, order=order)
    return result.a, result.error


def frame_residual(x: ArrayLike, a: ArrayLike) -> NDArray[np.float64]:
    """The LPC residual of each frame with that frame's own filter (an FIR on the input: no state to carry).

    Parameters
    ----------
    x : pre-emphasised signal, shape (n_frames * 160,)
    a : per-frame filters, shape (n_frames, p + 1)

    Returns
    -------
    shape (n_frames * 160,)
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    order = a.shape[-1] - 1
    padded = np.concatenate([np.zeros(order), x])
    # history[n] = [x[n], x[n-1], ..., x[n-p]]
    history = sliding_window_view(padded, order + 1)[:, ::-1]
    per_sample = np.repeat(a, FRAME_SIZE, axis=0)[: x.size]
    return np.einsum("nk,nk->n", history[: x.size], per_sample)


def compute_features(audio: ArrayLike, *, sample_rate_hz: int = SAMPLE_RATE_HZ,
                     pitch_tracker: PitchTracker | None = None,
                     pitch_frames: tuple[int, int] | None = None) -> Features:
    """LPCNet's features of a 16 kHz signal, one set per 10 ms frame.

    Parameters
    ----------
    audio : float signal in [-1, 1], shape (samples,) or (1, samples)
    sample_rate_hz : must be 16000 (resample with :func:`nsac.audio.resample` first)
    pitch_tracker : streaming: the tracker that carries the pitch path from the previous piece
    pitch_frames : streaming: (first, stop) frames whose pitch is tracked (the others are history for
        the pitch search and get period 32); ``first`` a multiple of 4 (the pitch block)

    Returns
    -------
    Features with ``ceil(samples / 160)`` frames (the signal is zero-padded past its end)
    """
    if sample_rate_hz != SAMPLE_RATE_HZ:
        raise ParameterError(f"LPCNet features need {SAMPLE_RATE_HZ} Hz audio, got {sample_rate_hz} Hz")
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1 or x.size == 0:
        raise AudioError(f"compute_features needs mono audio of shape (samples,), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AudioError("audio contains NaN or infinite samples")
    x = preemphasis(x * PCM_SCALE, coefficient=PREEMPHASIS_COEFFICIENT)
    cepstrum = cepstrum_from_power(frame_power_spectra(x))
    a, _ = lpc_from_cepstrum(cepstrum)
    n_frames = cepstrum.shape[0]
    padded = np.zeros(n_frames * FRAME_SIZE)
    padded[: x.size] = x
    residual = frame_residual(padded, a)
    lowpassed = residual + PITCH_LOWPASS * np.concatenate([[0.0], residual[:-1]])
    per_frame = FRAME_SIZE // SUBFRAME_SIZE
    tracked = None if pitch_frames is None else (pitch_frames[0] * per_frame, pitch_frames[1] * per_frame)
    track = estimate_pitch(lowpassed, subframe_size=SUBFRAME_SIZE, min_period=PITCH_MIN_PERIOD,
                           max_period=PITCH_MAX_PERIOD,
                           block=FRAMES_PER_PITCH_BLOCK * FRAME_SIZE // SUBFRAME_SIZE,
                           tracker=pitch_tracker, tracked=tracked)
    period = track.period.reshape(n_frames, per_frame).mean(axis=1)
    correlation = track.correlation.reshape(n_frames, per_frame).mean(axis=1)
    return Features(cepstrum, period, correlation, a)


def network_input(cepstrum: ArrayLike, pitch_period: ArrayLike,
                  pitch_correlation: ArrayLike) -> NDArray[np.float32]:
    """The frame-rate network's input, ``[c0..c17, (period - 100) / 50, correlation - 0.5]`` as in LPCNet.

    Parameters
    ----------
    cepstrum : shape (..., 18)
    pitch_period : samples, shape (...)
    pitch_correlation : shape (...)

    Returns
    -------
    shape (..., 20), float32
    """
    cepstrum = np.asarray(cepstrum, dtype=np.float64)
    pitch = (np.asarray(pitch_period, dtype=np.float64) - 100.0) / 50.0
    correlation = np.asarray(pitch_correlation, dtype=np.float64) - 0.5
    return np.concatenate([cepstrum, pitch[..., None], correlation[..., None]], axis=-1).astype(np.float32)


def pitch_embedding_index(pitch_period: ArrayLike) -> NDArray[np.int64]:
    """The integer period (``round``, clipped to 32..256) that indexes the pitch embedding, shape kept."""
    period = np.rint(np.asarray(pitch_period, dtype=np.float64))
    return np.clip(period, PITCH_MIN_PERIOD, PITCH_MAX_PERIOD).astype(np.int64)


def cepstral_distance_db(reference: ArrayLike, other: ArrayLike, *,
                         include_c0: bool = True) -> NDArray[np.float64]:
    """RMS difference of the band levels in dB, per frame: ``10 ||c1 - c2|| / sqrt(18)``.

    The DCT being orthonormal this is the log-spectral distance over the 18 bands (after the floors);
    ``include_c0=False`` leaves out the overall level and measures the spectral shape only.

    Parameters
    ----------
    reference, other : cepstra, shape (..., 18)

    Returns
    -------
    shape (...)
    """
    diff = np.asarray(reference, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    if not include_c0:
        diff = diff[..., 1:]
    return 10.0 * np.sqrt(np.sum(diff**2, axis=-1) / N_BANDS)
