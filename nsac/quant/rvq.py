"""Residual vector quantisation in torch: EMA codebooks, k-means start, dead-code restart, quantiser dropout.

Stage ``i`` quantises what stages ``0..i-1`` left (Juang & Gray 1982; the bottleneck of SoundStream,
Zeghidour et al. 2022, and EnCodec, Defossez et al. 2023)::

    r_0 = x
    c_i = argmin_k ||r_i - e_i[k]||^2           codes (batch, n_q, frames), each in 0..K-1
    q_i = e_i[c_i],   r_{i+1} = r_i - q_i
    x^  = q_0 + ... + q_{n_q - 1}

Why EMA codebook updates (not a codebook loss through the straight-through estimator)
--------------------------------------------------------------------------------------
Each entry moves to the running mean of the vectors assigned to it (van den Oord et al. 2017, appendix;
the choice of SoundStream and EnCodec). The entries then need no optimiser, no learning rate and no loss
weight: with small CPU batches a gradient-trained codebook drifts slowly and loses entries, while the EMA
estimate follows the encoder from the first step. The encoder still learns through the straight-through
estimator (``x + (x^ - x).detach()``) and a commitment loss ``sum_i mean ||r_i - q_i.detach()||^2`` keeps
its outputs near the entries. The EMA statistics are buffers: they are saved, resumed and exported with
the weights, and AdamW never touches them.

Training helpers (all in training mode only, under ``torch.no_grad``)
---------------------------------------------------------------------
* k-means start: on the first training call each stage's codebook is set by Lloyd iterations on that
  stage's residuals (vectors drawn with replacement when the batch holds fewer than K).
* dead-code restart: an entry whose EMA usage falls below ``dead_ratio`` of the uniform share (the
  vectors of a step divided by K) has gone unused for a while (about ``ln(1/dead_ratio) / (1 - decay)``
  steps); it is replaced by a random residual vector of the current batch.
* quantiser dropout: with probability ``dropout_p`` an item of the batch uses only the first n of the
  codebooks, n uniform in ``dropout_min_n_q..n_codebooks``; one model then serves every bitrate.

Usage statistics: ``usage`` (n_codebooks, K) is a slower EMA of the code counts (decay ``usage_decay``),
kept for logging (`perplexity`) and as the learned counts a codec turns into entropy-coding tables.
Under DDP, buffers follow rank 0 (DistributedDataParallel broadcasts them before each forward).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nsac.errors import ParameterError

#: Lloyd iterations of the k-means start
KMEANS_ITERATIONS = 10
#: Laplace smoothing of the EMA cluster sizes (keeps an entry's mean finite when its count is ~0)
CLUSTER_EPSILON = 1e-5


def _squared_distances(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """||x - e||^2 of every row of x (N, D) to every entry (K, D): (N, K)."""
    return (x.pow(2).sum(1, keepdim=True) - 2 * x @ codebook.t() + codebook.pow(2).sum(1)[None, :])


def _sample_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """n rows of x drawn at random, without replacement when x has enough rows."""
    if x.shape[0] >= n:
        return x[torch.randperm(x.shape[0], device=x.device)[:n]]
    return x[torch.randint(0, x.shape[0], (n,), device=x.device)]


def kmeans(x: torch.Tensor, n_clusters: int, *, iterations: int = KMEANS_ITERATIONS
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from random rows of x (N, D): (centroids (K, D), counts (K,)).

    An empty cluster keeps its previous centroid.
    """
    centroids = _sample_rows(x, n_clusters).clone()
    counts = torch.zeros(n_clusters, device=x.device, dtype=x.dtype)
    for _ in range(iterations):
        assign = _squared_distances(x, centroids).argmin(1)
        counts = torch.bincount(assign, minlength=n_clusters).to(x.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids, counts


class ResidualVectorQuantizer(nn.Module):
    """N codebooks of K entries of dimension D, applied residually; see the module docstring.

    Shapes: latents (batch, dim, frames) -> (quantised latents, codes (batch, n_q, frames), commitment loss).

    Parameters
    ----------
    dim : D, the dimension of an entry (the encoder's latent channels)
    n_codebooks : N, the most codebooks the model is trained for
    codebook_size : K entries per codebook (1024 = 10 bits per code)
    decay : EMA decay of the entries and of their cluster sizes, per training step
    usage_decay : EMA decay of `usage` (code counts for logging and entropy coding)
    dead_ratio : an entry is restarted when its EMA usage falls below this fraction of the uniform share
    dropout_p : probability that a training item uses fewer codebooks
    dropout_min_n_q : the fewest codebooks a dropped-out item keeps
    """

    def __init__(self, *, dim: int, n_codebooks: int, codebook_size: int = 1024, decay: float = 0.99,
                 usage_decay: float = 0.999, dead_ratio: float = 0.1, dropout_p: float = 0.5,
                 dropout_min_n_q: int = 1) -> None:
        super().__init__()
        if dim < 1 or n_codebooks < 1 or codebook_size < 2:
            raise ParameterError(f"dim={dim}, n_codebooks={n_codebooks} must be >= 1 and "
                                 f"codebook_size={codebook_size} >= 2")
        for name, value in (("decay", decay), ("usage_decay", usage_decay)):
            if not 0.0 < value < 1.0:
                raise ParameterError(f"{name}={value} must lie in (0, 1)")
        if not 0.0 <= dropout_p <= 1.0 or not 0.0 <= dead_ratio < 1.0:
            raise ParameterError(f"dropout_p={dropout_p} must lie in [0, 1] and dead_ratio={dead_ratio} "
                                 "in [0, 1)")
        if not 1 <= dropout_min_n_q <= n_codebooks:
            raise ParameterError(f"dropout_min_n_q={dropout_min_n_q} must lie in 1..n_codebooks={n_codebooks}")
        self.dim, self.n_codebooks, self.codebook_size = dim, n_codebooks, codebook_size
        self.decay, self.usage_decay, self.dead_ratio = decay, usage_decay, dead_ratio
        self.dropout_p, self.dropout_min_n_q = dropout_p, dropout_min_n_q
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.register_buffer("embed", torch.randn(n_codebooks, codebook_size, dim))
        self.register_buffer("embed_sum", self.embed.clone())
        self.register_buffer("cluster_size", torch.ones(n_codebooks, codebook_size))
        self.register_buffer("usage", torch.zeros(n_codebooks, codebook_size))

    #: buffers that only the EMA update reads: shipped weights leave them out (`nsac export`), and loading
    #: weights without them restarts the EMA from the entries (as a fresh codebook of count 1 each)
    TRAINING_ONLY_BUFFERS = ("embed_sum", "cluster_size")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        if prefix + "embed" in state_dict and prefix + "embed_sum" not in state_dict:
            state_dict[prefix + "embed_sum"] = state_dict[prefix + "embed"].clone()
            state_dict.setdefault(prefix + "cluster_size", torch.ones(self.n_codebooks, self.codebook_size))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def bits_per_code(self) -> float:
        return math.log2(self.codebook_size)

    # --- inference -----------------------------------------------------------------------------------
    def _check_n_q(self, n_q: int) -> int:
        if not 1 <= int(n_q) <= self.n_codebooks:
            raise ParameterError(f"n_q={n_q} codebooks: use 1..{self.n_codebooks}")
        return int(n_q)

    def _check_latents(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.dim:
            raise ParameterError(f"latents of shape {tuple(x.shape)}; expected (batch, {self.dim}, frames)")

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        """Codes of latents x (batch, dim, frames) with the first n_q codebooks: int64 (batch, n_q, frames)."""
        self._check_latents(x)
        n_q = self._check_n_q(n_q)
        batch, _, frames = x.shape
        residual = x.transpose(1, 2).reshape(-1, self.dim)
        codes = []
        for i in range(n_q):
            code = _squared_distances(residual, self.embed[i]).argmin(1)
            residual = residual - self.embed[i][code]
            codes.append(code.view(batch, frames))
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Latents (batch, dim, frames) of codes (batch, n_q, frames): the sum of the n_q entries."""
        if codes.ndim != 3:
            raise ParameterError(f"codes of shape {tuple(codes.shape)}; expected (batch, n_q, frames)")
        n_q = self._check_n_q(codes.shape[1])
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ParameterError(f"codes must lie in 0..{self.codebook_size - 1}")
        out = sum(F.embedding(codes[:, i], self.embed[i]) for i in range(n_q))
        return out.transpose(1, 2)

    def perplexity(self) -> torch.Tensor:
        """2 ** entropy (bits) of each codebook's EMA usage, shape (n_codebooks,); K means uniform use."""
        p = self.usage / self.usage.sum(1, keepdim=True).clamp_min(1e-12)
        entropy_bits = -(p * torch.log2(p.clamp_min(1e-12))).sum(1)
        return torch.exp2(entropy_bits)

    # --- training ------------------------------------------------------------------------------------
    def sample_n_q(self, batch: int, *, device: torch.device | None = None) -> torch.Tensor:
        """Codebooks each training item uses (batch,): N, or with probability dropout_p uniform in min..N."""
        n_q = torch.full((batch,), self.n_codebooks, dtype=torch.long, device=device)
        if self.dropout_p > 0:
            dropped = torch.rand(batch, device=device) < self.dropout_p
            fewer = torch.randint(self.dropout_min_n_q, self.n_codebooks + 1, (batch,), device=device)
            n_q = torch.where(dropped, fewer, n_q)
        return n_q

    def forward(self, x: torch.Tensor, n_q: int | torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quantised latents with straight-through gradient, codes, commitment loss (scalar)).

        n_q: an int for every item, a (batch,) tensor per item, or None: all codebooks in eval mode,
        `sample_n_q` (quantiser dropout) in training mode. Codes of an item's unused codebooks are -1.
        """
        self._check_latents(x)
        batch, _, frames = x.shape
        if n_q is None:
            n_q = self.sample_n_q(batch, device=x.device) if self.training else self.n_codebooks
        if isinstance(n_q, int):
            n_q = torch.full((batch,), self._check_n_q(n_q), dtype=torch.long, device=x.device)
        active_items = n_q.to(x.device)
        flat = x.transpose(1, 2).reshape(-1, self.dim)
        active_rows = active_items.repeat_interleave(frames)  # (batch * frames,)
        if self.training and not bool(self.initialized):
            self._kmeans_start(flat.detach())
        residual = flat
        quantized = torch.zeros_like(flat)
        commitment = x.new_zeros(())
        codes = torch.full((batch * frames, self.n_codebooks), -1, dtype=torch.long, device=x.device)
        n_stages = int(active_items.max())
        for i in range(n_stages):
            active = active_rows > i
            code = _squared_distances(residual.detach(), self.embed[i]).argmin(1)
            entry = self.embed[i][code]
            if self.training:
                self._ema_update(i, residual.detach()[active], code[active])
            mask = active[:, None].to(flat.dtype)
            commitment = commitment + ((residual - entry.detach()).pow(2) * mask).sum() / (
                mask.sum().clamp_min(1) * self.dim)
            quantized = quantized + entry * mask
            residual = residual - entry * mask
            codes[:, i] = torch.where(active, code, codes[:, i])
        out = flat + (quantized - flat).detach()  # straight-through estimator
        out = out.view(batch, frames, self.dim).transpose(1, 2)
        codes = codes.view(batch, frames, self.n_codebooks).transpose(1, 2)[:, :n_stages]
        return out, codes, commitment

    @torch.no_grad()
    def _kmeans_start(self, flat: torch.Tensor) -> None:
        residual = flat
        for i in range(self.n_codebooks):
            centroids, counts = kmeans(residual, self.codebook_size)
            self.embed[i] = centroids
            self.cluster_size[i] = counts
            self.embed_sum[i] = centroids * counts[:, None]
            residual = residual - centroids[_squared_distances(residual, centroids).argmin(1)]
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, stage: int, vectors: torch.Tensor, code: torch.Tensor) -> None:
        """Move stage `stage`'s entries toward the mean of their vectors; restart the dead ones."""
        if vectors.shape[0] == 0:
            return
        counts = torch.bincount(code, minlength=self.codebook_size).to(vectors.dtype)
        sums = torch.zeros(self.codebook_size, self.dim, dtype=vectors.dtype, device=vectors.device)
        sums.index_add_(0, code, vectors)
        self.cluster_size[stage].lerp_(counts, 1 - self.decay)
        self.embed_sum[stage].lerp_(sums, 1 - self.decay)
        self.usage[stage].lerp_(counts, 1 - self.usage_decay)
        size = self.cluster_size[stage]
        total = size.sum()
        smoothed = (size + CLUSTER_EPSILON) / (total + self.codebook_size * CLUSTER_EPSILON) * total
        self.embed[stage] = self.embed_sum[stage] / smoothed[:, None]
        share = vectors.shape[0] / self.codebook_size
        dead = size < self.dead_ratio * share
        n_dead = int(dead.sum())
        if n_dead:
            fresh = _sample_rows(vectors, n_dead)
            self.embed[stage][dead] = fresh
            self.embed_sum[stage][dead] = fresh * share
            self.cluster_size[stage][dead] = share
