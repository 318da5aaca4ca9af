"""Data parallel across processes started by `torchrun`: gloo on CPU, NCCL on GPU.

There is no DDP wrapper: the trainer calls the model's packed forward, not `forward`, and LoRA gradients are
small, so each rank sums its gradients with one all_reduce per optimizer step (after gradient accumulation).
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from qwenkit.errors import InvalidRequestError


@dataclass(slots=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> Ranks:
    """Join the process group when torchrun started us (WORLD_SIZE > 1); else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise InvalidRequestError("device", "CUDA was asked for but torch sees no GPU; use device=cpu")
    if world == 1:
        return Ranks(device=torch.device("cuda" if cuda else "cpu"))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    chosen = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    return Ranks(rank, world, chosen)


def all_reduce_sum(ranks: Ranks, flat: torch.Tensor) -> torch.Tensor:
    if ranks.parallel:
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return flat


def barrier(ranks: Ranks) -> None:
    if ranks.parallel:
        dist.barrier()


def teardown(ranks: Ranks) -> None:
    if ranks.parallel and dist.is_initialized():
        dist.destroy_process_group()
