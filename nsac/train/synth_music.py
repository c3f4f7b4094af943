"""Procedural music-like training audio at 48 kHz, seeded: for post-filters of music codecs, which have no
music training split (shared/data/music is for evaluation only and is never read here).

A piece is a few bars at a random tempo in a random key: a chord pad, a bass line, a melody and an arpeggio
from random instruments (additive harmonic tones with their own spectral tilt, inharmonicity, envelope,
vibrato and brightness decay, or Karplus-Strong plucked strings), and a drum pattern (kick, snare, hi-hat,
cymbal-like bursts), mixed at random levels through a synthetic room (exponentially decaying noise). Piece
number n of seed s is a function of (s, n) alone.

The training corpus is a folder of such pieces written once as 24-bit FLAC and reused::

    CACHE/synthetic-music/v<FORMAT>-seed<s>-<n>x<d>s/group-<g>/piece-<n>.flac

`nsac train` reads it when a recipe's data.path is `synthetic-music` (SYNTHETIC_MUSIC); the folders are the
"speakers" of the speaker-disjoint validation split, so validation holds out whole groups of pieces.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from nsac.errors import ParameterError

#: the data.path that names this corpus instead of a folder
SYNTHETIC_MUSIC = "synthetic-music"
#: bump when the generator's output changes, so that a cached corpus is not reused
FORMAT_VERSION = 1
SAMPLE_RATE_HZ = 48000
DEFAULT_N_PIECES = 200
DEFAULT_PIECE_S = 10.0
PIECES_PER_GROUP = 10
#: a piece's RMS level (then lowered where its peak would pass PEAK_MAX)
TARGET_RMS_DBFS = -20.0
PEAK_MAX = 0.95
#: harmonics stay below this fraction of the sample rate (no aliasing)
MAX_PARTIAL_RATIO = 0.45
_A4_MIDI, _A4_HZ = 69, 440.0
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10)}
_BEATS_PER_BAR = 4
_RT60_DECAY_NEPERS = 6.9078  # ln(1000): 60 dB


def _midi_hz(note: float) -> float:
    return _A4_HZ * 2 ** ((note - _A4_MIDI) / 12)


# --- instruments ------------------------------------------------------------------------------------------
def harmonic_tone(f0_hz: float, *, duration_s: float, sample_rate_hz: int, rng: np.random.Generator,
                  timbre: dict, keep_s: float | None = None) -> NDArray[np.float64]:
    """An additive tone: harmonics k f0 sqrt(1 + B k^2) with amplitude k^-tilt, an ADSR envelope, vibrato
    and higher harmonics decaying faster. `timbre` comes from :func:`random_timbre`. Only the first
    `keep_s` seconds are computed (the same samples as the start of the whole tone)."""
    n = max(1, round(duration_s * sample_rate_hz))
    n_keep = n if keep_s is None else max(1, min(n, round(keep_s * sample_rate_hz)))
    t = np.arange(n_keep) / sample_rate_hz
    vibrato = timbre["vibrato_depth"] * np.sin(2 * np.pi * timbre["vibrato_hz"] * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0_hz * (1 + vibrato)) / sample_rate_hz
    k = np.arange(1, timbre["n_harmonics"] + 1, dtype=np.float64)
    stretch = k * np.sqrt(1 + timbre["inharmonicity"] * k**2)
    keep = stretch * f0_hz * (1 + timbre["vibrato_depth"]) < MAX_PARTIAL_RATIO * sample_rate_hz
    k, stretch = k[keep], stretch[keep]
    amplitude = k ** -timbre["tilt"] * np.where(k % 2 == 0, timbre["even_gain"], 1.0)
    decay = timbre["decay_per_s"] * (1 + timbre["brightness_decay"] * (k - 1))
    partials = np.sin(stretch[:, None] * phase[None, :] + rng.uniform(0, 2 * np.pi, (k.size, 1)))
    tone = (amplitude[:, None] * np.exp(-decay[:, None] * t[None, :]) * partials).sum(axis=0)
    return tone * _adsr(n, sample_rate_hz, timbre)[:n_keep]


def _adsr(n: int, sample_rate_hz: int, timbre: dict) -> NDArray[np.float64]:
    attack = max(1, min(n, round(timbre["attack_s"] * sample_rate_hz)))
    release = max(1, min(n - attack + 1, round(timbre["release_s"] * sample_rate_hz)))
    envelope = np.full(n, timbre["sustain"])
    envelope[:attack] = np.linspace(0, 1, attack)
    decay_n = min(n - attack, round(timbre["decay_s"] * sample_rate_hz))
    if decay_n > 0:
        envelope[attack : attack + decay_n] = np.linspace(1, timbre["sustain"], decay_n)
    envelope[n - release :] *= np.linspace(1, 0, release)
    return envelope


def random_timbre(rng: np.random.Generator, *, percussive: bool) -> dict:
    """Random instrument parameters: bowed/blown (sustained) or struck (percussive, decaying)."""
    return {
        "n_harmonics": int(rng.integers(6, 60)),
        "tilt": rng.uniform(0.6, 2.2),
        "even_gain": rng.uniform(0.1, 1.0),
        "inharmonicity": rng.choice([0.0, rng.uniform(1e-5, 4e-4)]),
        "vibrato_hz": rng.uniform(4.0, 7.0),
        "vibrato_depth": 0.0 if percussive else rng.choice([0.0, rng.uniform(0.001, 0.006)]),
        "decay_per_s": rng.uniform(1.0, 6.0) if percussive else rng.uniform(0.0, 0.5),
        "brightness_decay": rng.uniform(0.05, 0.4) if percussive else rng.uniform(0.0, 0.05),
        "attack_s": rng.uniform(0.001, 0.008) if percussive else rng.uniform(0.02, 0.25),
        "decay_s": rng.uniform(0.05, 0.3),
        "sustain": rng.uniform(0.3, 0.6) if percussive else rng.uniform(0.6, 1.0),
        "release_s": rng.uniform(0.02, 0.3),
    }


def plucked_string(f0_hz: float, *, duration_s: float, sample_rate_hz: int, rng: np.random.Generator,
                   damping: float, brightness: float) -> NDArray[np.float64]:
    """Karplus-Strong: a noise burst of one period circulating through a delay line and a two-point average,
    y[n] = x[n] + damping (y[n - P] + y[n - P - 1]) / 2; `brightness` in (0, 1] lowpasses the burst."""
    from scipy.signal import lfilter

    n = max(1, round(duration_s * sample_rate_hz))
    period = max(2, round(sample_rate_hz / f0_hz))
    burst = rng.uniform(-1, 1, period)
    burst = lfilter([brightness], [1, brightness - 1], burst)  # one-pole lowpass
    excitation = np.zeros(n)
    excitation[: min(n, period)] = burst[: min(n, period)]
    feedback = np.zeros(period + 2)
    feedback[0] = 1.0
    feedback[period] = feedback[period + 1] = -damping / 2
    return lfilter([1.0], feedback, excitation)


def _decaying_noise(rng: np.random.Generator, n: int, *, decay_s: float, sample_rate_hz: int
                    ) -> NDArray[np.float64]:
    t = np.arange(n) / sample_rate_hz
    return rng.standard_normal(n) * np.exp(-t / decay_s)


def _filtered(x: NDArray[np.float64], *, kind: str, cutoff_hz: float | tuple[float, float],
              sample_rate_hz: int) -> NDArray[np.float64]:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(4, cutoff_hz, btype=kind, fs=sample_rate_hz, output="sos"), x)


def drum_hit(kind: str, *, sample_rate_hz: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """One hit: kick (falling sine and a click), snare (band-passed noise and a tone), hat (high-passed
    noise, short or open) or cymbal (inharmonic square partials and bright noise, long)."""
    sr = sample_rate_hz
    if kind == "kick":
        n = round(rng.uniform(0.25, 0.5) * sr)
        t = np.arange(n) / sr
        f = rng.uniform(45, 60) + rng.uniform(80, 150) * np.exp(-t / rng.uniform(0.02, 0.06))
        body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / rng.uniform(0.08, 0.2))
        click = _filtered(_decaying_noise(rng, n, decay_s=0.003, sample_rate_hz=sr), kind="highpass",
                          cutoff_hz=2000.0, sample_rate_hz=sr)
        return body + 0.3 * click
    if kind == "snare":
        n = round(rng.uniform(0.2, 0.35) * sr)
        t = np.arange(n) / sr
        noise = _filtered(_decaying_noise(rng, n, decay_s=rng.uniform(0.05, 0.12), sample_rate_hz=sr),
                          kind="bandpass", cutoff_hz=(rng.uniform(800, 2000), rng.uniform(8000, 14000)),
                          sample_rate_hz=sr)
        tone = np.sin(2 * np.pi * rng.uniform(160, 240) * t) * np.exp(-t / 0.04)
        return 1.5 * noise + 0.5 * tone
    if kind == "hat":
        decay_s = rng.choice([rng.uniform(0.02, 0.06), rng.uniform(0.15, 0.35)])
        n = round(min(1.0, 6 * decay_s) * sr)
        return 1.5 * _filtered(_decaying_noise(rng, n, decay_s=decay_s, sample_rate_hz=sr), kind="highpass",
                               cutoff_hz=rng.uniform(6000, 9000), sample_rate_hz=sr)
    if kind == "cymbal":
        n = round(rng.uniform(1.2, 2.5) * sr)
        t = np.arange(n) / sr
        partial_hz = rng.uniform(300, 900) * rng.uniform(1.0, 9.0, 6)
        metal = np.sign(np.sin(2 * np.pi * partial_hz[:, None] * t[None, :])).sum(axis=0)
        metal = _filtered(metal, kind="highpass", cutoff_hz=5000.0, sample_rate_hz=sr)
        noise = _filtered(rng.standard_normal(n), kind="highpass", cutoff_hz=rng.uniform(3000, 7000),
                          sample_rate_hz=sr)
        return (0.2 * metal + noise) * np.exp(-t / rng.uniform(0.3, 0.9))
    raise ParameterError(f"drum kind={kind!r} is not one of kick, snare, hat, cymbal")


def room_response(rng: np.random.Generator, *, sample_rate_hz: int) -> NDArray[np.float64]:
    """A synthetic room: the direct path, then noise decaying by 60 dB in RT60 (0.2-1.6 s), darker late."""
    rt60_s = rng.uniform(0.2, 1.6)
    n = round(rt60_s * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    bright = rng.standard_normal(n) * np.exp(-_RT60_DECAY_NEPERS * t / (0.6 * rt60_s))
    dark = _filtered(rng.standard_normal(n), kind="lowpass", cutoff_hz=3000.0, sample_rate_hz=sample_rate_hz)
    tail = bright + dark * np.exp(-_RT60_DECAY_NEPERS * t / rt60_s)
    direct_to_reverb_db = rng.uniform(0.0, 12.0)
    tail *= 10 ** (-direct_to_reverb_db / 20) / np.sqrt(np.sum(tail**2))
    tail[0] = 1.0
    return tail


# --- a piece ------------------------------------------------------------------------------------------
def _place(track: NDArray[np.float64], sound: NDArray[np.float64], start: int) -> None:
    if start >= track.size:
        return
    end = min(track.size, start + sound.size)
    track[start:end] += sound[: end - start]


def _play(track: NDArray[np.float64], play: Callable[[float, float, float], NDArray], f0_hz: float, *,
          duration_s: float, start_s: float, sample_rate_hz: int) -> None:
    """Add a note to `track`, synthesising only the part that falls inside it (a note past the end is
    still drawn, one sample of it, so that the random draws of the notes after it stay the same)."""
    start = round(start_s * sample_rate_hz)
    _place(track, play(f0_hz, duration_s, (track.size - start) / sample_rate_hz), start)


def _instrument(rng: np.random.Generator, sample_rate_hz: int) -> Callable[..., NDArray]:
    """A random instrument: (f0_hz, duration_s, keep_s=None) -> samples (the first keep_s seconds of the
    note), plucked or additive."""
    if rng.random() < 0.35:
        damping, brightness = rng.uniform(0.985, 0.999), rng.uniform(0.3, 1.0)
        return lambda f0, d, keep=None: plucked_string(f0, duration_s=d if keep is None else min(d, keep),
                                                       sample_rate_hz=sample_rate_hz, rng=rng, damping=damping,
                                                       brightness=brightness)
    timbre = random_timbre(rng, percussive=bool(rng.random() < 0.4))
    return lambda f0, d, keep=None: harmonic_tone(f0, duration_s=d, sample_rate_hz=sample_rate_hz, rng=rng,
                                                  timbre=timbre, keep_s=keep)


def synthesize_piece(*, seed: int, index: int, duration_s: float = DEFAULT_PIECE_S,
                     sample_rate_hz: int = SAMPLE_RATE_HZ) -> NDArray[np.float32]:
    """Piece `index` of `seed`: (samples,) float32 at `sample_rate_hz`, RMS TARGET_RMS_DBFS, peak <= PEAK_MAX."""
    if duration_s <= 0 or sample_rate_hz < 8000:
        raise ParameterError(f"duration_s={duration_s} must be positive and sample_rate_hz={sample_rate_hz} "
                             ">= 8000")
    rng = np.random.default_rng([FORMAT_VERSION, seed, index])
    sr = sample_rate_hz
    n = round(duration_s * sr)
    beat_s = 60.0 / rng.uniform(70, 160)
    root = int(rng.integers(40, 53))
    scale = _SCALES[str(rng.choice(list(_SCALES)))]
    n_bars = int(np.ceil(duration_s / (beat_s * _BEATS_PER_BAR))) + 1
    degrees = rng.integers(0, 7, n_bars)
    layers: list[NDArray[np.float64]] = []

    def pitch(degree: int, octave: int) -> float:
        return _midi_hz(root + 12 * (octave + degree // 7) + scale[degree % 7])

    bar_n = beat_s * _BEATS_PER_BAR
    if rng.random() < 0.8:  # chord pad: a triad or a seventh per bar
        track, play = np.zeros(n), _instrument(rng, sr)
        size = int(rng.integers(3, 5))
        for bar, degree in enumerate(degrees):
            for step in range(size):
                _play(track, play, pitch(int(degree) + 2 * step, 1), duration_s=bar_n * 1.05,
                      start_s=bar * bar_n, sample_rate_hz=sr)
        layers.append(track / size)
    if rng.random() < 0.8:  # bass on the chord roots, on every beat or every other
        track, play = np.zeros(n), _instrument(rng, sr)
        every = int(rng.choice([1, 2]))
        for beat in range(0, n_bars * _BEATS_PER_BAR, every):
            degree = int(degrees[beat // _BEATS_PER_BAR])
            _play(track, play, pitch(degree, 0), duration_s=beat_s * every * 0.9, start_s=beat * beat_s,
                  sample_rate_hz=sr)
        layers.append(track)
    if rng.random() < 0.85:  # melody: a random walk on the scale in eighths and quarters
        track, play = np.zeros(n), _instrument(rng, sr)
        position_s, degree = 0.0, int(rng.integers(0, 7))
        octave = int(rng.integers(2, 4))
        while position_s < duration_s:
            length_s = beat_s * float(rng.choice([0.5, 0.5, 1.0, 1.5, 2.0]))
            degree = int(np.clip(degree + rng.integers(-2, 3), -3, 12))
            if rng.random() > 0.15:  # rests
                _play(track, play, pitch(degree, octave), duration_s=length_s, start_s=position_s,
                      sample_rate_hz=sr)
            position_s += length_s
        layers.append(track)
    if rng.random() < 0.5:  # arpeggio in sixteenths, plucked
        track = np.zeros(n)
        damping, brightness = rng.uniform(0.98, 0.997), rng.uniform(0.4, 1.0)
        for sixteenth in range(int(duration_s / (beat_s / 4)) + 1):
            degree = int(degrees[int(sixteenth // (4 * _BEATS_PER_BAR)) % n_bars]) + 2 * (sixteenth % 3)
            note = plucked_string(pitch(degree, 2), duration_s=0.6, sample_rate_hz=sr, rng=rng,
                                  damping=damping, brightness=brightness)
            _place(track, note, round(sixteenth * beat_s / 4 * sr))
        layers.append(track)
    if rng.random() < 0.75:  # drums
        track = np.zeros(n)
        hat_every = float(rng.choice([0.25, 0.5]))
        n_beats = int(duration_s / beat_s) + 1
        for beat in range(n_beats):
            start = round(beat * beat_s * sr)
            if beat % 2 == 0 or rng.random() < 0.15:
                _place(track, drum_hit("kick", sample_rate_hz=sr, rng=rng), start)
            if beat % 2 == 1:
                _place(track, 0.7 * drum_hit("snare", sample_rate_hz=sr, rng=rng), start)
            if beat % (2 * _BEATS_PER_BAR) == 0 and rng.random() < 0.5:
                _place(track, 0.5 * drum_hit("cymbal", sample_rate_hz=sr, rng=rng), start)
        for tick in range(int(duration_s / (beat_s * hat_every)) + 1):
            _place(track, rng.uniform(0.15, 0.35) * drum_hit("hat", sample_rate_hz=sr, rng=rng),
                   round(tick * beat_s * hat_every * sr))
        layers.append(track)
    if not layers:  # every layer left out: a lone melody instrument holding one note
        layers.append(_instrument(rng, sr)(pitch(0, 2), duration_s))
    mix = np.zeros(n)
    for track in layers:
        rms = np.sqrt(np.mean(track**2)) + 1e-12
        mix += track / rms * 10 ** (rng.uniform(-12.0, 0.0) / 20)
    from scipy.signal import fftconvolve

    mix = fftconvolve(mix, room_response(rng, sample_rate_hz=sr))[:n]
    # a random "mastering" tilt: part of the mix through a lowpass, as most recordings fall off at the top
    darker = rng.uniform(0.0, 0.9)
    mix = (1 - darker) * mix + darker * _filtered(mix, kind="lowpass", cutoff_hz=rng.uniform(3000, 8000),
                                                  sample_rate_hz=sr)
    return normalise_level(mix)


def normalise_level(mix: NDArray[np.float64]) -> NDArray[np.float32]:
    """`mix` scaled to TARGET_RMS_DBFS, then lowered where its peak would pass PEAK_MAX, as float32."""
    mix = mix * (10 ** (TARGET_RMS_DBFS / 20) / (np.sqrt(np.mean(mix**2)) + 1e-12))
    peak = np.max(np.abs(mix))
    if peak > PEAK_MAX:
        mix *= PEAK_MAX / peak
    return mix.astype(np.float32)


# --- the corpus on disk ---------------------------------------------------------------------------------
def default_cache_root(name: str = SYNTHETIC_MUSIC) -> Path:
    """Where the generated corpus `name` is cached: $XDG_CACHE_HOME/nsac/NAME, else ~/.cache/nsac/NAME."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nsac" / name


