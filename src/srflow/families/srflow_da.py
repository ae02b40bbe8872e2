"""The SRFlow-DA family (Jo, Yang, Kim, NTIRE 2021): deeper coupling sub-networks.

Variants (``../spec/srflow_da.md``): SRFlow-DA (K=6, two levels at 4x, three at 8x, the last
at LR resolution; 4 hidden 3x3 convolutions with bias, no ActNorm), DA-R (one long skip),
DA-S (one level that squeezes by the whole scale, K=12 / 18, splits after steps 0, 6, 12) and
DA-D (K=1 with 18 residual blocks). All use Gaussian dequantization and stack RRDB blocks
[1, 8, 15, 22] at both scales.
"""

from __future__ import annotations

from srflow.config.schema import EncoderConfig, FlowConfig, ModelConfig
from srflow.families.base import PublishedModel
from srflow.families.flow_family import FlowFamily

_ENCODER = EncoderConfig(64, 32, 23, (1, 8, 15, 22))


def _da(scale: int, flow: FlowConfig) -> ModelConfig:
    return ModelConfig(scale, _ENCODER, flow, 32, "gaussian")


def _multi_level(scale: int, steps: int, subnet: str, depth: int) -> ModelConfig:
    levels = 2 if scale == 4 else 3
    return _da(scale, FlowConfig(
        levels, steps, 2, tuple(range(1, levels)), 64, 1e-4, subnet, depth, 3,  # type: ignore[arg-type]
    ))  # fmt: skip


def _single_scale(scale: int) -> ModelConfig:
    steps = 12 if scale == 4 else 18
    splits = tuple(k for k in range(steps - 1) if k % 6 == 0)
    return _da(scale, FlowConfig(1, steps, 2, (), 64, 1e-4, "plain", 4, 3, scale, splits))


def _published(variant: str, scale: int, config: ModelConfig) -> PublishedModel:
    short = variant.replace("SRFlow-DA", "SRFlowDA")
    return PublishedModel(
        f"{short}_{scale}X",
        variant,
        scale,
        f"{variant}/models/200000_G_X{scale}.pth",
        "DF2K (DIV2K + Flickr2K), 160x160 crops",
        config,
    )


class SRFlowDAFamily(FlowFamily):
    """SRFlow-DA, -R, -S, -D at 4x and 8x: SRFlow's model with SRFlow-DA's sub-networks."""

    name = "SRFlow-DA"
    subnet_kinds = frozenset({"plain", "long_skip", "residual"})
    stacked_blocks = {(23, 4): (1, 8, 15, 22), (23, 8): (1, 8, 15, 22)}
    dequantization = "gaussian"
    published = tuple(
        _published(variant, scale, config)
        for scale in (4, 8)
        for variant, config in (
            ("SRFlow-DA", _multi_level(scale, 6, "plain", 4)),
            ("SRFlow-DA-R", _multi_level(scale, 6, "long_skip", 4)),
            ("SRFlow-DA-S", _single_scale(scale)),
            ("SRFlow-DA-D", _multi_level(scale, 1, "residual", 36)),
        )
    )

    def subnet_to_ours(self, config: ModelConfig, module: str, rest: str) -> str:
        if config.flow.subnet == "plain":  # fAffine.{0, 2, ..., 2d + 2}
            index, tail = rest.split(".", 1)
            last = 2 * config.flow.subnet_depth + 2
            n = int(index)
            return "first." + tail if n == 0 else "last." + tail if n == last else (
                f"hidden.{n - 2}.{tail}"
            )  # fmt: skip
        part = {"1": "first", "2": "hidden", "3": "last"}[module[-1]]
        return f"{part}.{rest.removeprefix('0.') if part != 'hidden' else rest}"

    def subnet_to_original(self, config: ModelConfig, rest: str) -> tuple[str, str]:
        part, tail = rest.split(".", 1)
        if config.flow.subnet == "plain":
            if part == "hidden":
                n, tail = tail.split(".", 1)
                return "", f"{int(n) + 2}.{tail}"
            return "", f"{0 if part == 'first' else 2 * config.flow.subnet_depth + 2}.{tail}"
        suffix = {"first": "1", "hidden": "2", "last": "3"}[part]
        return suffix, tail if part == "hidden" else f"0.{tail}"


SRFLOW_DA = SRFlowDAFamily()
