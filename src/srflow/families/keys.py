"""The one place that canonicalises state-dict keys of original checkpoints."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

#: Prefixes that training wrappers add to every key (``DataParallel`` and
#: ``DistributedDataParallel``: ``module.``).
WRAPPER_PREFIXES = ("module.",)


def canonical_key(key: str) -> str:
    """``key`` without wrapper prefixes.

    Example:
        >>> canonical_key("module.RRDB.conv_first.weight")
        'RRDB.conv_first.weight'
    """
    for prefix in WRAPPER_PREFIXES:
        key = key.removeprefix(prefix)
    return key


def canonical_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The state dict with every key canonical (:func:`canonical_key`)."""
    return {canonical_key(key): value for key, value in state_dict.items()}
