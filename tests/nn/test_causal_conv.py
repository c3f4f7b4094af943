"""Tests for nsac.nn.conv and nsac.nn.streaming: chunked equals whole, causality, output lengths."""

from __future__ import annotations

import pytest
import torch

from nsac.errors import ParameterError
from nsac.nn.conv import CausalConv1d, CausalConvTranspose1d
from nsac.nn.gru import GRUBlock
from nsac.nn.streaming import StreamingSequential, stream_in_chunks

#: float32 agreement between chunked and whole-signal runs (different GEMM blockings round differently)
ATOL = 1e-5
N_SAMPLES = 97
#: chunk sizes, cycled; sample-by-sample streaming is covered by the mixed list's 1
CHUNKINGS = ([7], [3, 40, 1, 17], [N_SAMPLES])


def _signal(channels: int = 3, n: int = N_SAMPLES, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, channels, n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kernel,stride,dilation", [(1, 1, 1), (3, 1, 1), (5, 1, 3), (4, 2, 1), (7, 4, 1),
                                                    (8, 8, 1), (5, 3, 2)])
@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_causal_conv_chunked_equals_whole(kernel: int, stride: int, dilation: int, chunks: list[int]) -> None:
    torch.manual_seed(1)
    conv = CausalConv1d(3, 5, kernel, stride=stride, dilation=dilation, norm="weight")
    x = _signal()
    whole = conv(x)
    assert whole.shape[-1] == -(-N_SAMPLES // stride)
    torch.testing.assert_close(stream_in_chunks(conv, x, chunks), whole, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kernel,stride", [(2, 2), (4, 2), (8, 4), (5, 3), (1, 1)])
@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_causal_conv_transpose_chunked_equals_whole(kernel: int, stride: int, chunks: list[int]) -> None:
    torch.manual_seed(2)
    conv = CausalConvTranspose1d(3, 4, kernel, stride=stride)
    torch.nn.init.normal_(conv.bias)
    x = _signal(n=30)
    whole = conv(x)
    assert whole.shape[-1] == 30 * stride
    torch.testing.assert_close(stream_in_chunks(conv, x, chunks), whole, atol=ATOL, rtol=0)


@pytest.mark.parametrize("layer", [
    CausalConv1d(2, 2, 5, dilation=2), CausalConvTranspose1d(2, 2, 6, stride=3), GRUBlock(2, hidden_size=4)])
def test_layers_are_causal(layer: torch.nn.Module) -> None:
    """Changing the future never changes the past."""
    x = _signal(channels=2, n=40)
    y = layer(x)
    x2 = x.clone()
    x2[..., 25:] += 1.0
    y2 = layer(x2)
    per_input = y.shape[-1] // x.shape[-1] if y.shape[-1] >= x.shape[-1] else 1
    cut = 25 * per_input
    torch.testing.assert_close(y[..., :cut], y2[..., :cut], atol=0, rtol=0)
    assert not torch.equal(y[..., cut:], y2[..., cut:])


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_gru_block_chunked_equals_whole(chunks: list[int]) -> None:
    torch.manual_seed(3)
    block = GRUBlock(3, hidden_size=6, num_layers=2)
    x = _signal()
    torch.testing.assert_close(stream_in_chunks(block, x, chunks), block(x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("chunks", [[4], [16, 4, 8], [120]])
def test_sequential_encoder_decoder_streams(chunks: list[int]) -> None:
    """A stack of strides, stateless activations and a GRU streams like its parts (chunks of 4k samples)."""
    torch.manual_seed(4)
    net = StreamingSequential(
        CausalConv1d(1, 4, 7), torch.nn.ELU(), CausalConv1d(4, 8, 8, stride=4), GRUBlock(8),
        CausalConvTranspose1d(8, 4, 8, stride=4), torch.nn.Tanh(), CausalConv1d(4, 1, 3))
    x = _signal(channels=1, n=120)
    torch.testing.assert_close(stream_in_chunks(net, x, chunks), net(x), atol=ATOL, rtol=0)


def test_bad_parameters_raise_parameter_error() -> None:
    with pytest.raises(ParameterError, match="kernel_size=0"):
        CausalConv1d(1, 1, 0)
    with pytest.raises(ParameterError, match="at least stride"):
        CausalConvTranspose1d(1, 1, 2, stride=4)
    with pytest.raises(ParameterError, match="norm="):
        CausalConv1d(1, 1, 3, norm="batch")
    with pytest.raises(ParameterError, match="positive"):
        stream_in_chunks(CausalConv1d(1, 1, 3), torch.zeros(1, 1, 10), [0])
