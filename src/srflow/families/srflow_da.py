"""The SRFlow-DA family (Jo, Yang, Kim, NTIRE 2021): deeper coupling sub-networks.

Variants (``../spec/srflow_da.md``), the one table of them (:data:`VARIANTS`): SRFlow-DA (K=6,
two levels at 4x, three at 8x, the last at LR resolution; 4 hidden 3x3 convolutions with bias,
no ActNorm), DA-R (one long skip), DA-S (one level that squeezes by the whole scale, K=12 / 18,
splits after steps 0, 6, 12) and DA-D (K=1 with 18 residual blocks). All use Gaussian
dequantization and stack RRDB blocks [1, 8, 15, 22] at both scales.
"""

from __future__ import annotations

from dataclasses import dataclass

from srflow.families.base import PublishedModel
from srflow.families.flow_family import FlowFamily
from srflow.models.srflow_config import EncoderConfig, FlowConfig, ModelConfig, SubnetKind

_ENCODER = EncoderConfig(64, 32, 23, (1, 8, 15, 22))


@dataclass(frozen=True)
class DAVariant:
    """One SRFlow-DA variant, as the original selects it by its ``model:`` option.

    Attributes:
        name: the ``model:`` value (``SRFlow-DA``, ``SRFlow-DA-R``, ...).
        subnet: the coupling sub-network kind; depth: its hidden convolutions.
        single_scale: one level that squeezes by the whole scale, splitting every 6 steps
            (DA-S) instead of 2x squeezes per level.
        steps: the published ``K`` at 4x and at 8x.
    """

    name: str
    subnet: SubnetKind
    depth: int
    single_scale: bool
    steps: tuple[int, int]

    def flow(self, scale: int, levels: int, steps: int, split: bool) -> FlowConfig:
        """The flow of this variant with ``levels`` levels of ``steps`` steps (``split``:
        whether the options enable splits)."""
        if self.single_scale:
            splits = tuple(k for k in range(steps - 1) if k % 6 == 0) if split else ()
            return FlowConfig(levels, steps, 2, (), 64, 1e-4, self.subnet, self.depth, 3,
                              scale, splits)  # fmt: skip
        split_levels = tuple(range(1, levels)) if split else ()
        return FlowConfig(levels, steps, 2, split_levels, 64, 1e-4, self.subnet, self.depth, 3)

    def published_config(self, scale: int) -> ModelConfig:
        """The configuration of the published checkpoint at ``scale`` (4 or 8)."""
        steps = self.steps[0 if scale == 4 else 1]
        levels = 1 if self.single_scale else (2 if scale == 4 else 3)
        return ModelConfig(scale, _ENCODER, self.flow(scale, levels, steps, True), 32, "gaussian")


#: The variants, by the original's ``model:`` value.
VARIANTS: dict[str, DAVariant] = {
    v.name: v
    for v in (
        DAVariant("SRFlow-DA", "plain", 4, False, (6, 6)),
        DAVariant("SRFlow-DA-R", "long_skip", 4, False, (6, 6)),
        DAVariant("SRFlow-DA-S", "plain", 4, True, (12, 18)),
        DAVariant("SRFlow-DA-D", "residual", 36, False, (1, 1)),
    )
}


def _published(variant: DAVariant, scale: int) -> PublishedModel:
    short = variant.name.replace("SRFlow-DA", "SRFlowDA")
    return PublishedModel(
        f"{short}_{scale}X",
        variant.name,
        scale,
        f"{variant.name}/models/200000_G_X{scale}.pth",
        "DF2K (DIV2K + Flickr2K), 160x160 crops",
        variant.published_config(scale),
    )


class SRFlowDAFamily(FlowFamily):
    """SRFlow-DA, -R, -S, -D at 4x and 8x: SRFlow's model with SRFlow-DA's sub-networks."""

    name = "SRFlow-DA"
    subnet_kinds = frozenset({"plain", "long_skip", "residual"})
    stacked_blocks = {(23, 4): (1, 8, 15, 22), (23, 8): (1, 8, 15, 22)}
    dequantization = "gaussian"
    published = tuple(
        _published(variant, scale) for scale in (4, 8) for variant in VARIANTS.values()
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
