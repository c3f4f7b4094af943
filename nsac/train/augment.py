"""Augmentations of training crops: gain, EQ, speed, coloured noise and reverberation from synthetic rooms.

Each function is pure given its numpy Generator, so a crop's augmentation is fixed by the seed the dataset
derives for it. Signals are float (samples,) at `sample_rate_hz`.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
from numpy.typing import NDArray

from nsac.audio import resample
from nsac.train.config import AugmentConfig

Signal = NDArray[np.float32]
#: peaking-filter quality factors, drawn log-uniformly
EQ_Q_MIN = 0.5
EQ_Q_MAX = 2.0
#: noise colours and the slope of their power spectral density (power ~ f ** -slope)
NOISE_SLOPES = {"white": 0.0, "pink": 1.0, "brown": 2.0}
#: a synthetic room: the tail starts after this pre-delay and is cut where it has decayed by 60 dB
REVERB_PREDELAY_MS = 2.0
_DB60_NEPERS = math.log(1000.0)  # amplitude decay of 60 dB, in nepers
_POWER_FLOOR = 1e-12


def _db_to_amplitude(db: float) -> float:
    return 10 ** (db / 20)


def apply_gain(x: Signal, *, gain_db: float) -> Signal:
    return (x * _db_to_amplitude(gain_db)).astype(np.float32)


def peaking_biquad(*, centre_hz: float, gain_db: float, q: float, sample_rate_hz: int
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(b, a) of a peaking EQ (RBJ Audio EQ Cookbook): gain_db at centre_hz, unity far from it."""
    amplitude = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * centre_hz / sample_rate_hz
    alpha = math.sin(w0) / (2 * q)
    b = np.array([1 + alpha * amplitude, -2 * math.cos(w0), 1 - alpha * amplitude])
    a = np.array([1 + alpha / amplitude, -2 * math.cos(w0), 1 - alpha / amplitude])
    return b / a[0], a / a[0]


def random_eq(x: Signal, *, sample_rate_hz: int, rng: np.random.Generator, config: AugmentConfig) -> Signal:
    """`eq_bands` peaking filters at log-uniform frequencies with gains uniform in +-eq_gain_db."""
    top_hz = min(config.eq_max_hz, 0.45 * sample_rate_hz)
    low_hz = min(config.eq_min_hz, top_hz)
    y = x.astype(np.float64)
    for _ in range(config.eq_bands):
        centre_hz = math.exp(rng.uniform(math.log(low_hz), math.log(top_hz)))
        gain_db = rng.uniform(-config.eq_gain_db, config.eq_gain_db)
        q = math.exp(rng.uniform(math.log(EQ_Q_MIN), math.log(EQ_Q_MAX)))
        b, a = peaking_biquad(centre_hz=centre_hz, gain_db=gain_db, q=q, sample_rate_hz=sample_rate_hz)
        y = scipy.signal.lfilter(b, a, y)
    return y.astype(np.float32)


def change_speed(x: Signal, *, factor: float, sample_rate_hz: int) -> Signal:
    """Play `x` `factor` times faster (tempo and pitch together): about len(x) / factor samples."""
    if factor == 1.0:
        return x
    source_hz = round(sample_rate_hz * factor)
    return resample(x[None, :], from_hz=source_hz, to_hz=sample_rate_hz)[0]


def coloured_noise(n: int, *, slope: float, rng: np.random.Generator) -> Signal:
    """Gaussian noise of unit power whose power spectral density falls as f ** -slope."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequency = np.arange(spectrum.size, dtype=np.float64)
    frequency[0] = 1.0  # keeps DC finite; its weight equals the first bin's
    spectrum *= frequency ** (-slope / 2)
    noise = np.fft.irfft(spectrum, n)
    return (noise / math.sqrt(max(float(np.mean(noise**2)), _POWER_FLOOR))).astype(np.float32)


def add_noise(x: Signal, *, snr_db: float, slope: float, rng: np.random.Generator) -> Signal:
    """x plus noise `snr_db` below its power (silence stays silent)."""
    power = float(np.mean(x.astype(np.float64) ** 2))
    if power <= _POWER_FLOOR:
        return x
    noise = coloured_noise(x.size, slope=slope, rng=rng)
    return (x + noise * math.sqrt(power / 10 ** (snr_db / 10))).astype(np.float32)


def synthetic_room(*, rt60_s: float, drr_db: float, sample_rate_hz: int, rng: np.random.Generator) -> Signal:
    """Impulse response: a unit direct path, then Gaussian noise decaying by 60 dB in `rt60_s`.

    The tail is scaled so that direct energy / tail energy is `drr_db`.
    """
    predelay = max(1, round(REVERB_PREDELAY_MS * 1e-3 * sample_rate_hz))
    n_tail = max(1, round(rt60_s * sample_rate_hz))
    t = np.arange(n_tail) / sample_rate_hz
    tail = rng.standard_normal(n_tail) * np.exp(-_DB60_NEPERS * t / rt60_s)
    tail *= math.sqrt(1.0 / (np.sum(tail**2) * 10 ** (drr_db / 10)))
    response = np.zeros(predelay + n_tail)
    response[0] = 1.0
    response[predelay:] = tail
    return response.astype(np.float32)


def reverberate(x: Signal, response: Signal) -> Signal:
    """x convolved with `response`, cut to len(x) (the response is causal: no delay is added)."""
    return scipy.signal.fftconvolve(x, response)[: x.size].astype(np.float32)


def draw_speed(rng: np.random.Generator, config: AugmentConfig) -> float:
    """A crop's speed factor (1.0: unchanged); drawn first, as it sets how much audio to read."""
    if rng.random() < config.speed_p:
        return float(rng.uniform(config.speed_min, config.speed_max))
    return 1.0


def augment(x: Signal, *, sample_rate_hz: int, rng: np.random.Generator, config: AugmentConfig) -> Signal:
    """EQ, reverberation, noise, in that order, each with its probability (speed and gain are separate)."""
    if rng.random() < config.eq_p:
        x = random_eq(x, sample_rate_hz=sample_rate_hz, rng=rng, config=config)
    if rng.random() < config.reverb_p:
        room = synthetic_room(rt60_s=rng.uniform(config.rt60_min_s, config.rt60_max_s),
                              drr_db=rng.uniform(config.drr_min_db, config.drr_max_db),
                              sample_rate_hz=sample_rate_hz, rng=rng)
        x = reverberate(x, room)
    if rng.random() < config.noise_p:
        slope = NOISE_SLOPES[str(rng.choice(list(NOISE_SLOPES)))]
        x = add_noise(x, snr_db=rng.uniform(config.snr_min_db, config.snr_max_db), slope=slope, rng=rng)
    return x


def draw_gain_db(rng: np.random.Generator, config: AugmentConfig) -> float:
    """A random level change in dB, applied after loudness normalisation (0 when not drawn)."""
    if rng.random() < config.gain_p:
        return float(rng.uniform(-config.gain_db, config.gain_db))
    return 0.0
