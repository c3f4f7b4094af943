"""Audio in and out: reading (soundfile), resampling (soxr), writing, and nsac's sample-format policy.

Policy: inside nsac audio is float32 of shape (channels, samples) with samples nominally in [-1, 1].
Reading refuses what cannot be coded faithfully (a missing, unreadable or empty file, NaN or infinite
samples) with an AudioError; writing clips to the range the output format can hold and says how much it clipped.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nsac.errors import AudioError, ParameterError

#: output sample formats by name, as soundfile calls them
WRITE_SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}
#: container formats by file extension
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
#: the largest sample a 16-bit file holds, as a float
_INT16_MAX = 32767 / 32768


@dataclass(frozen=True)
class WriteReport:
    """What `write` did: samples written and how many were clipped to fit the format."""

    n_samples: int
    n_clipped: int


def _open_source(source: str | Path | BinaryIO) -> str | BinaryIO:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise AudioError(f"{path}: no such file")
        if path.is_dir():
            raise AudioError(f"{path}: is a folder, not an audio file")
        return str(path)
    # soundfile needs to seek; pipes cannot, so a stream is read into memory once
    return io.BytesIO(source.read())


def read(source: str | Path | BinaryIO, *, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read WAV, FLAC, OGG or MP3 into float32 (channels, samples).

    Parameters
    ----------
    source : path or binary file object (a pipe is read into memory first)
    sample_rate : resample to this rate in Hz with soxr; None keeps the file's rate

    Returns
    -------
    (audio, sample_rate_hz)
    """
    import soundfile

    name = str(source) if isinstance(source, (str, Path)) else "<stream>"
    try:
        data, file_rate = soundfile.read(_open_source(source), dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{name}: cannot read audio ({str(exc).strip() or type(exc).__name__})") from None
    audio = np.ascontiguousarray(data.T)
    if audio.shape[1] == 0:
        raise AudioError(f"{name}: the file holds no samples")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{name}: the file holds NaN or infinite samples")
    if sample_rate is not None and sample_rate != file_rate:
        audio = resample(audio, from_hz=file_rate, to_hz=sample_rate)
        file_rate = sample_rate
    return audio, int(file_rate)


def resample(audio: np.ndarray, *, from_hz: int, to_hz: int) -> np.ndarray:
    """Resample (channels, samples) float32 with soxr's very-high-quality filter; length = round(n * to/from)."""
    import soxr

    if from_hz <= 0 or to_hz <= 0:
        raise ParameterError(f"sample rates must be positive, got from_hz={from_hz}, to_hz={to_hz}")
    if from_hz == to_hz:
        return np.asarray(audio, dtype=np.float32)
    out = soxr.resample(np.asarray(audio, dtype=np.float32).T, from_hz, to_hz, quality="VHQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, audio.shape[0]).T)


def write(
    target: str | Path | BinaryIO,
    audio: np.ndarray,
    sample_rate: int,
    *,
    bits: str = "16",
    file_format: str | None = None,
) -> WriteReport:
    """Write (channels, samples) float audio as WAV or FLAC.

    Parameters
    ----------
    bits : "16", "24" or "float" (FLAC cannot hold float)
    file_format : "WAV" or "FLAC"; None takes it from the extension (a stream defaults to WAV)

    Integer formats hold [-1, 1 - 2**-15]: louder samples are clipped and counted in the report.
    """
    import soundfile

    if bits not in WRITE_SUBTYPES:
        raise ParameterError(f"bits={bits!r} is not supported; use one of {', '.join(WRITE_SUBTYPES)}")
    if file_format is None:
        if isinstance(target, (str, Path)):
            suffix = Path(target).suffix.lower()
            if suffix not in WRITE_FORMATS:
                raise ParameterError(f"{target}: cannot tell the format from {suffix!r}; use .wav or .flac")
            file_format = WRITE_FORMATS[suffix]
        else:
            file_format = "WAV"
    file_format = file_format.upper()
    if file_format not in WRITE_FORMATS.values():
        raise ParameterError(f"file_format={file_format!r} is not supported; use WAV or FLAC")
    subtype = WRITE_SUBTYPES[bits]
    if file_format == "FLAC" and subtype == "FLOAT":
        raise ParameterError("FLAC cannot hold float samples; use bits='16' or '24', or a .wav file")
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise AudioError(f"audio has shape {arr.shape}; expected (channels, samples)")
    if not np.all(np.isfinite(arr)):
        raise AudioError("audio to write contains NaN or infinite samples")
    n_clipped = 0
    if subtype != "FLOAT":
        over = (arr > _INT16_MAX) | (arr < -1.0)
        n_clipped = int(np.count_nonzero(over))
        arr = np.clip(arr, -1.0, _INT16_MAX)
    if isinstance(target, (str, Path)):
        soundfile.write(str(target), arr.T, int(sample_rate), subtype=subtype, format=file_format)
    else:
        buffer = io.BytesIO()
        soundfile.write(buffer, arr.T, int(sample_rate), subtype=subtype, format=file_format)
        target.write(buffer.getvalue())
    return WriteReport(n_samples=arr.shape[1], n_clipped=n_clipped)
