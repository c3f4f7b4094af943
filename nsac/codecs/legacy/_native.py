"""Plumbing for the legacy codecs that call C: loading, int16 PCM, bit packing, packet checks, RNG seeds.

Nothing here imports a codec library; each adapter opens its own library lazily through `load_library`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform
import struct
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from nsac.errors import BitstreamError, NsacError

#: float 1.0 is int16 32768 (clipped to 32767), the convention soundfile uses for 16-bit PCM
INT16_FULL_SCALE = 32768.0
_INT16_MIN = -32768
_INT16_MAX = 32767


def float_to_int16(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1], any shape, to C-contiguous int16 PCM: scaled, rounded, clipped."""
    scaled = np.rint(np.asarray(audio, dtype=np.float64) * INT16_FULL_SCALE)
    return np.ascontiguousarray(np.clip(scaled, _INT16_MIN, _INT16_MAX).astype(np.int16))


def int16_to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 PCM, any shape, to float32 in [-1, 1)."""
    return np.asarray(pcm, dtype=np.float32) / np.float32(INT16_FULL_SCALE)


# --- libraries ----------------------------------------------------------------------------------------------
@functools.cache
def load_library(
    name: str, sonames: tuple[str, ...] = (), symbols: tuple[str, ...] = ()
) -> ctypes.CDLL | None:
    """Open a shared library by short name (`ctypes.util.find_library`) or else by one of its sonames.

    Returns None when no candidate opens, or when one that opens lacks any of `symbols` (another version).
    """
    for candidate in (ctypes.util.find_library(name), *sonames):
        if not candidate:
            continue
        try:
            lib = ctypes.CDLL(candidate)
        except OSError:
            continue
        if all(hasattr(lib, symbol) for symbol in symbols):
            return lib
    return None


def bind(lib: ctypes.CDLL, name: str, argtypes: Sequence[Any], restype: Any = None) -> Callable[..., Any]:
    """A fresh typed function pointer for `name` (indexing, unlike attribute access, shares no argtypes)."""
    function = lib[name]
    function.argtypes = list(argtypes)
    function.restype = restype
    return function


class NativeState:
    """One C state pointer, owned by a Python object and destroyed once, when the owner is collected."""

    def __init__(self, pointer: int | None, destroy: Callable[[int], object], *, what: str) -> None:
        if not pointer:
            raise NsacError(
                f"{what}: the library returned no state (out of memory, or a broken installation)"
            )
        self.pointer: int = pointer
        self._finalizer = weakref.finalize(self, destroy, pointer)

    def close(self) -> None:
        self._finalizer()


# --- packets ------------------------------------------------------------------------------------------------
def check_packet(packet: object, *, n_bytes: int, codec: str) -> bytes:
    """Return `packet` as bytes when it has exactly `n_bytes`; BitstreamError otherwise."""
    if not isinstance(packet, (bytes, bytearray, memoryview)):
        raise BitstreamError(
            f"{codec}: a packet is {type(packet).__name__}; expected bytes, or None for a lost one"
        )
    data = bytes(packet)
    if len(data) != n_bytes:
        raise BitstreamError(
            f"{codec}: packet of {len(data)} bytes; this configuration writes {n_bytes}-byte packets "
            "(a corrupt stream, or decoding with another bitrate or mode than the encoder's)"
        )
    return data


def pack_bits(bits: np.ndarray) -> bytes:
    """One bit per element (0/1) to bytes, most significant bit first, the last byte zero padded."""
    return np.packbits(np.asarray(bits, dtype=np.uint8) & 1).tobytes()


def unpack_bits(data: bytes, *, n_bits: int, codec: str) -> np.ndarray:
    """Inverse of `pack_bits`: int8 array of `n_bits` 0/1 values; BitstreamError when a padding bit is set."""
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    if bits[n_bits:].any():
        raise BitstreamError(
            f"{codec}: the padding bits after bit {n_bits} are not zero; the packet is corrupt"
        )
    return np.ascontiguousarray(bits[:n_bits].astype(np.int8))


# --- the hidden random generators of some C codecs ----------------------------------------------------------
#: every call that reads or writes process-global random state in a C library holds this lock
GLOBAL_RNG_LOCK = threading.RLock()

#: ANSI C's example rand(), next = next * 1103515245 + 12345, which codec2 and LPCNet keep in statics
_LCG_MULTIPLIER = 1103515245
_LCG_INCREMENT = 12345
_LCG_FIRST_SEED = 1  # what C starts `next` at, so a fresh stream draws what a fresh process would
_LCG_OUTPUT_SHIFT = 16
_LCG_OUTPUT_MASK = 0x7FFF

# x86-64 code of `next = next * 1103515245 + 12345` with `next` addressed relative to the instruction pointer:
#   imul $1103515245, disp1(%rip), %reg ; add $12345, %reg ; mov %reg, disp2(%rip)
# as (width of `next` in bytes, opcode before disp1, bytes from disp1's end through the add, store opcode).
_MUL = struct.pack("<I", _LCG_MULTIPLIER)
_LCG_CODE_PATTERNS = (
    (8, b"\x48\x69\x05", _MUL + b"\x48\x05" + struct.pack("<I", _LCG_INCREMENT), b"\x48\x89\x05"),
    (4, b"\x69\x05", _MUL + b"\x05" + struct.pack("<I", _LCG_INCREMENT), b"\x89\x05"),
)
#: bytes of the longest pattern, displacements included: no more code than that is read
_LCG_CODE_BYTES = max(
    len(opcode) + 4 + len(middle) + len(store) + 4 for _, opcode, middle, store in _LCG_CODE_PATTERNS
)


def _locate_lcg_seed(function_address: int) -> tuple[int, int] | None:
    """Address and width of the `next` that the LCG function at `function_address` updates, or None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    code = ctypes.string_at(function_address, _LCG_CODE_BYTES)
    for width, opcode, middle, store in _LCG_CODE_PATTERNS:
        disp1_at = len(opcode)
        disp2_at = disp1_at + 4 + len(middle) + len(store)
        if not (code.startswith(opcode) and code[disp1_at + 4 :].startswith(middle + store)):
            continue
        (disp1,) = struct.unpack_from("<i", code, disp1_at)
        (disp2,) = struct.unpack_from("<i", code, disp2_at)
        # rip-relative: the target is the address of the next instruction plus the displacement
        load_target = function_address + disp1_at + 4 + len(_MUL) + disp1
        store_target = function_address + disp2_at + 4 + disp2
        if load_target == store_target:
            return load_target, width
    return None


