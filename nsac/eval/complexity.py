"""What coding costs: bitrate from the bytes written, one-thread real-time factors, peak memory, delay, MACs.

How each number is measured (the report repeats this):

- Bitrate comes from the .nsac bytes actually written (:func:`bitrate_from_bytes`): ``payload_kbps`` counts
  the packets only, ``file_kbps`` the whole file (header, lengths, checksum), both over the source duration.
- Real-time factor = CPU seconds of the coding / seconds of audio, so 0.01 is a hundred times faster than
  real time. Thread pools are limited to one thread (:func:`limit_threads`: the OpenMP/MKL/BLAS variables
  and ``torch.set_num_threads(1)``), and CPU time (all threads of the process) rather than wall time is
  counted, so the figure does not depend on what else the machine runs. Building the codec and a short
  warm-up (``WARMUP_MS`` of encoding, ``WARMUP_PACKETS`` of decoding, which sets up what codecs build
  lazily) are not timed. Encoding is timed through :func:`nsac.coding.encode_audio` and decoding through
  :func:`nsac.coding.decode_bytes`, i.e. with resampling, container writing/parsing and, for decoding,
  one construction of the (already loaded) codec.
- Peak memory is the working memory of coding one file with the codec loaded and warm: the codec is built
  and warmed up, then the coding runs in a child forked for it, which reads its resident set from
  ``/proc/self/statm`` first and ``getrusage(RUSAGE_SELF).ru_maxrss`` after; the difference in MiB is
  reported, separately for encoding and decoding. Weights are not in it (``parameters`` says how many);
  pages of the parent the child touches first (library code) are, so small values carry about a MiB of
  noise. A crash of the codec (a signal in a C library) kills only the child and becomes an error.
- Algorithmic delay = ``codec.algorithmic_delay / codec.sample_rate`` in ms; MACs per second and the
  parameter count come from ``codec.complexity()`` (zero for legacy codecs).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nsac import errors
from nsac.bitstream.inspect import describe
from nsac.errors import NsacError

#: environment variables that size the thread pools of OpenMP, MKL, OpenBLAS and friends
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")
_BYTES_PER_MIB = 2**20
#: ru_maxrss is in KiB on Linux
_RU_MAXRSS_UNIT_BYTES = 1024
_MS_PER_S = 1000.0
#: audio encoded, and packets decoded, untimed before the measured run, so that lazy set-up is not timed
WARMUP_MS = 100.0
WARMUP_PACKETS = 5
#: length of the JSON header the measuring child sends before its payload: 8-byte little-endian count
_HEADER_LENGTH_BYTES = 8


def limit_threads() -> None:
    """Limit every thread pool of this process to one thread (set before torch or numpy's BLAS start)."""
    for name in THREAD_ENV_VARS:
        os.environ[name] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def bitrate_from_bytes(data: bytes) -> dict[str, float]:
    """Payload and file bitrate (kb/s) and duration (s) of a .nsac file, measured from its bytes."""
    info = describe(data)
    return {"payload_kbps": float(info["payload_kbps"]), "file_kbps": float(info["file_kbps"]),
            "duration_s": float(info["duration_s"])}


def codec_costs(codec: Any) -> dict[str, float]:
    """Algorithmic delay in ms, MACs per second and parameters of a built codec."""
    costs = codec.complexity()
    return {"delay_ms": codec.algorithmic_delay / codec.sample_rate * _MS_PER_S,
            "macs_per_second": float(costs.get("macs_per_second", 0.0)),
            "parameters": float(costs.get("parameters", 0))}


@dataclass(frozen=True)
class Measured:
    """The result of one measured operation: what it returned, its CPU time and peak memory."""

    info: dict[str, Any]
    payload: bytes
    cpu_s: float
    peak_mib: float


#: an operation to measure: prepare (untimed) returns a callable whose run is timed and returns
#: (info, payload); info must be JSON-serialisable
Operation = Callable[[], Callable[[], tuple[dict[str, Any], bytes]]]


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _timed(run: Callable[[], tuple[dict[str, Any], bytes]]) -> tuple[dict[str, Any], bytes, float]:
    """Time `run` in CPU seconds on one torch thread (restored after: this may be the caller's process)."""
    torch = sys.modules.get("torch")
    n_threads = torch.get_num_threads() if torch is not None else 0
    if torch is not None:
        torch.set_num_threads(1)
    try:
        start = time.process_time()
        info, payload = run()
        return info, payload, time.process_time() - start
    finally:
        if torch is not None:
            torch.set_num_threads(n_threads)


def measure(prepare: Operation, *, isolate: bool = True) -> Measured:
    """Prepare an operation here (untimed), then run and measure it.

    With ``isolate`` the run happens in a forked child, which also gives its peak memory; without it (or
    where fork is missing) it runs here and ``peak_mib`` is NaN. Errors raised by the operation are raised
    again here, as the same nsac error class when it is one.
    """
    run = prepare()
    if not isolate or not hasattr(os, "fork"):
        info, payload, cpu_s = _timed(run)
        return Measured(info, payload, cpu_s, float("nan"))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: measure, send header + payload, exit without running the parent's cleanup
        os.close(read_fd)
        status = 0
        try:
            baseline = _resident_bytes()
            try:
                info, payload, cpu_s = _timed(run)
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RU_MAXRSS_UNIT_BYTES
                header = {"info": info, "cpu_s": cpu_s, "peak_mib": max(0, peak - baseline) / _BYTES_PER_MIB}
            except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
                header, payload = {"error": str(exc) or type(exc).__name__, "type": type(exc).__name__}, b""
            raw = json.dumps(header).encode()
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(len(raw).to_bytes(_HEADER_LENGTH_BYTES, "little") + raw + payload)
        except BaseException:  # noqa: BLE001
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    if len(data) < _HEADER_LENGTH_BYTES:
        if os.WIFSIGNALED(wait_status):
            raise NsacError(f"the codec crashed (signal {os.WTERMSIG(wait_status)}) while coding; "
                            "run it alone with `nsac encode` to reproduce")
        raise NsacError(f"the measuring process exited with status {os.waitstatus_to_exitcode(wait_status)} "
                        "and sent nothing back")
    n_header = int.from_bytes(data[:_HEADER_LENGTH_BYTES], "little")
    header = json.loads(data[_HEADER_LENGTH_BYTES : _HEADER_LENGTH_BYTES + n_header])
    if "error" in header:
        error_class = getattr(errors, header["type"], None)
        if not (isinstance(error_class, type) and issubclass(error_class, NsacError)):
            error_class = NsacError
            header["error"] = f"{header['type']}: {header['error']}"
        raise error_class(header["error"])
    payload = data[_HEADER_LENGTH_BYTES + n_header :]
    return Measured(header["info"], payload, header["cpu_s"], header["peak_mib"])


def _warmup_samples(sample_rate_hz: int) -> int:
    return max(1, round(WARMUP_MS * sample_rate_hz / _MS_PER_S))


def measure_encode(audio: np.ndarray, sample_rate_hz: int, codec: str, options: dict[str, Any], *,
                   isolate: bool = True) -> Measured:
    """Encode with `codec` (built from its name and options, untimed); payload = the .nsac bytes.

    info holds the codec's config, rate, nominal bitrate, delay, MACs and parameters.
    """
    from nsac.coding import build_codec, encode_audio

    def prepare() -> Callable[[], tuple[dict[str, Any], bytes]]:
        built = build_codec(codec, source_rate_hz=sample_rate_hz, channels=audio.shape[0], **options)
        encode_audio(audio[:, : _warmup_samples(sample_rate_hz)], sample_rate_hz, built)  # lazy set-up

        def run() -> tuple[dict[str, Any], bytes]:
            data = encode_audio(audio, sample_rate_hz, built)
            info = {"codec_rate_hz": built.sample_rate, "bitrate_bps": built.bitrate, **codec_costs(built)}
            return info, data

        return run

    return measure(prepare, isolate=isolate)


def measure_decode(data: bytes, *, isolate: bool = True) -> tuple[np.ndarray, int, Measured]:
    """Decode .nsac bytes; returns ((channels, samples) float32 audio, its rate in Hz, the measurement)."""
    from nsac.bitstream.container import loads
    from nsac.coding import codec_for, decode_bytes

    def prepare() -> Callable[[], tuple[dict[str, Any], bytes]]:
        parsed = loads(data)
        codec_for(parsed.header).decode(parsed.packets[:WARMUP_PACKETS])  # load and set up lazily built parts

        def run() -> tuple[dict[str, Any], bytes]:
            audio, rate = decode_bytes(data)
            return {"shape": list(audio.shape), "sample_rate_hz": rate}, np.ascontiguousarray(audio).tobytes()

        return run

    measured = measure(prepare, isolate=isolate)
    audio = np.frombuffer(measured.payload, dtype=np.float32).reshape(measured.info["shape"])
    return audio, int(measured.info["sample_rate_hz"]), measured


__all__ = ["THREAD_ENV_VARS", "Measured", "bitrate_from_bytes", "codec_costs", "limit_threads", "measure",
           "measure_decode", "measure_encode"]
