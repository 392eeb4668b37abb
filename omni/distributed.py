"""Process group, device, and wrapping the model for DDP or FSDP2 (under torchrun)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: str = "auto") -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank, world, local, dev)


def wrap(model, dist: Dist, stage: int, fsdp: bool, bf16: bool):
    """DDP, or FSDP2 over the LLM layers in stage 1 when `fsdp`. Returns the module to call."""
    if not dist.enabled:
        return model
    if fsdp and stage == 1:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32)
        llm = model.llm
        for layer in llm.get_decoder().layers:
            fully_shard(layer, mp_policy=mp)
        embed, head = llm.get_input_embeddings(), llm.get_output_embeddings()
        if head is not None and head.weight is not embed.weight:  # tied weights stay in the root unit
            fully_shard(embed, mp_policy=mp)
            fully_shard(head, mp_policy=mp)
        fully_shard(model.encoder, mp_policy=mp)
        fully_shard(model, mp_policy=mp)
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [dist.device.index] if dist.device.type == "cuda" else None
    return DDP(model, device_ids=ids)


def unwrap(model):
    return getattr(model, "module", model)


def all_reduce_sum(value: float, dist: Dist) -> float:
    if not dist.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=dist.device)
    tdist.all_reduce(t)
    return float(t.item())


def sum_counts(counts: dict[str, int], dist: Dist) -> dict[str, int]:
    """Per-key sums of every rank's counts (each rank gets the total)."""
    if not dist.enabled:
        return dict(counts)
    gathered: list = [None] * dist.world
    tdist.all_gather_object(gathered, dict(counts))
    total: dict[str, int] = {}
    for part in gathered:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return total


def barrier(dist: Dist) -> None:
    if dist.enabled:
        tdist.barrier()


def shutdown(dist: Dist) -> None:
    if dist.enabled and tdist.is_initialized():
        tdist.destroy_process_group()
