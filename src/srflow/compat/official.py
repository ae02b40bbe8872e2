"""Load the checkpoints published with the original SRFlow (``.pth``) and its options."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from srflow.compat.official_keys import (
    detect_official_config,
    rename_official_key,
    strip_wrappers,
)
from srflow.config.schema import EncoderConfig, FlowConfig, ModelConfig
from srflow.models.srflow import SRFlow

logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and the problem."""


def read_torch_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a ``.pth`` state dict safely (``weights_only=True``: nothing is unpickled that is
    not a tensor or a plain container). Accepts a bare state dict or ``{"state_dict": ...}``."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({first_line})"
        ) from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: does not hold a state dict of tensors")
    return dict(obj)


def convert_official_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an original state dict's keys to ours (dropping the unused conv)."""
    return {rename_official_key(k): v for k, v in strip_wrappers(state_dict).items()}


def load_state_dict_strict(
    model: torch.nn.Module, state_dict: Mapping[str, Tensor], source: str
) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming missing/unexpected keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} {tuple(v.shape)} != {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                        ("shape mismatches", wrong)):  # fmt: skip
        if keys:
            shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
            problems.append(f"{len(keys)} {label} ({shown})")
    if problems:
        raise CheckpointError(f"{source}: does not match the model: " + "; ".join(problems))
    model.load_state_dict(dict(state_dict), strict=True)


def load_official(
    source: str | Path | Mapping[str, Tensor],
    *,
    config: ModelConfig | None = None,
    stacked_blocks: tuple[int, ...] | None = None,
    source_name: str | None = None,
) -> SRFlow:
    """Build an :class:`SRFlow` from an original checkpoint, detecting its configuration.

    Args:
        source: path of an original ``.pth`` (e.g. ``SRFlow_DF2K_4X.pth``) or its state dict.
        config: the configuration, if known (otherwise detected from the keys).
        stacked_blocks: see :func:`detect_official_config`.
        source_name: how to name the source in error messages.

    Returns:
        The model in eval mode, float32, on the CPU.
    """
    name = source_name or (str(source) if isinstance(source, str | Path) else "state dict")
    sd = read_torch_state_dict(source) if isinstance(source, str | Path) else dict(source)
    try:
        config = config or detect_official_config(sd, stacked_blocks)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{name}: {exc}") from None
    model = SRFlow(config)
    load_state_dict_strict(model, convert_official_state_dict(sd), name)
    logger.info("loaded original SRFlow checkpoint %s (scale %d)", name, config.scale)
    return model.eval()


def config_from_official_options(opt: Mapping[str, Any]) -> ModelConfig:
    """Model configuration from an original options dict (the parsed YAML, or its ``network_G``
    part together with ``scale``).

    Raises:
        ValueError: for options the original supports but this package does not.
    """
    net = opt.get("network_G", opt)
    flow = net.get("flow", {})
    coupling = flow.get("coupling", "CondAffineSeparatedAndCond")
    if coupling != "CondAffineSeparatedAndCond":
        raise ValueError(f"unsupported coupling {coupling!r}")
    levels = int(flow["L"])
    split = flow.get("split", {}) or {}
    if split.get("enable"):
        last = levels if split.get("correct_splits") else levels - 1
        split_levels = tuple(range(1, last))
    else:
        split_levels = ()
    quant = (opt.get("datasets", {}).get("train", {}) or {}).get("quant", 255)
    scale = int(opt.get("scale") or net.get("scale") or net["upscale"])
    affine = flow.get("CondAffineSeparatedAndCond", {}) or {}
    return ModelConfig(
        scale=scale,
        encoder=EncoderConfig(
            int(net.get("nf", 64)), int(net.get("gc", 32)), int(net["nb"]),
            tuple(int(b) for b in (flow.get("stackRRDB", {}) or {}).get("blocks", ())),
        ),
        flow=FlowConfig(
            levels, int(flow["K"]), int(flow.get("additionalFlowNoAffine", 0)), split_levels,
            int(affine.get("hidden_channels", 64)), float(affine.get("eps", 1e-4)),
        ),
        dequantization_bins=int(quant),
    )  # fmt: skip
