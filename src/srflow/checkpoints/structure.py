"""Check a file's configuration against its tensors before the network is allocated.

A model file's metadata decides the network: a few edited characters (``"features": 65536``,
``"steps_per_level": 1000000``) would make a loader build gigabytes before finding that no
weight fits. Here the network is first built on the ``meta`` device (shapes, no storage) with a
budget on the parameters and buffers it registers: a network larger than the file's tensors
stops as soon as it grows past them, and one whose keys or shapes differ is refused by name.
Only then is the real network built and loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import Tensor

from srflow.checkpoints.errors import CheckpointError

#: Room the budget leaves above the file's tensors (non-persistent buffers, e.g. constants).
_SLACK_TENSORS = 64
_SLACK_VALUES = 2**20

_budget = threading.local()  # this thread's budget while a network is checked


class _OverBudget(Exception):
    """The network registered more tensors or values than its budget."""


def _count(_module: torch.nn.Module, _name: str, tensor: Tensor | None) -> None:
    budget = getattr(_budget, "left", None)
    if budget is None or tensor is None:
        return
    budget[0] -= 1
    budget[1] -= tensor.numel()
    if budget[0] < 0 or budget[1] < 0:
        raise _OverBudget


@contextmanager
def _limited(tensors: int, values: int) -> Iterator[None]:
    """Raise :class:`_OverBudget` once modules built in this thread register more."""
    hooks = (torch.nn.modules.module.register_module_parameter_registration_hook(_count),
             torch.nn.modules.module.register_module_buffer_registration_hook(_count))  # fmt: skip
    _budget.left = [tensors, values]
    try:
        yield
    finally:
        _budget.left = None
        for hook in hooks:
            hook.remove()


def mismatches(expected: Mapping[str, torch.Size], state: Mapping[str, Tensor]) -> str | None:
    """Missing, unexpected and misshapen keys of ``state`` against ``expected`` shapes, as one
    phrase (None when they agree)."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(v.shape)} != {tuple(expected[k])}"
             for k, v in state.items() if k in expected and v.shape != expected[k]]  # fmt: skip
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                        ("shape mismatches", wrong)):  # fmt: skip
        if keys:
            shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
            problems.append(f"{len(keys)} {label} ({shown})")
    return "; ".join(problems) or None


def check_structure(
    build: Callable[[], torch.nn.Module], state: Mapping[str, Tensor], source: str
) -> None:
    """Build the network on the meta device, within the size of ``state``, and compare.

    Raises:
        CheckpointError: the configuration describes a larger network than the file holds,
            or one whose keys or shapes differ from the file's.
    """
    values = sum(t.numel() for t in state.values())
    try:
        with _limited(len(state) + _SLACK_TENSORS, values + _SLACK_VALUES), torch.device("meta"):
            network = build()
    except _OverBudget:
        raise CheckpointError(
            f"{source}: its configuration describes a larger network than the file's "
            f"{len(state):,} tensors ({values:,} values) hold; not built"
        ) from None
    shapes = {k: v.shape for k, v in network.state_dict().items()}
    problem = mismatches(shapes, state)
    if problem:
        raise CheckpointError(f"{source}: does not match the model: {problem}")