def corpus_dir(*, root: Path, seed: int, n_pieces: int, piece_s: float,
               format_version: int = FORMAT_VERSION) -> Path:
    return Path(root) / f"v{format_version}-seed{seed}-{n_pieces}x{piece_s:g}s"


def piece_path(index: int) -> Path:
    """Where piece `index` lies inside a corpus folder (its group folder is its "speaker")."""
    return Path(f"group-{index // PIECES_PER_GROUP:03d}") / f"piece-{index:04d}.flac"


def check_n_pieces(n_pieces: int) -> None:
    if n_pieces < 2 * PIECES_PER_GROUP:
        raise ParameterError(f"n_pieces={n_pieces} must be at least {2 * PIECES_PER_GROUP}: two groups, one "
                             "of which validation can hold out")


def write_corpus(target: Path, piece: Callable[[int], NDArray[np.float32]], *, n_pieces: int,
                 desc: str, progress: bool = False, notes: dict[str, str] | None = None) -> Path:
    """Write pieces 0..n_pieces-1 (`piece(index)`, mono at SAMPLE_RATE_HZ) as 24-bit FLAC at their
    :func:`piece_path` in a temporary folder next to `target`, with the text files `notes` (name: text), then
    rename it to `target`; where another process renamed its identical copy first, theirs is kept."""
    import soundfile

    from nsac.train.progress import progress_bar

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        bar = progress_bar(show=progress, total=n_pieces, desc=desc, unit="piece")
        for index in range(n_pieces):
            path = staging / piece_path(index)
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(path), piece(index), SAMPLE_RATE_HZ, subtype="PCM_24", format="FLAC")
            bar.update()
        bar.close()
        for name, text in (notes or {}).items():
            (staging / name).write_text(text)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished the same corpus first: theirs is identical
            if not target.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_synthetic_music(root: str | Path | None = None, *, seed: int = 0, n_pieces: int = DEFAULT_N_PIECES,
                           piece_s: float = DEFAULT_PIECE_S, progress: bool = False) -> Path:
    """The corpus folder, written now (in a temporary folder, then renamed) unless it is there already."""
    check_n_pieces(n_pieces)
    root = Path(root) if root else default_cache_root()
    target = corpus_dir(root=root, seed=seed, n_pieces=n_pieces, piece_s=piece_s)
    if target.is_dir():
        return target
    return write_corpus(target, lambda index: synthesize_piece(seed=seed, index=index, duration_s=piece_s),
                        n_pieces=n_pieces, desc="synthesising music", progress=progress)