class LcgSeed:
    """The static seed of a C library's rand-like LCG, read and written in place so that each stream owns one.

    codec2 (`codec2_rand`, random phases of unvoiced harmonics) and LPCNet (`nnet_rand`, sampling the
    excitation) draw from a process-global generator that no API seeds, which makes their decoders depend on
    whatever was decoded before in the process. The seed is found from the machine code of the exported
    generator function (x86-64 only) and accepted only when calling the function advances it exactly as the
    LCG must; otherwise `find` gives None and decoding stays correct but not repeatable.
    """

    def __init__(self, function: Callable[..., int], address: int, width: int) -> None:
        self._function = function
        self._cell = (ctypes.c_uint64 if width == 8 else ctypes.c_uint32).from_address(address)
        self._modulus = 1 << (8 * width)

    @classmethod
    def find(cls, lib: ctypes.CDLL, symbol: str) -> LcgSeed | None:
        if not hasattr(lib, symbol):
            return None
        function = bind(lib, symbol, [], ctypes.c_uint32)
        located = _locate_lcg_seed(ctypes.cast(lib[symbol], ctypes.c_void_p).value or 0)
        if located is None:
            return None
        seed = cls(function, *located)
        return seed if seed._behaves() else None

    def _behaves(self) -> bool:
        with GLOBAL_RNG_LOCK:
            before = self._cell.value
            drawn = self._function()
            after = self._cell.value
            self._cell.value = before
        expected = (before * _LCG_MULTIPLIER + _LCG_INCREMENT) % self._modulus
        return (
            after == expected
            and (drawn & _LCG_OUTPUT_MASK) == (expected >> _LCG_OUTPUT_SHIFT) & _LCG_OUTPUT_MASK
        )

    def swap(self, value: int) -> int:
        """Set the seed to `value`, return the one it replaces; call with GLOBAL_RNG_LOCK held."""
        previous = self._cell.value
        self._cell.value = value
        return previous


class StreamRng:
    """A stream's own draw sequence from a library generator: swapped in for each call, swapped out after."""

    def __init__(self, seed: LcgSeed | None) -> None:
        self._seed = seed
        self._value = _LCG_FIRST_SEED

    @contextmanager
    def active(self) -> Iterator[None]:
        with GLOBAL_RNG_LOCK:
            if self._seed is None:
                yield
                return
            saved = self._seed.swap(self._value)
            try:
                yield
            finally:
                self._value = self._seed.swap(saved)
