"""Synthetic music-like signals for the mdct codec's tests, tuning and speed benchmark (no audio files).

The codec was tuned on these and on training speech, never on the music test set. Each generator is seeded
and deterministic; all return float32 of shape (samples,) at full scale +-1 with peaks around -3 dBFS:

- ``tonal``: sustained chords of harmonic tones (1/k amplitudes, slight inharmonicity, vibrato) with slow
  attacks, the hard case for a transform coder's frequency resolution;
- ``piano``: plucked notes of a random melody over chords, sharp attacks and exponential decays;
- ``drums``: kick (a pitch sweep), snare (tone plus band-passed noise) and closed hi-hats on a 16th grid;
- ``castanets``: isolated clicks over near-silence, the classic pre-echo item;
- ``mix``: drums, a bass line and the piano together, with a short reverb.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.signal

from nsac.errors import ParameterError

PEAK_DBFS = -3.0
TEMPO_BPM = 110.0
REVERB_DECAY_S = 0.35
A4_HZ = 440.0
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


def _midi_hz(note: float) -> float:
    return A4_HZ * 2.0 ** ((note - 69.0) / 12.0)


def _normalise(x: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(x))) or 1.0
    return (x * (10.0 ** (PEAK_DBFS / 20.0) / peak)).astype(np.float32)


def _harmonic_note(freq_hz: float, n: int, sample_rate: int, rng: np.random.Generator, *,
                   decay_s: float | None, attack_s: float, brightness: float) -> np.ndarray:
    """One note: harmonics up to the Nyquist rate, amplitudes k**-brightness, attack then decay or sustain."""
    t = np.arange(n) / sample_rate
    vibrato = 1.0
    if decay_s is None:
        vibrato = 1.0 + 0.003 * np.sin(2 * np.pi * 5.0 * t + rng.uniform(0, 2 * np.pi))
    phase_base = 2 * np.pi * freq_hz * np.cumsum(np.broadcast_to(vibrato, t.shape)) / sample_rate
    out = np.zeros(n)
    n_harmonics = int(0.45 * sample_rate / freq_hz)
    inharmonicity = 0.0004 if decay_s is not None else 0.0
    for k in range(1, n_harmonics + 1):
        stretch = k * np.sqrt(1.0 + inharmonicity * k * k)
        if stretch * freq_hz >= 0.48 * sample_rate:
            break
        envelope = np.exp(-t * k / (decay_s * 6.0)) if decay_s is not None else 1.0
        out += k ** -brightness * np.sin(stretch * phase_base + rng.uniform(0, 2 * np.pi)) * envelope
    attack = np.minimum(1.0, t / max(attack_s, 1.0 / sample_rate))
    decay = np.exp(-t / decay_s) if decay_s is not None else 1.0
    return out * attack * decay


def tonal(duration_s: float, *, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Sustained chords (a new one every two beats) of bright harmonic tones with vibrato."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    out = np.zeros(n)
    chord_n = int(2 * 60.0 / TEMPO_BPM * sample_rate)
    for start in range(0, n, chord_n):
        root = 48 + int(rng.integers(0, 12))
        length = min(chord_n + sample_rate // 10, n - start)
        for interval in (0, 4, 7, 12):
            note = _harmonic_note(_midi_hz(root + interval), length, sample_rate, rng, decay_s=None,
                                  attack_s=0.08, brightness=1.0)
            fade = np.minimum(1.0, (length - np.arange(length)) / (0.1 * sample_rate))
            out[start:start + length] += note * fade
    return _normalise(out)


def piano(duration_s: float, *, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A melody of plucked notes (eighths) over struck chords (every bar)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    out = np.zeros(n)
    beat_n = int(60.0 / TEMPO_BPM * sample_rate)
    for start in range(0, n, beat_n // 2):
        note = 60 + _MAJOR_SCALE[int(rng.integers(0, 7))] + 12 * int(rng.integers(0, 2))
        length = min(2 * beat_n, n - start)
        out[start:start + length] += _harmonic_note(_midi_hz(note), length, sample_rate, rng, decay_s=0.5,
                                                    attack_s=0.002, brightness=1.3)
    for start in range(0, n, 4 * beat_n):
        length = min(4 * beat_n, n - start)
        for interval in (0, 4, 7):
            note = _harmonic_note(_midi_hz(48 + interval), length, sample_rate, rng, decay_s=1.2,
                                  attack_s=0.003, brightness=1.5)
            out[start:start + length] += 0.5 * note
    return _normalise(out)


def drums(duration_s: float, *, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Kick on beats 1 and 3, snare on 2 and 4, closed hi-hat on every 16th with random accents."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    out = np.zeros(n)
    sixteenth_n = int(60.0 / TEMPO_BPM / 4 * sample_rate)
    t = np.arange(int(0.4 * sample_rate)) / sample_rate
    kick = np.sin(2 * np.pi * np.cumsum(50.0 + 100.0 * np.exp(-t / 0.03)) / sample_rate) * np.exp(-t / 0.12)
    sos_snare = scipy.signal.butter(2, [1000.0, min(9000.0, 0.45 * sample_rate)], btype="bandpass",
                                    fs=sample_rate, output="sos")
    sos_hat = scipy.signal.butter(4, min(7000.0, 0.4 * sample_rate), btype="highpass", fs=sample_rate,
                                  output="sos")
    for step, start in enumerate(range(0, n, sixteenth_n)):
        length = min(t.size, n - start)
        tt = t[:length]
        if step % 8 == 0:
            out[start:start + length] += kick[:length]
        if step % 8 == 4:
            noise = scipy.signal.sosfilt(sos_snare, rng.standard_normal(length))
            tone = 0.3 * np.sin(2 * np.pi * 190.0 * tt)
            out[start:start + length] += (0.6 * noise + tone) * np.exp(-tt / 0.07)
        hat = scipy.signal.sosfilt(sos_hat, rng.standard_normal(length)) * np.exp(-tt / 0.02)
        out[start:start + length] += (0.5 if step % 2 == 0 else 0.25) * rng.uniform(0.6, 1.0) * hat
    return _normalise(out)


def castanets(duration_s: float, *, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Isolated clicks (damped resonances at 2-5 kHz, 3 ms decay) at random times over -60 dB noise."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    out = 1e-3 * rng.standard_normal(n)
    t = np.arange(int(0.03 * sample_rate)) / sample_rate
    start = int(0.1 * sample_rate)
    while start < n - t.size:
        click = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in rng.uniform(2000, 5000, 3))
        out[start:start + t.size] += click * np.exp(-t / 0.003)
        start += int(rng.uniform(0.08, 0.3) * sample_rate)
    return _normalise(out)


def _reverb(x: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(REVERB_DECAY_S * sample_rate)) / sample_rate
    impulse = rng.standard_normal(t.size) * np.exp(-t / (REVERB_DECAY_S / 6.9))
    impulse[0] = 0.0
    wet = scipy.signal.fftconvolve(x, impulse)[: x.size]
    return x + 0.15 * wet / (np.max(np.abs(wet)) or 1.0) * np.max(np.abs(x))


def mix(duration_s: float, *, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Drums, a plucked bass line and the piano, with a short reverb."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    bass = np.zeros(n)
    beat_n = int(60.0 / TEMPO_BPM * sample_rate)
    for start in range(0, n, beat_n):
        length = min(beat_n, n - start)
        note = _midi_hz(36 + _MAJOR_SCALE[int(rng.integers(0, 7))])
        bass[start:start + length] += _harmonic_note(note, length, sample_rate, rng, decay_s=0.3,
                                                     attack_s=0.005, brightness=2.0)
    out = (drums(duration_s, sample_rate=sample_rate, seed=seed + 1) + 0.5 * _normalise(bass)
           + 0.6 * piano(duration_s, sample_rate=sample_rate, seed=seed + 2))
    return _normalise(_reverb(out, sample_rate, rng))


GENERATORS: dict[str, Callable[..., np.ndarray]] = {
    "tonal": tonal, "piano": piano, "drums": drums, "castanets": castanets, "mix": mix}


def music_like(kind: str, *, duration_s: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """One of the signals of the module docstring by name, shape (samples,), float32."""
    if kind not in GENERATORS:
        raise ParameterError(f"kind={kind!r} must be one of {', '.join(GENERATORS)}")
    if duration_s <= 0 or sample_rate <= 0:
        raise ParameterError(f"duration_s={duration_s} and sample_rate={sample_rate} must be positive")
    return GENERATORS[kind](duration_s, sample_rate=sample_rate, seed=seed)


__all__ = ["GENERATORS", "castanets", "drums", "mix", "music_like", "piano", "tonal"]
