"""One process or many: reads torchrun's environment, sets up DDP (gloo on CPU, nccl on GPU), reduces numbers.

Started plainly, a run is one process of world size 1 and nothing is initialised. Started by torchrun
(RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT set), each process joins the
default process group; the trainer code is the same in both cases.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

from nsac.errors import ParameterError


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: its rank among all processes and on its machine, and its device."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def mean(self, values: Mapping[str, float]) -> dict[str, float]:
        """The mean of each value over all processes (every process must call this with the same keys)."""
        if not self.active or not values:
            return dict(values)
        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return {k: float(v) / self.world_size for k, v in zip(keys, tensor.tolist())}

    def sum(self, values: Mapping[str, float]) -> dict[str, float]:
        """The sum of each value over all processes."""
        if not self.active or not values:
            return dict(values)
        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return dict(zip(keys, tensor.tolist()))

    def gather_bytes(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every process's copy of a uint8 tensor of the same length (e.g. RNG states), on the CPU."""
        if not self.active:
            return [tensor.clone()]
        local = tensor.to(self.device)
        out = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(out, local)
        return [t.cpu() for t in out]


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ParameterError(f"environment variable {name}={text!r} must be an integer") from None


def choose_device(preference: str, local_rank: int) -> torch.device:
    """auto: this process's GPU when CUDA is available, else the CPU."""
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ParameterError("train.device=cuda but torch sees no CUDA device; use train.device=cpu "
                                 "or auto")
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device_preference: str = "auto") -> Distributed:
    """Join the process group when torchrun started us; choose the device."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world_size = _env_int("LOCAL_WORLD_SIZE", 1)
    device = choose_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                device_id=device if device.type == "cuda" else None)
    return Distributed(rank=rank, local_rank=local_rank, world_size=world_size,
                       local_world_size=local_world_size, device=device)


def teardown(context: Distributed) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()


def threads_per_process(requested: int, context: Distributed) -> int:
    """torch threads for this process: as asked, or the machine's cores shared among its processes."""
    if requested > 0:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, context.local_world_size))
