"""Build the network a file's configuration describes within the size of the file's tensors.

A model file's metadata decides the network: a few edited characters (``"features": 65536``,
``"steps_per_level": 1000000``) would make a loader build gigabytes before finding that no
weight fits. Here the network is built under a budget on what its construction allocates
(every tensor factory call is checked *before* it allocates): a network larger than the
file's tensors stops as soon as it asks for more than they hold (building a published model
allocates at most 1.5 times its parameters, temporaries of the initialization included), and
one whose keys or shapes differ is refused by name. (Building on PyTorch's ``meta`` device
would allocate nothing, but its initializers import a compiler stack of about 80 MB.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from srflow.checkpoints.errors import CheckpointError

Network = TypeVar("Network", bound=torch.nn.Module)
#: What construction may allocate, as a multiple of the file's tensors (values and calls).
_FACTOR = 2
_SLACK_CALLS = 64
_SLACK_VALUES = 2**20
#: Tensor factories whose first argument (or ``size``) is the new tensor's size.
_FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.randn, torch.rand, torch.full}
_NEW = {"new_empty", "new_zeros", "new_ones", "new_full"}


class _OverBudget(Exception):
    """The construction asked for more than its budget."""


def _requested(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    """Values a factory call would allocate (None: not a factory call)."""
    if func in _FACTORIES:
        size = kwargs.get("size", args[0] if args else ())
        if isinstance(size, int) and func is not torch.full:
            size = [a for a in args if isinstance(a, int)]  # torch.empty(2, 3)
    elif getattr(func, "__name__", "") in _NEW and len(args) > 1:
        size = kwargs.get("size", args[1])
    else:
        return None
    return math.prod(size) if isinstance(size, (tuple, list, torch.Size)) else int(size)


class _Budget(TorchFunctionMode):
    """Raise :class:`_OverBudget` before a factory call exceeds the values or calls left."""

    def __init__(self, values: int, calls: int) -> None:
        super().__init__()
        self.values, self.calls = values, calls

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:  # fmt: skip
        kwargs = kwargs or {}
        requested = _requested(func, args, kwargs)
        if requested is not None:
            self.values -= requested
            self.calls -= 1
            if self.values < 0 or self.calls < 0:
                raise _OverBudget
        return func(*args, **kwargs)


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


def build_within(build: Callable[[], Network], state: Mapping[str, Tensor], source: str
                 ) -> Network:  # fmt: skip
    """``build()`` within the size of ``state`` (see the module), compared with it.

    Raises:
        CheckpointError: the configuration describes a larger network than the file holds,
            or one whose keys or shapes differ from the file's.
    """
    values = sum(t.numel() for t in state.values())
    try:
        with _Budget(_FACTOR * values + _SLACK_VALUES, _FACTOR * len(state) + _SLACK_CALLS):
            network = build()
    except _OverBudget:
        raise CheckpointError(
            f"{source}: its configuration describes a larger network than the file's "
            f"{len(state):,} tensors ({values:,} values) hold; not built"
        ) from None
    problem = mismatches({k: v.shape for k, v in network.state_dict().items()}, state)
    if problem:
        raise CheckpointError(f"{source}: does not match the model: {problem}")
    return network
