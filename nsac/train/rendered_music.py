"""Rendered music at 48 kHz, seeded: procedural arrangements played by sampled instruments, for post-filters
of music codecs, which have no music training split (shared/data/music is for evaluation only and is never
read here).

Where :mod:`nsac.train.synth_music` builds its instruments by additive synthesis, this corpus plays real
recorded timbres: each piece is composed as a standard MIDI file (with mido) and rendered by the FluidSynth
command line through a General MIDI soundfont (NSAC_SOUNDFONT, else Debian's fluid-soundfont-gm). A piece
is a few bars at a random tempo (70-170 bpm), metre and key: most are a band (bass line, chords or a pad,
melody, arpeggio from random General MIDI programs: pianos, mallets, organs, nylon/steel/electric guitars,
basses, strings, brass, reeds, pipes, synth leads and pads) over a drum kit on MIDI channel 10 (kick,
snare, hats, toms, cymbals, hand percussion) with varied grooves and fills; some are orchestral (strings,
winds, timpani), a solo instrument, or drums and hand drums alone. Velocities, articulation (staccato to
legato), swing, reverb and chorus (the synthesizer's settings and MIDI CC 91/93) are random too. The
stereo render is mixed to mono, cut to the piece's length and brought to TARGET_RMS_DBFS (peak <=
PEAK_MAX) as in synth_music. Piece number n of seed s (of a given length) is a function of (s, n) alone,
and of the soundfont and FluidSynth version, which RENDERED_WITH.txt in the corpus folder names: FluidSynth's
offline render (sample-clocked MIDI player, float output, no dither) gave bit-identical samples run after
run. Every MIDI track ends with "all sound off", as FluidSynth's player otherwise waits for held voices.

The training corpus is a folder of such pieces written once as 24-bit FLAC and reused::

    CACHE/rendered-music/v<FORMAT>-seed<s>-<n>x<d>s/group-<g>/piece-<n>.flac

`nsac train` reads it when a recipe's data.path is `rendered-music` (RENDERED_MUSIC); the folders are the
"speakers" of the speaker-disjoint validation split, so validation holds out whole groups of pieces.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nsac.errors import AudioError, DependencyError, ParameterError
from nsac.train.synth_music import (
    PEAK_MAX,
    PIECES_PER_GROUP,
    SAMPLE_RATE_HZ,
    TARGET_RMS_DBFS,
    check_n_pieces,
    corpus_dir,
    default_cache_root,
    normalise_level,
    piece_path,
    write_corpus,
)

__all__ = [
    "DEFAULT_N_PIECES", "DEFAULT_PIECE_S", "FORMAT_VERSION", "PEAK_MAX", "PIECES_PER_GROUP", "RENDERED_MUSIC",
    "SAMPLE_RATE_HZ", "TARGET_RMS_DBFS", "Arrangement", "Renderer", "compose_piece", "ensure_rendered_music",
    "find_fluidsynth", "find_renderer", "find_soundfont", "piece_path", "render_midi", "render_piece",
]

#: the data.path that names this corpus instead of a folder
RENDERED_MUSIC = "rendered-music"
#: bump when the composer or the render settings change, so that a cached corpus is not reused
FORMAT_VERSION = 1
DEFAULT_N_PIECES = 200
DEFAULT_PIECE_S = 10.0
#: the environment variable naming the soundfont; then these, in order
SOUNDFONT_ENV = "NSAC_SOUNDFONT"
SOUNDFONT_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)
INSTALL_HINT = "apt-get install fluidsynth fluid-soundfont-gm"
#: FluidSynth's master gain; the render is float (never clipped) and normalised afterwards
RENDER_GAIN = 0.5
#: a render of 10 s takes well under a second; this much is a hung fluidsynth
RENDER_TIMEOUT_S = 120.0
PROVENANCE_FILE = "RENDERED_WITH.txt"

TICKS_PER_BEAT = 480
STEPS_PER_BEAT = 4  # the grid is in sixteenths
DRUM_CHANNEL = 9  # MIDI channel 10, General MIDI's percussion channel
_ALL_SOUND_OFF = 120  # the MIDI channel-mode message that silences a channel at once
_RNG_TAG = 0x52454E44  # "REND": keeps these streams apart from synth_music's

# --- General MIDI programs (0-based) ---------------------------------------------------------------------
PIANOS = (0, 1, 2, 3, 4, 5, 6, 7)  # grand, bright, electric grand, honky-tonk, e-pianos, harpsichord, clav
MALLETS = (8, 9, 10, 11, 12, 13, 14, 15)  # celesta, glockenspiel, music box, vibraphone, marimba, xylophone..
ORGANS = (16, 17, 18, 19, 20, 21, 22, 23)  # drawbar, percussive, rock, church, reed, accordion, harmonica..
NYLON_GUITAR, STEEL_GUITAR = 24, 25
ELECTRIC_GUITARS = (26, 27, 28, 29, 30)  # jazz, clean, muted, overdriven, distortion
DRIVEN_GUITARS = (29, 30)
GUITARS = (NYLON_GUITAR, STEEL_GUITAR, *ELECTRIC_GUITARS)
BASSES = (32, 33, 34, 35, 36, 37, 38, 39)  # acoustic, finger, pick, fretless, slap x2, synth x2
SOLO_STRINGS = (40, 41, 42, 43)  # violin, viola, cello, contrabass
PIZZICATO, HARP, TIMPANI = 45, 46, 47
ENSEMBLES = (44, 48, 49, 50, 51, 52, 53)  # tremolo and string ensembles, synth strings, choir
BRASS = (56, 57, 58, 59, 60, 61, 62, 63)  # trumpet, trombone, tuba, muted trumpet, horn, section, synth
REEDS = (64, 65, 66, 67, 68, 69, 70, 71)  # saxophones, oboe, english horn, bassoon, clarinet
PIPES = (72, 73, 74, 75, 76, 77, 78, 79)  # piccolo, flute, recorder, pan flute, bottle, shakuhachi..
SYNTH_LEADS = (80, 81, 82, 83, 84, 85, 86, 87)
SYNTH_PADS = (88, 89, 90, 91, 92, 93, 94, 95)
PLUCKED = (104, 105, 106, 107, 108)  # sitar, banjo, shamisen, koto, kalimba
STEEL_DRUMS = 114

_ROLE_PROGRAMS: dict[str, tuple[int, ...]] = {
    "bass": (*BASSES, *BASSES, 43, 58, 70),
    "chords": (*PIANOS, *MALLETS[3:5], *ORGANS[:6], *GUITARS, 44, 48, 49, 50, 61, 62, 63, *SYNTH_PADS,
               HARP),
    "melody": (*PIANOS[:6], 8, 9, 11, 12, 13, 22, *GUITARS, *SOLO_STRINGS[:3], 56, 57, 59, 60, *REEDS, *PIPES,
               *SYNTH_LEADS, *PLUCKED, STEEL_DRUMS),
    "arpeggio": (0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 24, 25, 26, 27, 28, PIZZICATO, HARP, 80, 81, 104,
                 105, 107, 108),
    "pad": (*ENSEMBLES, *SYNTH_PADS, 16, 19, 20, *BRASS[4:6]),
}
_ORCHESTRAL_PROGRAMS: dict[str, tuple[int, ...]] = {
    "bass": (42, 43, 58, 70, 32),
    "chords": (48, 49, 44, 61, 60, 52, 19),
    "melody": (40, 41, 42, 56, 57, 60, 68, 69, 71, 73, 72, 46),
    "arpeggio": (PIZZICATO, HARP, 8, 9),
    "pad": (48, 49, 52, 53, 61),
}
#: solo instruments that can hold chords (melody and accompaniment on one program) or only a line
_SOLO_POLYPHONIC = (0, 1, 2, 4, 6, 11, 12, 24, 25, 26, 27, 30, HARP, 105, 107, 108)
_SOLO_MONOPHONIC = (40, 42, 56, 65, 66, 68, 71, 73, 104, 22, 33, 35, 36, 37)
#: (lowest, highest) MIDI note for programs far from the roles' registers
_REGISTERS: dict[int, tuple[int, int]] = {
    8: (60, 96), 9: (72, 100), 10: (60, 96), 14: (60, 77), 40: (55, 91), 41: (48, 79), 42: (36, 72),
    43: (28, 55), 57: (40, 72), 58: (28, 55), 66: (44, 76), 67: (36, 64), 70: (34, 65), 72: (74, 100),
    TIMPANI: (40, 55), 108: (60, 88),
}
_ROLE_REGISTERS = {"bass": (28, 50), "chords": (48, 76), "melody": (60, 86), "arpeggio": (52, 84),
                   "pad": (48, 74)}
_BASS_PROGRAMS_IN_SOLO = (33, 35, 36, 37)

_MODES = {
    "major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10), "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "phrygian": (0, 1, 3, 5, 7, 8, 10), "lydian": (0, 2, 4, 6, 7, 9, 11),
}
_PROGRESSIONS = ((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3), (5, 3, 0, 4), (1, 4, 0, 0), (0, 0, 3, 4),
                 (0, 6, 5, 4), (0, 3, 0, 4), (0, 2, 3, 4), (0, 0, 0, 0))
#: a note's sounding length as a fraction of its written length
_ARTICULATIONS = (0.3, 0.55, 0.85, 1.02)

# --- General MIDI percussion keys (channel 10) ------------------------------------------------------------
KICK, KICK_2, SIDE_STICK, SNARE, CLAP, SNARE_2 = 36, 35, 37, 38, 39, 40
HAT_CLOSED, HAT_PEDAL, HAT_OPEN = 42, 44, 46
TOMS = (41, 43, 45, 47, 48, 50)  # low floor to high
CRASH, CRASH_2, SPLASH, CHINA, RIDE, RIDE_BELL = 49, 57, 55, 52, 51, 53
TAMBOURINE, COWBELL, CABASA, MARACAS, CLAVES = 54, 56, 69, 70, 75
BONGOS, CONGAS, TIMBALES, AGOGOS = (60, 61), (62, 63, 64), (65, 66), (67, 68)
WOODBLOCKS, TRIANGLES, GUIROS = (76, 77), (81, 80), (73, 74)
HAND_DRUMS = (*BONGOS, *CONGAS, *TIMBALES)
#: drum kits of bank 128 (standard, room, power, electronic, TR-808, jazz, brush; orchestra)
KITS = (0, 8, 16, 24, 25, 32, 40)
ORCHESTRA_KIT = 48
_DRUM_STYLES = ("rock", "four", "funk", "halftime", "shuffle", "jazz", "latin", "sparse")


# --- the tools ---------------------------------------------------------------------------------------------
def find_fluidsynth() -> str:
    """The fluidsynth executable on PATH; DependencyError saying how to install it otherwise."""
    found = shutil.which("fluidsynth")
    if found is None:
        raise DependencyError(f"fluidsynth is not installed (the {RENDERED_MUSIC} corpus is rendered with "
                              f"it): {INSTALL_HINT}")
    return found


def find_soundfont() -> Path:
    """$NSAC_SOUNDFONT where it is set, else the first of SOUNDFONT_CANDIDATES that is there."""
    chosen = os.environ.get(SOUNDFONT_ENV)
    if chosen:
        if not Path(chosen).is_file():
            raise DependencyError(f"{SOUNDFONT_ENV}={chosen} is not a file: point it at a General MIDI .sf2 "
                                  f"soundfont or unset it to use {SOUNDFONT_CANDIDATES[0]} ({INSTALL_HINT})")
        return Path(chosen)
    for candidate in SOUNDFONT_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise DependencyError(f"no General MIDI soundfont for the {RENDERED_MUSIC} corpus: {INSTALL_HINT} "
                          f"or set {SOUNDFONT_ENV}=/path/to/font.sf2")


@dataclass(frozen=True)
class Renderer:
    """The fluidsynth executable and the soundfont it plays."""

    fluidsynth: str
    soundfont: Path

    def describe(self) -> str:
        version = subprocess.run([self.fluidsynth, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout.splitlines()
        return (f"{version[0] if version else 'fluidsynth (version unknown)'}\n"
                f"soundfont {self.soundfont.resolve()} ({self.soundfont.stat().st_size} bytes)\n")


def find_renderer() -> Renderer:
    return Renderer(find_fluidsynth(), find_soundfont())


def _mido() -> Any:
    try:
        import mido
    except ImportError as error:
        raise DependencyError("mido is not installed (the rendered-music corpus is written as MIDI with it): "
                              "pip install 'nsac[train]' or pip install mido") from error
    return mido


# --- composing ---------------------------------------------------------------------------------------------
@dataclass
class Arrangement:
    """A composed piece: its MIDI file, what plays in it and the synthesizer settings it is rendered with."""

    midi: Any  # mido.MidiFile
    kind: str  # band, orchestral, solo or drums
    bpm: float
    beats_per_bar: int
    #: role (bass, chords, melody, arpeggio, pad, timpani, drums, hand drums) -> GM program or drum kit
    parts: dict[str, int] = field(default_factory=dict)
    #: fluidsynth settings (-o name=value): reverb and chorus
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def has_drums(self) -> bool:
        return "drums" in self.parts or "hand drums" in self.parts


class _Composer:
    """The grid, harmony and random state of one piece, and its MIDI events per channel."""

    def __init__(self, rng: np.random.Generator, duration_s: float) -> None:
        self.rng = rng
        self.bpm = float(rng.uniform(70, 170))
        self.tempo_us = round(60e6 / self.bpm)
        self.beats = 3 if rng.random() < 0.2 else 4
        self.steps_per_bar = STEPS_PER_BEAT * self.beats
        seconds_per_tick = self.tempo_us / 1e6 / TICKS_PER_BEAT
        self.end_tick = math.ceil(duration_s / seconds_per_tick) + TICKS_PER_BEAT // 4
        self.n_bars = math.ceil(self.end_tick / (TICKS_PER_BEAT * self.beats))
        self.phrase_bars = int(rng.choice([2, 4, 4, 8]))
        swing = rng.random()
        self.swing_eighths = float(rng.uniform(0.2, 0.67)) if swing < 0.2 else 0.0
        self.swing_sixteenths = float(rng.uniform(0.1, 0.33)) if 0.2 <= swing < 0.3 else 0.0
        self.humanise_ticks = float(rng.uniform(0.0, 12.0))
        self.key = int(rng.integers(0, 12))
        self.scale = _MODES[str(rng.choice(list(_MODES)))]
        if rng.random() < 0.75:
            self.progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
        else:
            self.progression = tuple(int(d) for d in rng.integers(0, 7, int(rng.choice([2, 3, 4]))))
        half_bars = self.beats == 4 and rng.random() < 0.25
        self.chord_steps = self.steps_per_bar // 2 if half_bars else self.steps_per_bar
        self.events: dict[int, list[tuple[int, int, tuple[str, dict[str, int]]]]] = {}
        self.parts: dict[str, int] = {}
        self._next_channel = 0

    # the grid
    def tick(self, bar: int, step: float) -> float:
        ticks_per_step = TICKS_PER_BEAT / STEPS_PER_BEAT
        position = (bar * self.steps_per_bar + step) * ticks_per_step
        if float(step).is_integer():
            if self.swing_eighths and int(step) % 4 == 2:
                position += self.swing_eighths * ticks_per_step
            elif self.swing_sixteenths and int(step) % 2 == 1:
                position += self.swing_sixteenths * ticks_per_step
        return position

    # harmony: absolute scale degrees, degree 0 being the key's root in MIDI octave 0 (note 12 + key)
    def degree_pitch(self, degree: int) -> int:
        return 12 + self.key + 12 * (degree // 7) + self.scale[degree % 7]

    def degree_at_least(self, pitch: int, *, like: int) -> int:
        """The lowest degree congruent to `like` (mod 7) whose pitch is >= `pitch`."""
        degree = like % 7
        while self.degree_pitch(degree) < pitch:
            degree += 7
        return degree

    def nearest_degree(self, pitch: float, *, like: int) -> int:
        low = self.degree_at_least(int(pitch) - 12, like=like)
        return min((low + 7 * k for k in range(4)), key=lambda d: abs(self.degree_pitch(d) - pitch))

    def chord_root(self, bar: int, step: float = 0) -> int:
        index = int((bar * self.steps_per_bar + step) // self.chord_steps)
        return self.progression[index % len(self.progression)]

    def chord_changes(self) -> list[tuple[int, int, int]]:
        """(bar, step, length in steps) of every chord."""
        per_bar = self.steps_per_bar // self.chord_steps
        return [(bar, k * self.chord_steps, self.chord_steps) for bar in range(self.n_bars)
                for k in range(per_bar)]

    def chord_degrees(self, root: int, *, seventh: bool) -> tuple[int, ...]:
        return (root, root + 2, root + 4, root + 6) if seventh else (root, root + 2, root + 4)

    def voicing(self, root: int, *, register: tuple[int, int], seventh: bool) -> list[int]:
        centre = (register[0] + register[1]) / 2 - 4
        return sorted({self.degree_pitch(self.nearest_degree(centre, like=d))
                       for d in self.chord_degrees(root, seventh=seventh)})

    # channels and events
    def channel(self, role: str, program: int) -> int:
        channel = self._next_channel
        self._next_channel += 1 + (self._next_channel + 1 == DRUM_CHANNEL)
        self.parts[role] = program
        self.events[channel] = []
        self.control(channel, "program_change", program=program)
        return channel

    def drum_channel(self, role: str, kit: int) -> int:
        if DRUM_CHANNEL not in self.events:
            self.events[DRUM_CHANNEL] = []
            self.control(DRUM_CHANNEL, "program_change", program=kit)
        self.parts[role] = kit
        return DRUM_CHANNEL

    def control(self, channel: int, kind: str, tick: float = 0, **values: int) -> None:
        self.events[channel].append((round(tick), 0, (kind, {"channel": channel, **values})))

    def mix_controls(self, channel: int, *, volume: tuple[int, int] = (75, 127)) -> None:
        rng = self.rng
        self.control(channel, "control_change", control=7, value=int(rng.integers(volume[0], volume[1] + 1)))
        reverb = rng.integers(0, 25) if rng.random() < 0.3 else rng.integers(20, 110)
        self.control(channel, "control_change", control=91, value=int(reverb))
        chorus = rng.integers(10, 90) if rng.random() < 0.3 else 0
        self.control(channel, "control_change", control=93, value=int(chorus))
        if channel != DRUM_CHANNEL and rng.random() < 0.2:  # modulation wheel: vibrato on most programs
            self.control(channel, "control_change", control=1, value=int(rng.integers(10, 80)))

    def note(self, channel: int, pitch: int, start_tick: float, length_ticks: float, velocity: float) -> None:
        jitter = self.rng.uniform(-self.humanise_ticks, self.humanise_ticks) if self.humanise_ticks else 0.0
        start = max(0, round(start_tick + jitter))
        if start >= self.end_tick or not 0 <= pitch <= 127:
            return
        end = start + max(TICKS_PER_BEAT // 32, round(length_ticks))
        velocity = int(np.clip(round(velocity + self.rng.normal(0, 5)), 1, 127))
        self.events[channel].append((start, 2, ("note_on", {"channel": channel, "note": pitch,
                                                            "velocity": velocity})))
        self.events[channel].append((end, 1, ("note_off", {"channel": channel, "note": pitch,
                                                           "velocity": 64})))

    def midi(self) -> Any:
        mido = _mido()
        midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
        conductor = mido.MidiTrack()
        conductor.append(mido.MetaMessage("set_tempo", tempo=self.tempo_us, time=0))
        conductor.append(mido.MetaMessage("time_signature", numerator=self.beats, denominator=4, time=0))
        conductor.append(mido.MetaMessage("end_of_track", time=self.end_tick))
        midi.tracks.append(conductor)
        for channel in sorted(self.events):
            track = mido.MidiTrack()
            now = 0
            for tick, _, (kind, values) in sorted(self.events[channel], key=lambda e: (e[0], e[1])):
                if tick >= self.end_tick:
                    break
                track.append(mido.Message(kind, time=tick - now, **values))
                now = tick
            # every sound stopped at the end: fluidsynth's player would otherwise wait for the voices still
            # sounding, for ever where a looped sample is held
            track.append(mido.Message("control_change", channel=channel, control=_ALL_SOUND_OFF, value=0,
                                      time=self.end_tick - now))
            track.append(mido.MetaMessage("end_of_track", time=0))
            midi.tracks.append(track)
        return midi


def _random_steps(rng: np.random.Generator, steps_per_bar: int) -> list[int]:
    """A rhythm: the downbeat and 2-5 other sixteenths of a bar, in order."""
    return sorted({0, *(int(s) for s in rng.choice(steps_per_bar, int(rng.integers(2, 6)), replace=False))})


def _register(program: int, role: str) -> tuple[int, int]:
    return _REGISTERS.get(program, _ROLE_REGISTERS[role])


def _velocity(rng: np.random.Generator) -> float:
    return float(rng.integers(55, 118))


def _articulation(rng: np.random.Generator, *, sustained: bool = False) -> float:
    return float(rng.choice(_ARTICULATIONS[2:] if sustained else _ARTICULATIONS))


def _bass(c: _Composer, program: int) -> None:
    rng = c.rng
    channel = c.channel("bass", program)
    c.mix_controls(channel)
    low = _register(program, "bass")[0]
    style = str(rng.choice(["roots", "root-fifth", "octaves", "walking", "syncopated", "held"]))
    velocity, articulation = _velocity(rng), _articulation(rng)
    step_ticks = TICKS_PER_BEAT / STEPS_PER_BEAT
    rhythm = _random_steps(rng, c.steps_per_bar)
    for bar in range(c.n_bars):
        if style == "held":
            hits = [(s, c.chord_steps, 0) for s in range(0, c.steps_per_bar, c.chord_steps)]
        elif style == "syncopated":
            hits = [(s, (rhythm + [c.steps_per_bar])[i + 1] - s, int(rng.choice([0, 0, 0, 4, 7])))
                    for i, s in enumerate(rhythm)]
        elif style == "octaves":
            hits = [(s, 2, 7 * (s // 2 % 2)) for s in range(0, c.steps_per_bar, 2)]
        else:  # one note a beat: the root, alternating with the fifth, or walking to the next chord
            hits = [(s, STEPS_PER_BEAT, 0) for s in range(0, c.steps_per_bar, STEPS_PER_BEAT)]
            if style == "root-fifth":
                hits = [(s, n, 4 * (i % 2)) for i, (s, n, _) in enumerate(hits)]
            elif style == "walking":
                hits = [(s, n, int(rng.choice([0, 1, 2, 3, 4, -1, -2])) if i else 0)
                        for i, (s, n, _) in enumerate(hits)]
        for step, length, offset in hits:
            root = c.degree_at_least(low, like=c.chord_root(bar, step))
            accent = 10 if step % c.chord_steps == 0 else 0
            c.note(channel, c.degree_pitch(root + offset), c.tick(bar, step),
                   length * step_ticks * articulation, velocity + accent)


def _chords(c: _Composer, program: int, *, role: str = "chords") -> None:
    rng = c.rng
    channel = c.channel(role, program)
    c.mix_controls(channel)
    register = _register(program, role)
    velocity = _velocity(rng) - 10
    seventh = bool(rng.random() < 0.35)
    power_chords = program in DRIVEN_GUITARS
    if power_chords:
        register = (40, 64)
    styles = ["held", "block", "stabs"] + (["strum", "strum"] if program in GUITARS else [])
    style = "held" if role == "pad" else str(rng.choice(styles))
    articulation = _articulation(rng, sustained=style == "held")
    step_ticks = TICKS_PER_BEAT / STEPS_PER_BEAT
    every = int(rng.choice([STEPS_PER_BEAT, 2 * STEPS_PER_BEAT, 2]))
    stabs = _random_steps(rng, c.steps_per_bar)
    strum_ticks = float(rng.uniform(4, 25))
    swell = role == "pad" and rng.random() < 0.5
    for bar, start, length in c.chord_changes():
        root = c.chord_root(bar, start)
        if power_chords:
            bottom = c.degree_pitch(c.degree_at_least(register[0], like=root))
            pitches = [bottom, bottom + 7, bottom + 12]
        else:
            pitches = c.voicing(root, register=register, seventh=seventh)
        if style == "held":
            hits = [(start, length)]
        elif style == "block":
            hits = [(s, min(every, start + length - s)) for s in range(start, start + length, every)]
        else:
            hits = [(s, 2) for s in (stabs if style == "stabs" else range(0, c.steps_per_bar, 2))
                    if start <= s < start + length]
        for step, n_steps in hits:
            if style == "strum" and rng.random() < 0.2:
                continue
            upstroke = style == "strum" and step % 4 == 2
            order = pitches[::-1] if upstroke else pitches
            base = c.tick(bar, step)
            for k, pitch in enumerate(order):
                delay = k * strum_ticks if style == "strum" else 0.0
                c.note(channel, pitch, base + delay, n_steps * step_ticks * articulation,
                       velocity - (12 if upstroke else 0))
        if swell:  # expression rising through the chord
            for k in range(8):
                c.control(channel, "control_change", c.tick(bar, start + k * length / 8), control=11,
                          value=int(45 + 80 * k / 7))


def _melody(c: _Composer, program: int, *, role: str = "melody") -> None:
    rng = c.rng
    channel = c.channel(role, program)
    c.mix_controls(channel)
    low, high = _register(program, role)
    velocity, articulation = _velocity(rng), _articulation(rng)
    step_ticks = TICKS_PER_BEAT / STEPS_PER_BEAT
    lengths = (1, 2, 2, 2, 3, 4, 4, 6, 8) if rng.random() < 0.5 else (2, 4, 4, 6, 8, 12, 16)
    rest_p = float(rng.uniform(0.05, 0.3))
    motif_bars = int(rng.choice([1, 2]))
    low_degree = c.degree_at_least(low, like=0)
    high_degree = c.degree_at_least(high, like=0) - 1
    degree = c.degree_at_least((low + high) // 2, like=c.chord_root(0))
    motif: list[tuple[int, int, int]] = []  # (step from the motif's start, length, degree from its chord)
    for first_bar in range(0, c.n_bars, motif_bars):
        root = c.chord_root(first_bar)
        if not motif or rng.random() < 0.4:  # a new motif: a walk on the scale, chord tones on the beats
            motif, step = [], 0
            while step < motif_bars * c.steps_per_bar:
                length = int(rng.choice(lengths))
                degree += int(rng.choice([-2, -1, -1, 0, 1, 1, 2, -3, 3, 4, -4]))
                if degree < low_degree or degree > high_degree:
                    degree = int(np.clip(degree, low_degree, high_degree))
                if step % STEPS_PER_BEAT == 0 and rng.random() < 0.7:  # nearest chord tone
                    chord = c.chord_degrees(c.chord_root(first_bar, step), seventh=False)
                    degree = min((d + 7 * k for d in chord for k in range(1, 14)),
                                 key=lambda d: abs(d - degree))
                if rng.random() > rest_p:
                    motif.append((step, length, degree - root))
                step += length
        for step, length, offset in motif:
            if rng.random() < 0.15:  # an ornament: a neighbouring note instead
                offset += int(rng.choice([-1, 1]))
            bar, within = first_bar + step // c.steps_per_bar, step % c.steps_per_bar
            if bar >= c.n_bars:
                break
            pitch = c.degree_pitch(int(np.clip(root + offset, low_degree, high_degree)))
            accent = 8 if within % STEPS_PER_BEAT == 0 else 0
            c.note(channel, pitch, c.tick(bar, within), length * step_ticks * articulation, velocity + accent)


def _arpeggio(c: _Composer, program: int) -> None:
    rng = c.rng
    channel = c.channel("arpeggio", program)
    c.mix_controls(channel)
    low, high = _register(program, "arpeggio")
    velocity, articulation = _velocity(rng) - 10, _articulation(rng)
    rate = float(rng.choice([1.0, 2.0, STEPS_PER_BEAT / 3]))  # sixteenths, eighths or eighth triplets
    shape = str(rng.choice(["up", "down", "up-down", "random"]))
    octaves = int(rng.choice([1, 2]))
    seventh = bool(rng.random() < 0.3)
    for bar, start, length in c.chord_changes():
        base = c.voicing(c.chord_root(bar, start), register=(low, low + 12), seventh=seventh)
        tones = [p + 12 * o for o in range(octaves) for p in base if p + 12 * o <= high] or base
        sequence = {"up": tones, "down": tones[::-1], "up-down": tones + tones[-2:0:-1]}.get(shape, tones)
        for k in range(int(length / rate)):
            pitch = int(rng.choice(tones)) if shape == "random" else sequence[k % len(sequence)]
            step = start + k * rate
            c.note(channel, pitch, c.tick(bar, step), rate * TICKS_PER_BEAT / STEPS_PER_BEAT * articulation,
                   velocity + (8 if step % STEPS_PER_BEAT == 0 else 0))


def _timpani(c: _Composer) -> None:
    rng = c.rng
    channel = c.channel("timpani", TIMPANI)
    c.mix_controls(channel)
    velocity = _velocity(rng)
    for bar in range(c.n_bars):
        root = c.degree_at_least(40, like=c.chord_root(bar))
        if bar % c.phrase_bars == c.phrase_bars - 1 and rng.random() < 0.6:  # a roll into the next phrase
            for k in range(4 * STEPS_PER_BEAT):
                step = c.steps_per_bar - STEPS_PER_BEAT + k / 4
                c.note(channel, c.degree_pitch(root), c.tick(bar, step), TICKS_PER_BEAT / 16,
                       velocity * (0.5 + 0.5 * k / (4 * STEPS_PER_BEAT)))
        elif rng.random() < 0.7:
            for step in (0, 2 * STEPS_PER_BEAT) if rng.random() < 0.5 else (0,):
                if step < c.steps_per_bar:
                    c.note(channel, c.degree_pitch(root + (4 if step else 0)), c.tick(bar, step),
                           TICKS_PER_BEAT, velocity)


def _kit_groove(c: _Composer, style: str) -> list[tuple[float, int, float]]:
    """One bar of a drum kit: (step, key, velocity scale)."""
    rng = c.rng
    n, beat = c.steps_per_bar, STEPS_PER_BEAT
    backbeats = [beat * b for b in range(1, c.beats, 2)] if c.beats == 4 else [beat, 2 * beat]
    hits: list[tuple[float, int, float]] = []
    kick = KICK if rng.random() < 0.7 else KICK_2
    snare = int(rng.choice([SNARE, SNARE, SNARE_2, CLAP if style == "four" else SIDE_STICK]))
    if style == "jazz" or (style in ("shuffle", "sparse") and rng.random() < 0.5):  # ride
        ride = RIDE if rng.random() < 0.8 else RIDE_BELL
        for b in range(c.beats):
            hits.append((b * beat, ride, 0.8 if b % 2 else 0.65))
            if b % 2 == 1:
                hits.append((b * beat + 2, ride, 0.5))
                hits.append((b * beat, HAT_PEDAL, 0.6))
    else:  # hats: quarters, eighths or sixteenths, the odd one open
        every = int(rng.choice([1, 2, 2, 4])) if style != "four" else 2
        start = 2 if style == "four" and rng.random() < 0.5 else 0
        open_steps = {int(s) for s in rng.choice(range(2, n, 4), int(rng.integers(0, 3)), replace=False)}
        for step in range(start, n, every if start == 0 else 4):
            key = HAT_OPEN if step in open_steps or (start and rng.random() < 0.7) else HAT_CLOSED
            hits.append((step, key, 0.75 if step % beat == 0 else 0.5))
    if style == "four":
        kicks = list(range(0, n, beat))
    elif style == "halftime":
        kicks = [0] + [int(s) for s in rng.choice(range(3, n), int(rng.integers(0, 3)), replace=False)]
        backbeats = [n // 2]
    elif style in ("funk", "latin"):
        kicks = [0] + [int(s) for s in rng.choice(range(2, n), int(rng.integers(2, 5)), replace=False)]
    elif style == "sparse":
        kicks = [0]
    else:
        kicks = [0, n // 2] + [int(s) for s in rng.choice([3, 6, 7, 10, 11, 14], int(rng.integers(0, 3)),
                                                          replace=False) if s < n]
    hits += [(float(s), kick, 0.95 if s == 0 else 0.8) for s in kicks]
    hits += [(float(s), snare, 0.9) for s in backbeats]
    if style in ("funk", "shuffle", "jazz"):  # ghost notes
        ghosts = rng.choice(range(1, n), int(rng.integers(1, 5)), replace=False)
        hits += [(float(s), SNARE, 0.25) for s in ghosts if s not in backbeats]
    if style == "shuffle":  # triplet feel: the off-beats late
        hits = [(s + (1 / 3 if s % 2 else 0), key, v) for s, key, v in hits]
    return hits


def _hand_groove(c: _Composer, *, dense: bool) -> list[tuple[float, int, float]]:
    """One bar of hand percussion: congas, bongos and timbales (in runs of 2, 3, 4 or 6 a beat where `dense`,
    as in tabla playing), with shakers, tambourine, cowbell, claves, triangle, agogo or woodblock."""
    rng = c.rng
    n, beat = c.steps_per_bar, STEPS_PER_BEAT
    drums = [int(k) for k in rng.choice(HAND_DRUMS, int(rng.integers(2, 5)), replace=False)]
    hits: list[tuple[float, int, float]] = []
    for b in range(c.beats):
        per_beat = int(rng.choice([2, 3, 4, 6] if dense else [1, 2, 2, 4]))
        for k in range(per_beat):
            if rng.random() < (0.8 if dense else 0.55):
                hits.append((b * beat + k * beat / per_beat, int(rng.choice(drums)),
                             float(rng.uniform(0.35, 1.0)) if k else float(rng.uniform(0.7, 1.0))))
    extra = str(rng.choice(["shaker", "tambourine", "cowbell", "claves", "triangle", "agogo", "woodblock",
                            "none"]))
    if extra == "shaker":
        key = int(rng.choice([MARACAS, CABASA, *GUIROS]))
        hits += [(float(s), key, 0.55 if s % 2 else 0.35) for s in range(n)]
    elif extra == "tambourine":
        hits += [(float(s), TAMBOURINE, 0.6) for s in range(2, n, 4 if rng.random() < 0.5 else 2)]
    elif extra == "cowbell":
        hits += [(float(s), COWBELL, 0.6) for s in range(0, n, beat)]
    elif extra == "claves":
        hits += [(float(s), CLAVES, 0.7) for s in (0, 6, 12, 20, 24) if s < n]
    elif extra == "triangle":
        hits += [(float(s), TRIANGLES[s % 4 == 0], 0.5) for s in range(0, n, 2)]
    elif extra == "agogo":
        hits += [(float(s), AGOGOS[int(rng.integers(2))], 0.6) for s in range(0, n, 2) if rng.random() < 0.6]
    elif extra == "woodblock":
        hits += [(float(s), WOODBLOCKS[s % 8 == 0], 0.6) for s in _random_steps(rng, n)]
    return hits


def _fill(c: _Composer, bar: int) -> list[tuple[float, int, float]]:
    """The last one or two beats of `bar`: snare and toms, falling in pitch, getting louder."""
    rng = c.rng
    n_beats = int(rng.choice([1, 1, 2])) if c.beats == 4 else 1
    rate = float(rng.choice([1.0, 1.0, 2.0, STEPS_PER_BEAT / 3, 0.5]))
    start = c.steps_per_bar - n_beats * STEPS_PER_BEAT
    count = int(n_beats * STEPS_PER_BEAT / rate)
    toms = sorted((int(t) for t in rng.choice(TOMS, int(rng.integers(2, 5)), replace=False)), reverse=True)
    voices = [SNARE] + toms
    return [(start + k * rate, voices[min(len(voices) - 1, k * len(voices) // count)],
             0.55 + 0.45 * k / count) for k in range(count)]


def _drums(c: _Composer, *, kit: int, style: str | None, hands: str | None) -> None:
    """A drum part on channel 10: a kit groove in `style` (None: no kit) with fills and crashes at the
    phrases, and hand percussion (`hands`: "layer", "dense" or None) over it."""
    rng = c.rng
    channel = c.drum_channel("drums" if style else "hand drums", kit)
    if hands and style:
        c.parts["hand drums"] = kit
    c.mix_controls(channel, volume=(85, 127))
    velocity = float(rng.integers(80, 124))
    step_ticks = TICKS_PER_BEAT / STEPS_PER_BEAT
    groove = _kit_groove(c, style) if style else []
    hand = _hand_groove(c, dense=hands == "dense") if hands else []
    fills = style is not None and rng.random() < 0.8
    crash = int(rng.choice([CRASH, CRASH, CRASH_2, SPLASH, CHINA]))
    for bar in range(c.n_bars):
        hits = list(groove)
        if hands:
            hits += hand if rng.random() < 0.7 else _hand_groove(c, dense=hands == "dense")
        hits = [h for h in hits if rng.random() > 0.06]  # a loop, never quite the same
        if style and rng.random() < 0.3:  # an extra kick or snare
            hits.append((float(rng.integers(0, c.steps_per_bar)), int(rng.choice([KICK, SNARE])), 0.6))
        phrase_end = bar % c.phrase_bars == c.phrase_bars - 1
        if fills and (phrase_end or rng.random() < 0.08):
            fill = _fill(c, bar)
            hits = [h for h in hits if h[0] < fill[0][0] or h[1] in (KICK, KICK_2)] + fill
        if style and bar % c.phrase_bars == 0 and (bar or rng.random() < 0.6):
            hits.append((0.0, crash, 1.0))
        for step, key, scale in hits:
            c.note(channel, key, c.tick(bar, step), step_ticks, velocity * scale)


def _orchestral_percussion(c: _Composer) -> None:
    """The orchestra kit: concert bass drum and cymbals opening the phrases, snare rolls closing some."""
    rng = c.rng
    channel = c.drum_channel("drums", ORCHESTRA_KIT)
    c.mix_controls(channel, volume=(85, 127))
    velocity = float(rng.integers(70, 124))
    cymbal = int(rng.choice([CRASH_2, 59]))
    for bar in range(c.n_bars):
        if bar % c.phrase_bars == 0:
            c.note(channel, KICK_2, c.tick(bar, 0), TICKS_PER_BEAT, velocity)
            if rng.random() < 0.7:
                c.note(channel, cymbal, c.tick(bar, 0), TICKS_PER_BEAT, velocity)
        elif rng.random() < 0.3:
            c.note(channel, KICK_2, c.tick(bar, 0), TICKS_PER_BEAT, 0.7 * velocity)
        if bar % c.phrase_bars == c.phrase_bars - 1 and rng.random() < 0.5:
            for k in range(2 * STEPS_PER_BEAT):
                step = c.steps_per_bar - STEPS_PER_BEAT + k / 2
                c.note(channel, SNARE, c.tick(bar, step), TICKS_PER_BEAT / 8,
                       velocity * (0.4 + 0.6 * k / (2 * STEPS_PER_BEAT)))


def _pick(rng: np.random.Generator, options: Sequence[int]) -> int:
    return int(options[int(rng.integers(len(options)))])


def compose_piece(*, seed: int, index: int, duration_s: float = DEFAULT_PIECE_S) -> Arrangement:
    """Piece `index` of `seed` as MIDI: a band, an orchestra, a solo instrument or drums alone."""
    if duration_s <= 0:
        raise ParameterError(f"duration_s={duration_s} must be positive")
    rng = np.random.default_rng([_RNG_TAG, FORMAT_VERSION, seed, index])
    c = _Composer(rng, duration_s)
    kind = str(rng.choice(["band", "orchestral", "solo", "drums"], p=[0.55, 0.1, 0.15, 0.2]))
    if kind in ("band", "orchestral"):
        pools = _ROLE_PROGRAMS if kind == "band" else _ORCHESTRAL_PROGRAMS
        chosen = {"bass": 0.85, "chords": 0.8, "melody": 0.75, "arpeggio": 0.4, "pad": 0.3}
        roles = [role for role, p in chosen.items() if rng.random() < p] or ["melody"]
        if kind == "band" and "chords" in roles and rng.random() < 0.35:
            chord_program = _pick(rng, GUITARS)
        else:
            chord_program = _pick(rng, pools["chords"])
        for role in roles:
            if role == "bass":
                _bass(c, _pick(rng, pools["bass"]))
            elif role == "chords":
                _chords(c, chord_program)
            elif role == "melody":
                _melody(c, _pick(rng, pools["melody"]))
            elif role == "arpeggio":
                _arpeggio(c, _pick(rng, pools["arpeggio"]))
            else:
                _chords(c, _pick(rng, pools["pad"]), role="pad")
        if kind == "orchestral":
            if rng.random() < 0.7:
                _timpani(c)
            if rng.random() < 0.5:
                _orchestral_percussion(c)
        elif rng.random() < 0.9:
            style = str(rng.choice(_DRUM_STYLES))
            hands = "layer" if style == "latin" or rng.random() < 0.25 else None
            _drums(c, kit=_pick(rng, KITS), style=style, hands=hands)
    elif kind == "solo":
        if rng.random() < 0.6:
            program = _pick(rng, _SOLO_POLYPHONIC)
            if rng.random() < 0.5:
                _chords(c, program)
            else:
                _arpeggio(c, program)
            if rng.random() < 0.7:
                _melody(c, program)
        else:
            program = _pick(rng, _SOLO_MONOPHONIC)
            if program in _BASS_PROGRAMS_IN_SOLO:
                _bass(c, program)
            else:
                _melody(c, program)
    else:  # drums: a kit, a kit with hand percussion, or hand drums alone (tabla-like runs)
        choice = rng.random()
        if choice < 0.35:
            _drums(c, kit=_pick(rng, KITS), style=None, hands="dense")
        else:
            _drums(c, kit=_pick(rng, KITS), style=str(rng.choice(_DRUM_STYLES)),
                   hands="layer" if choice < 0.6 else None)
    settings = {
        "synth.reverb.room-size": f"{rng.uniform(0.05, 0.9):.3f}",
        "synth.reverb.damp": f"{rng.uniform(0.0, 0.8):.3f}",
        "synth.reverb.level": f"{rng.uniform(0.2, 1.0):.3f}",
        "synth.chorus.level": f"{rng.uniform(0.0, 3.0):.3f}",
        "synth.chorus.depth": f"{rng.uniform(2.0, 20.0):.3f}",
        "synth.chorus.speed": f"{rng.uniform(0.1, 1.0):.3f}",
    }
    return Arrangement(midi=c.midi(), kind=kind, bpm=c.bpm, beats_per_bar=c.beats, parts=dict(c.parts),
                       settings=settings)


# --- rendering ---------------------------------------------------------------------------------------------
def render_midi(midi: Any, *, duration_s: float, settings: dict[str, str] | None = None,
                renderer: Renderer | None = None, sample_rate_hz: int = SAMPLE_RATE_HZ
                ) -> NDArray[np.float64]:
    """`midi` (a mido.MidiFile) played by FluidSynth: (samples,) mono float64, cut or zero-padded to
    `duration_s`, at the synthesizer's own level."""
    import soundfile

    renderer = renderer or find_renderer()
    with tempfile.TemporaryDirectory(prefix="nsac-render-") as folder:
        midi_path, wav_path = Path(folder) / "piece.mid", Path(folder) / "piece.wav"
        midi.save(str(midi_path))
        options = {"synth.lock-memory": "0", **(settings or {})}
        command = [renderer.fluidsynth, "-n", "-i", "-q", "-f", os.devnull, "-F", str(wav_path), "-T", "wav",
                   "-O", "float", "-r", str(sample_rate_hz), "-g", str(RENDER_GAIN)]
        for name, value in options.items():
            command += ["-o", f"{name}={value}"]
        command += [str(renderer.soundfont), str(midi_path)]
        # HOME elsewhere: a user's ~/.fluidsynth must not change the render
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S,
                                    env={**os.environ, "HOME": folder}, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as error:
            raise AudioError(f"fluidsynth did not finish a piece of {duration_s:g} s within "
                             f"{RENDER_TIMEOUT_S:g} s: {' '.join(command)}") from error
        if result.returncode != 0 or not wav_path.is_file():
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise AudioError(f"fluidsynth could not render a piece with {renderer.soundfont} (exit "
                             f"{result.returncode}): {' / '.join(detail) or 'no output'}")
        audio, rate = soundfile.read(str(wav_path), dtype="float64", always_2d=True)
    if rate != sample_rate_hz:
        raise AudioError(f"fluidsynth wrote {rate} Hz where {sample_rate_hz} Hz was asked for")
    mono = audio.mean(axis=1)
    n = round(duration_s * sample_rate_hz)
    return mono[:n] if mono.size >= n else np.pad(mono, (0, n - mono.size))


