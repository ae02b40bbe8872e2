"""Multi-process training through ``torchrun`` (DistributedDataParallel).

``torchrun --nproc-per-node N -m srflow.cli.train CONFIG`` (or ``srflow train``) sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_from_env` joins the process group (NCCL on CUDA, gloo on CPU). Each rank takes a
disjoint contiguous shard of every global batch (see :class:`srflow.data.datasets.StepSampler`);
only rank 0 writes logs, checkpoints and the exported model.

Parameters that the current phase does not use (the encoder's ``hr_conv``, ``conv_last`` and
last upsampling convs during NLL training, the frozen encoder, the flow during L1 pre-training)
are excluded by ``requires_grad=False`` before wrapping, so DDP runs without the extra graph
traversal of ``find_unused_parameters=True``; the wrapper is rebuilt at each phase change.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from srflow.workers import Worker

#: This process's place in the job (``world_size == 1``: not distributed; rank 0 writes logs,
#: checkpoints and exports): the same record ``srflow sr`` and ``srflow eval`` use.
DistContext = Worker


def init_from_env(device_type: str) -> DistContext:
    """Join the process group described by torchrun's environment variables, if any."""
    ctx = Worker.from_env()
    if not ctx.enabled:
        return ctx
    world = ctx.world_size
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        store = _attempt_store(world)
        if store is None:
            dist.init_process_group(backend=backend, rank=ctx.rank, world_size=world)
        else:
            dist.init_process_group(backend=backend, store=store, rank=ctx.rank,
                                    world_size=world)  # fmt: skip
    return ctx


def _attempt_store(world: int) -> dist.Store | None:
    """torchrun's store with keys of this attempt only (``None`` outside torchrun).

    After ``--max-restarts`` restarted the workers, the agent's store still held the
    previous attempt's addresses: a restarted rank connected to the killed worker's old port
    ("Connection refused") about half of the time. Keys under ``attempt_N`` cannot be stale.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=False, timeout=timedelta(minutes=30))  # fmt: skip
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"srflow/attempt_{attempt}", store)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op when not distributed)."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank."""
    if ctx.enabled:
        dist.barrier()


def any_rank(flag: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """In-place max of a 0-d flag over ranks (no host synchronization on NCCL)."""
    if ctx.enabled:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return flag


def mean_over_ranks(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Average of a tensor over ranks (for logging)."""
    if ctx.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= ctx.world_size
    return value


def wrap(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DDP over ``module``'s parameters that require grad (the module itself if single)."""
    if not ctx.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=False)


def average_gradients(params: list[nn.Parameter], ctx: DistContext) -> None:
    """Average the gradients over ranks in place (for modules run outside DDP)."""
    if ctx.enabled:
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad /= ctx.world_size
