"""GRU blocks over (batch, channels, time) with a residual path, streaming through their hidden state."""

from __future__ import annotations

import torch
from torch import nn

from nsac.errors import ParameterError


class GRUBlock(nn.Module):
    """y = x + Linear(GRU(x)): a causal recurrent block that keeps the channel count.

    Shapes: (batch, channels, time) -> (batch, channels, time). The streaming state is the GRU's hidden
    state, (num_layers, batch, hidden_size).
    """

    def __init__(self, channels: int, *, hidden_size: int | None = None, num_layers: int = 1,
                 residual: bool = True) -> None:
        super().__init__()
        hidden_size = channels if hidden_size is None else hidden_size
        if channels < 1 or hidden_size < 1 or num_layers < 1:
            raise ParameterError(f"channels={channels}, hidden_size={hidden_size} and "
                                 f"num_layers={num_layers} must be positive integers")
        self.gru = nn.GRU(channels, hidden_size, num_layers=num_layers, batch_first=True)
        self.project = nn.Linear(hidden_size, channels)
        self.residual = residual

    def _run(self, x: torch.Tensor, hidden: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        y, hidden = self.gru(x.transpose(1, 2), hidden)
        y = self.project(y).transpose(1, 2)
        return (x + y if self.residual else y), hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)[0]

    def stream(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.shape[-1] == 0:
            return x, state
        return self._run(x, state)
