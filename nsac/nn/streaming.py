"""Streaming protocol for causal layers: explicit per-layer state, a sequential container, a chunked runner.

A streaming layer has two calls that agree sample for sample::

    y = layer(x)                           # the whole signal at once, (batch, channels, time)
    y1, s = layer.stream(x1, None)         # the same signal in chunks x1, x2, ...: the state s carries
    y2, s = layer.stream(x2, s)            # what the layer needs from the past (inputs, overlap, hidden)
    torch.cat([y1, y2, ...], -1) == y

The state is a tensor or a tuple of tensors (never a Python object holding modules), so a caller can keep
it per stream, copy it or drop it. Layers that act on each time step alone (activations, 1x1 convolutions,
normalisation over channels) need no state: :class:`StreamingSequential` calls their `forward`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from nsac.errors import ParameterError

#: what a layer carries from one chunk to the next; None before the first chunk
State = Any


@runtime_checkable
class Streaming(Protocol):
    """A layer that can run chunk by chunk with the same result as on the whole signal."""

    def stream(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]: ...


class StreamingSequential(nn.Sequential):
    """`nn.Sequential` whose `stream` threads one state per layer; stateless layers must act per time step."""

    def stream(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        states = list(state) if state is not None else [None] * len(self)
        if len(states) != len(self):
            raise ParameterError(f"state holds {len(states)} layer states but the sequence has {len(self)} "
                                 "layers")
        new_states: list[State] = []
        for layer, layer_state in zip(self, states):
            if isinstance(layer, Streaming):
                x, layer_state = layer.stream(x, layer_state)
            else:
                x = layer(x)
            new_states.append(layer_state)
        return x, tuple(new_states)


def stream_in_chunks(layer: nn.Module, x: torch.Tensor, chunk_sizes: Sequence[int]) -> torch.Tensor:
    """Run `layer.stream` over consecutive chunks of `x` (time on the last axis) and join the outputs.

    The chunk sizes are cycled until the signal is used up; the tests compare this with `layer(x)`.
    """
    if not chunk_sizes or any(size <= 0 for size in chunk_sizes):
        raise ParameterError(f"chunk_sizes={list(chunk_sizes)} must be positive integers")
    if not isinstance(layer, Streaming):
        raise ParameterError(f"{type(layer).__name__} has no stream() method")
    outputs: list[torch.Tensor] = []
    state: State = None
    start, i = 0, 0
    total = x.shape[-1]
    while start < total:
        size = chunk_sizes[i % len(chunk_sizes)]
        y, state = layer.stream(x[..., start : start + size], state)
        outputs.append(y)
        start += size
        i += 1
    return torch.cat(outputs, dim=-1)
