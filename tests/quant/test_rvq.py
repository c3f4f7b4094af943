"""Residual VQ: round trip, k-means start, EMA updates, dead-code restart, quantiser dropout, statistics."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import torch

from nsac.errors import ParameterError
from nsac.quant.rvq import ResidualVectorQuantizer, kmeans


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def latents(batch: int = 4, dim: int = 4, frames: int = 50, *, offset: float = 0.0) -> torch.Tensor:
    return torch.randn(batch, dim, frames) * torch.tensor([1.0, 0.5, 2.0, 0.1])[None, :dim, None] + offset


def rvq(**kwargs) -> ResidualVectorQuantizer:
    options = {"dim": 4, "n_codebooks": 4, "codebook_size": 16, **kwargs}
    return ResidualVectorQuantizer(**options)


def test_entries_code_to_themselves_and_decode_back() -> None:
    q = rvq().eval()
    entries = q.embed[0][torch.tensor([3, 0, 15, 7])]  # (4, D) -> one item, 4 frames
    codes = q.encode(entries.t()[None], 1)
    assert codes.tolist() == [[[3, 0, 15, 7]]]
    assert torch.equal(q.decode(codes), entries.t()[None])


def test_encode_decode_matches_forward_and_error_falls_with_more_codebooks() -> None:
    q = rvq()
    x = latents()
    q.train()(x)  # k-means start on this batch
    q.eval()
    errors = []
    for n_q in range(1, 5):
        codes = q.encode(x, n_q)
        assert codes.shape == (4, n_q, 50) and codes.dtype == torch.int64
        out, forward_codes, _ = q(x, n_q)
        assert torch.equal(forward_codes, codes)
        assert torch.allclose(out, q.decode(codes), atol=1e-6)
        errors.append(float((x - q.decode(codes)).pow(2).mean()))
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.1 * float(x.var())


def test_kmeans_start_places_the_entries_on_the_data() -> None:
    q = rvq()
    x = latents(offset=5.0)
    assert not bool(q.initialized)
    before = float((x - q.eval().decode(q.encode(x, 1))).pow(2).mean())
    q.train()(x)
    assert bool(q.initialized)
    after = float((x - q.eval().decode(q.encode(x, 1))).pow(2).mean())
    assert after < 0.05 * before
    assert torch.allclose(q.embed[0].mean(0), x.mean((0, 2)), atol=0.5)


def test_kmeans_never_empties_a_cluster_and_counts_every_vector() -> None:
    x = torch.randn(40, 3)
    centroids, counts = kmeans(x, 64)  # more clusters than vectors: drawn with replacement
    assert centroids.shape == (64, 3) and torch.isfinite(centroids).all()
    assert int(counts.sum()) == 40


def test_ema_moves_used_entries_toward_their_vectors() -> None:
    q = rvq(n_codebooks=1, decay=0.5, dead_ratio=0.0, dropout_p=0.0).train()
    x = latents()
    q(x)
    first = q.embed.clone()
    for _ in range(5):
        q(x)
    code = q.encode(x, 1).flatten()
    flat = x.transpose(1, 2).reshape(-1, 4)
    used = torch.unique(code)
    means = torch.stack([flat[code == k].mean(0) for k in used.tolist()])
    assert (q.embed[0][used] - means).abs().mean() <= (first[0][used] - means).abs().mean() + 1e-6


def test_an_unused_entry_is_restarted_from_recent_vectors() -> None:
    q = rvq(n_codebooks=1, decay=0.5, dead_ratio=0.5, dropout_p=0.0).train()
    x = latents()
    q(x)
    with torch.no_grad():
        q.embed[0, 5] = 1e3  # far from every vector: never chosen again
        q.embed_sum[0, 5] = 1e3 * q.cluster_size[0, 5]
    for _ in range(8):
        q(x)
    assert float(q.embed[0, 5].abs().max()) < 20.0
    flat = x.transpose(1, 2).reshape(-1, 4)
    assert float(torch.cdist(q.embed[0, 5][None], flat).min()) < 5.0


def test_dropout_draws_counts_per_item_within_bounds() -> None:
    q = rvq(n_codebooks=8, dropout_p=1.0, dropout_min_n_q=2)
    n_q = q.sample_n_q(4000)
    assert int(n_q.min()) == 2 and int(n_q.max()) == 8
    assert len(torch.unique(n_q)) == 7
    assert torch.all(rvq(dropout_p=0.0).sample_n_q(100) == 4)
    half = rvq(n_codebooks=8, dropout_p=0.5).sample_n_q(4000)
    assert 0.5 < float((half == 8).float().mean()) < 0.62  # 0.5 kept + 0.5 / 8 drawn as 8


def test_training_forward_uses_each_items_count_of_codebooks() -> None:
    q = rvq(dropout_p=1.0)
    x = latents()
    q.train()(x)
    n_q = torch.tensor([1, 4, 2, 3])
    entries = q.embed.clone()  # the forward quantises with the entries before its own EMA update
    out, codes, loss = q(x, n_q)
    assert codes.shape == (4, 4, 50)
    for item, n in enumerate(n_q.tolist()):
        assert torch.all(codes[item, n:] == -1) and torch.all(codes[item, :n] >= 0)
        expected = sum(entries[i][codes[item, i]] for i in range(n)).t()
        assert torch.allclose(out[item], expected, atol=1e-5)
    assert loss.ndim == 0 and float(loss) > 0


def test_straight_through_gradient_and_commitment() -> None:
    q = rvq().train()
    x = latents().requires_grad_(True)
    out, _, commitment = q(x, 4)
    out.sum().backward(retain_graph=True)
    assert torch.allclose(x.grad, torch.ones_like(x))
    x.grad = None
    commitment.backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_perplexity_reports_codebook_usage() -> None:
    q = rvq()
    assert torch.all(q.perplexity() == 1.0)  # no usage yet: defined, and the least possible
    with torch.no_grad():
        q.usage.fill_(1.0)
        q.usage[1] = 0.0
        q.usage[1, :4] = 1.0
    assert torch.allclose(q.perplexity(), torch.tensor([16.0, 4.0, 16.0, 16.0]))
    q.train()(latents())
    assert torch.all(q.perplexity() >= 1.0) and torch.all(q.perplexity() <= 16.0)


def test_bad_arguments_raise_parameter_errors() -> None:
    q = rvq().eval()
    with pytest.raises(ParameterError, match="n_q=5 codebooks"):
        q.encode(latents(), 5)
    with pytest.raises(ParameterError, match="expected \\(batch, 4, frames\\)"):
        q.encode(torch.zeros(1, 3, 5), 1)
    with pytest.raises(ParameterError, match="codes must lie in 0..15"):
        q.decode(torch.full((1, 1, 2), 16))
    with pytest.raises(ParameterError, match="dropout_min_n_q=5"):
        rvq(dropout_min_n_q=5)


def test_shipped_state_leaves_out_training_buffers_and_loads_back_in_half_precision() -> None:
    from nsac.train.export import shipped_state

    q = rvq(n_codebooks=3, codebook_size=16)
    q.train()
    q(latents(dim=q.dim))  # k-means start and one EMA step: embed_sum and cluster_size now differ from init
    model = torch.nn.Sequential(q)
    for float16 in (False, True):
        state = shipped_state(model, float16=float16)
        assert not any(k.endswith(("embed_sum", "cluster_size")) for k in state)
        assert "0.embed" in state and "0.usage" in state
        assert state["0.embed"].dtype == (torch.float16 if float16 else torch.float32)
        fresh = torch.nn.Sequential(rvq(n_codebooks=3, codebook_size=16))
        fresh.load_state_dict(state, strict=True)
        loaded = fresh[0]
        assert loaded.embed.dtype == torch.float32
        assert torch.allclose(loaded.embed, q.embed, atol=1e-2 if float16 else 0)
        assert torch.equal(loaded.embed_sum, loaded.embed) and torch.equal(loaded.cluster_size,
                                                                          torch.ones_like(q.cluster_size))
        x = latents(dim=q.dim)
        codes = loaded.encode(x, 3)
        if not float16:
            assert torch.equal(codes, q.eval().encode(x, 3))