def render_piece(*, seed: int, index: int, duration_s: float = DEFAULT_PIECE_S,
                 renderer: Renderer | None = None) -> NDArray[np.float32]:
    """Piece `index` of `seed`: (samples,) float32 at SAMPLE_RATE_HZ, RMS TARGET_RMS_DBFS (lower only where
    the peak would pass PEAK_MAX)."""
    arrangement = compose_piece(seed=seed, index=index, duration_s=duration_s)
    audio = render_midi(arrangement.midi, duration_s=duration_s, settings=arrangement.settings,
                        renderer=renderer)
    if not np.isfinite(audio).all() or np.max(np.abs(audio)) < 1e-6:
        raise AudioError(f"rendered piece {index} of seed {seed} ({arrangement.kind}, {arrangement.parts}) "
                         "is silent or not finite: is the soundfont a General MIDI one?")
    return normalise_level(audio)


# --- the corpus on disk ---------------------------------------------------------------------------------
def ensure_rendered_music(root: str | Path | None = None, *, seed: int = 0, n_pieces: int = DEFAULT_N_PIECES,
                          piece_s: float = DEFAULT_PIECE_S, progress: bool = False) -> Path:
    """The corpus folder, rendered now (in a temporary folder, then renamed) unless it is there already.

    fluidsynth and a soundfont are needed only to render: a corpus already in the cache is used as it is.
    """
    check_n_pieces(n_pieces)
    root = Path(root) if root else default_cache_root(RENDERED_MUSIC)
    target = corpus_dir(root=root, seed=seed, n_pieces=n_pieces, piece_s=piece_s,
                        format_version=FORMAT_VERSION)
    if target.is_dir():
        return target
    renderer = find_renderer()
    _mido()
    return write_corpus(target,
                        lambda i: render_piece(seed=seed, index=i, duration_s=piece_s, renderer=renderer),
                        n_pieces=n_pieces, desc="rendering music", progress=progress,
                        notes={PROVENANCE_FILE: renderer.describe()})
