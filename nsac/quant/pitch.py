"""Pitch as side information: one code per coded frame, log-uniform, held through unvoiced frames.

The encoder sends one pitch code per frame of the codec (20 ms for the autoencoder): the pitch at the
frame's last sub-frame, on a grid of ``2 ** bits`` levels uniform in log2 f0 from `min_hz` to `max_hz`
(7 bits over 62.5-500 Hz: 28 cents a step, at most 14 cents off). Where the estimate's periodicity
is below `hold_below`, the frame repeats the previous code: an unvoiced frame's estimate is noise, and
holding keeps the pitch contour smooth for the next voiced frame. The decoder turns codes back into a pitch
for each of the frame's `subframes`, interpolating log2 f0 linearly from the previous frame's value to
this frame's (which sits on the last sub-frame), so it needs no look-ahead.

Both directions carry the previous code as their state; before the first frame it is `initial_code` (the
middle of the grid).
"""

from __future__ import annotations

import math

import torch

from nsac.errors import ParameterError


class PitchQuantizer:
    """Log-uniform pitch codes with hold and interpolation (module docstring).

    Parameters
    ----------
    bits : bits per code, 1..16
    min_hz, max_hz : the pitch range; codes 0 and 2**bits - 1 sit on its ends
    hold_below : a frame whose periodicity is below this repeats the previous code
    subframes : pitch values the decoder makes per code
    """

    def __init__(self, *, bits: int, min_hz: float, max_hz: float, hold_below: float, subframes: int) -> None:
        if not isinstance(bits, int) or not 1 <= bits <= 16:
            raise ParameterError(f"pitch bits={bits!r} must be an integer in 1..16")
        if not 0 < min_hz < max_hz:
            raise ParameterError(f"pitch range {min_hz}..{max_hz} Hz must be positive and increasing")
        if subframes < 1:
            raise ParameterError(f"subframes={subframes} must be >= 1")
        self.bits, self.levels = bits, 2**bits
        self.log2_min, self.log2_max = math.log2(min_hz), math.log2(max_hz)
        self.octaves_per_step = (self.log2_max - self.log2_min) / (self.levels - 1)
        self.hold_below, self.subframes = float(hold_below), int(subframes)
        self.initial_code = self.levels // 2

    def log2_hz(self, codes: torch.Tensor) -> torch.Tensor:
        """log2 f0 of codes (float64)."""
        return self.log2_min + codes.double() * self.octaves_per_step

    def encode(self, f0_hz: torch.Tensor, periodicity: torch.Tensor,
               previous: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (B, T) int64 of pitch and periodicity (B, T); `previous` (B,) codes before them."""
        if f0_hz.shape != periodicity.shape or f0_hz.ndim != 2:
            raise ParameterError(f"pitch {tuple(f0_hz.shape)} and periodicity {tuple(periodicity.shape)} must "
                                 "both be (batch, frames)")
        batch, frames = f0_hz.shape
        if previous is None:
            previous = torch.full((batch,), self.initial_code, dtype=torch.int64, device=f0_hz.device)
        steps = (torch.log2(f0_hz.double().clamp(min=1e-3)) - self.log2_min) / self.octaves_per_step
        codes = torch.round(steps).clamp(0, self.levels - 1).long()
        # hold: each frame takes the code of the last frame at or before it that was periodic enough
        kept = periodicity >= self.hold_below
        position = torch.arange(1, frames + 1, device=f0_hz.device).expand(batch, -1)
        last_kept = torch.cummax(torch.where(kept, position, 0), dim=-1).values
        with_previous = torch.cat([previous[:, None].to(codes), codes], dim=-1)
        return with_previous.gather(-1, last_kept)

    def decode(self, codes: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """Pitch in Hz (B, T * subframes), float64, of codes (B, T); `previous` (B,) the code before them."""
        if codes.ndim != 2:
            raise ParameterError(f"pitch codes of shape {tuple(codes.shape)}; expected (batch, frames)")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.levels):
            raise ParameterError(f"pitch codes must lie in 0..{self.levels - 1}")
        if previous is None:
            previous = torch.full((codes.shape[0],), self.initial_code, dtype=torch.int64, device=codes.device)
        ends = self.log2_hz(codes)
        starts = torch.cat([self.log2_hz(previous)[:, None], ends[:, :-1]], dim=-1)
        weight = torch.arange(1, self.subframes + 1, dtype=torch.float64, device=codes.device) / self.subframes
        log2_f0 = starts[..., None] + weight * (ends - starts)[..., None]  # (B, T, subframes)
        return torch.exp2(log2_f0.reshape(codes.shape[0], -1))


__all__ = ["PitchQuantizer"]
