"""Load the checkpoints published with the original SRFlow and SRFlow-DA code (``.pth``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from srflow.config.schema import EncoderConfig, FlowConfig, ModelConfig
from srflow.families import Detection, DetectionError, detect, family_of
from srflow.models.hcflow import HCFlow
from srflow.models.srflow import SRFlow

logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and the problem."""


def _reason(exc: Exception) -> str:
    """Why torch could not load a file, in our words: never torch's advice to turn the safe
    loader off."""
    text = str(exc)
    if "Unsupported global" in text:
        return "it holds Python objects other than tensors; srflow never unpickles those"
    return "not a PyTorch file"


def read_torch_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a ``.pth`` state dict safely (``weights_only=True``: nothing is unpickled that is
    not a tensor or a plain container). Accepts a bare state dict or ``{"state_dict": ...}``."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"{path}: not a model checkpoint ({_reason(exc)})") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: does not hold a state dict of tensors")
    return dict(obj)


def convert_official_state_dict(
    state_dict: Mapping[str, Tensor], **hints: Any
) -> dict[str, Tensor]:
    """Rename an original state dict's keys to ours (dropping the unused conv), whatever its
    family (detected from the keys)."""
    detection = detect(state_dict, **hints)
    return detection.family.to_ours(state_dict, detection.config)


def detect_official_config(
    state_dict: Mapping[str, Tensor], stacked_blocks: tuple[int, ...] | None = None
) -> ModelConfig:
    """The configuration of an original SRFlow or SRFlow-DA state dict, from its keys.

    Args:
        state_dict: the original state dict (``module.`` prefix allowed).
        stacked_blocks: the stacked RRDB block indices, needed only for layouts other than
            the published ones (or all blocks stacked).

    Raises:
        DetectionError: one line saying why (see :func:`srflow.families.detect`).
    """
    return detect(state_dict, stacked_blocks=stacked_blocks).config


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
) -> SRFlow | HCFlow:
    """Build a model from an original checkpoint of any family, detecting its configuration.

    Args:
        source: path of an original ``.pth`` (``SRFlow_DF2K_4X.pth``, SRFlow-DA's
            ``200000_G_X4.pth``, ...) or its state dict.
        config: the configuration, if known (otherwise detected from the keys).
        stacked_blocks: see :func:`detect_official_config`.
        source_name: how to name the source in error messages.

    Returns:
        The model in eval mode, float32, on the CPU.
    """
    name = source_name or (str(source) if isinstance(source, str | Path) else "state dict")
    sd = read_torch_state_dict(source) if isinstance(source, str | Path) else dict(source)
    try:
        if config is None:
            detection = detect(sd, stacked_blocks=stacked_blocks)
        else:
            family = family_of(config)
            detection = Detection(family, config, family.published_for(config))
    except (DetectionError, KeyError) as exc:
        raise CheckpointError(f"{name}: {exc}") from None
    model = detection.family.build(detection.config)
    load_state_dict_strict(model, detection.family.to_ours(sd, detection.config), name)
    logger.info("%s: detected %s", name, detection.describe())
    return model.eval()


#: SRFlow-DA's ``model:`` values -> (sub-network kind, hidden convolutions); hard-coded there.
_DA_SUBNETS = {
    "SRFlow-DA": ("plain", 4), "SRFlow-DA-R": ("long_skip", 4),
    "SRFlow-DA-S": ("plain", 4), "SRFlow-DA-D": ("residual", 36),
}  # fmt: skip


def config_from_official_options(opt: Mapping[str, Any]) -> ModelConfig:
    """Model configuration from an original options dict (the parsed YAML of SRFlow or
    SRFlow-DA, or its ``network_G`` part together with ``scale``).

    SRFlow-DA's variant is its top-level ``model:`` value (``SRFlow-DA``, ``-R``, ``-S``,
    ``-D``), compared exactly as the original does.

    Raises:
        ValueError: for options the original supports but this package does not.
    """
    net = opt.get("network_G", opt)
    flow = net.get("flow", {})
    coupling = flow.get("coupling", "CondAffineSeparatedAndCond")
    if coupling != "CondAffineSeparatedAndCond":
        raise ValueError(f"unsupported coupling {coupling!r}")
    variant = str(opt.get("model", "SRFlow"))
    if variant.startswith("SRFlow-DA") and variant not in _DA_SUBNETS:
        raise ValueError(f"unknown SRFlow-DA variant {variant!r}")
    levels, steps = int(flow["L"]), int(flow["K"])
    split = flow.get("split", {}) or {}
    if split.get("enable"):
        correct = split.get("correct_splits") or variant in _DA_SUBNETS
        split_levels = tuple(range(1, levels if correct else levels - 1))
    else:
        split_levels = ()
    quant = (opt.get("datasets", {}).get("train", {}) or {}).get("quant", 255)
    scale = int(opt.get("scale") or net.get("scale") or net["upscale"])
    affine = flow.get("CondAffineSeparatedAndCond", {}) or {}
    subnet, depth, kernel, squeeze, mid_splits = "actnorm", 1, 1, 2, ()
    if variant in _DA_SUBNETS:
        (subnet, depth), kernel = _DA_SUBNETS[variant], 3
    if variant == "SRFlow-DA-S":  # one level squeezed by the whole scale, splits every 6 steps
        squeeze, split_levels = scale, ()
        if split.get("enable"):
            mid_splits = tuple(k for k in range(steps - 1) if k % 6 == 0)
    return ModelConfig(
        scale=scale,
        encoder=EncoderConfig(
            int(net.get("nf", 64)), int(net.get("gc", 32)), int(net["nb"]),
            tuple(int(b) for b in (flow.get("stackRRDB", {}) or {}).get("blocks", ())),
        ),
        flow=FlowConfig(
            levels, steps, int(flow.get("additionalFlowNoAffine", 0)), split_levels,
            int(affine.get("hidden_channels", 64)), float(affine.get("eps", 1e-4)),
            subnet, depth, kernel, squeeze, mid_splits,  # type: ignore[arg-type]
        ),
        dequantization_bins=int(quant),
        dequantization="gaussian" if variant in _DA_SUBNETS else "uniform",
    )  # fmt: skip
