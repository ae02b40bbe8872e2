"""Model configurations from the original code's option files (SRFlow's and SRFlow-DA's YAML)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srflow.families.srflow_da import VARIANTS
from srflow.models.srflow_config import EncoderConfig, FlowConfig, ModelConfig


def config_from_official_options(opt: Mapping[str, Any]) -> ModelConfig:
    """Model configuration from an original options dict (the parsed YAML of SRFlow or
    SRFlow-DA, or its ``network_G`` part together with ``scale``).

    SRFlow-DA's variant is its top-level ``model:`` value (``SRFlow-DA``, ``-R``, ``-S``,
    ``-D``; :data:`~srflow.families.srflow_da.VARIANTS`), compared exactly as the original
    does.

    Raises:
        ValueError: for options the original supports but this package does not.
    """
    net = opt.get("network_G", opt)
    flow = net.get("flow", {})
    coupling = flow.get("coupling", "CondAffineSeparatedAndCond")
    if coupling != "CondAffineSeparatedAndCond":
        raise ValueError(f"unsupported coupling {coupling!r}")
    name = str(opt.get("model", "SRFlow"))
    variant = VARIANTS.get(name)
    if name.startswith("SRFlow-DA") and variant is None:
        raise ValueError(f"unknown SRFlow-DA variant {name!r}")
    levels, steps = int(flow["L"]), int(flow["K"])
    split = flow.get("split", {}) or {}
    if split.get("enable"):
        correct = split.get("correct_splits") or variant is not None
        split_levels = tuple(range(1, levels if correct else levels - 1))
    else:
        split_levels = ()
    quant = (opt.get("datasets", {}).get("train", {}) or {}).get("quant", 255)
    scale = int(opt.get("scale") or net.get("scale") or net["upscale"])
    affine = flow.get("CondAffineSeparatedAndCond", {}) or {}
    subnet, depth, kernel, squeeze, mid_splits = "actnorm", 1, 1, 2, ()
    if variant is not None:
        subnet, depth, kernel = variant.subnet, variant.depth, 3
        if variant.single_scale:  # one level squeezed by the whole scale, splits every 6 steps
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
        dequantization="gaussian" if variant is not None else "uniform",
    )  # fmt: skip
