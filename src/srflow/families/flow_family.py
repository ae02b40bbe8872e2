"""What SRFlow and SRFlow-DA share: one model class, one key layout up to the sub-networks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from srflow.config.losses import LossWeights
from srflow.families.base import DetectionError, ModelFamily
from srflow.families.flow_keys import (
    UNUSED_PREFIX,
    is_flow_layout,
    read_encoder_layout,
    read_flow_layout,
    to_original_key,
    to_our_key,
    without_unused,
)
from srflow.families.objective import Objective
from srflow.families.srflow_objective import SRFlowObjective
from srflow.models.contract import FlowSR
from srflow.models.srflow import SRFlow
from srflow.models.srflow_config import EncoderConfig, FlowConfig, ModelConfig

_UNUSED_KEYS = (f"{UNUSED_PREFIX}0.weight", f"{UNUSED_PREFIX}0.bias")


def _subnet_structure(
    sd: Mapping[str, Tensor], prefix: str
) -> tuple[str, int, int, int, int]:
    """``(kind, depth, hidden kernel, width, input channels)`` of the sub-network whose keys
    start ``prefix`` (``...affine.fFeatures``)."""

    def weights(pattern: str) -> list[str]:
        return [k for k in sd if re.fullmatch(re.escape(prefix) + pattern, k)]

    if f"{prefix}.0.actnorm.bias" in sd or f"{prefix}.0.bias" in sd:
        kind = "actnorm" if f"{prefix}.0.actnorm.bias" in sd else "plain"
        hidden = sorted(weights(r"\.(\d+)\.weight"), key=lambda k: int(k.split(".")[-2]))[1:-1]
        first = sd[f"{prefix}.0.weight"]
    elif f"{prefix}1.0.weight" in sd:
        first = sd[f"{prefix}1.0.weight"]
        blocks = weights(r"2\.\d+\.\d+\.weight")
        kind = "residual" if blocks else "long_skip"
        hidden = blocks or weights(r"2\.\d+\.weight")
    else:
        raise DetectionError(f"unknown coupling sub-network layout under {prefix}")
    kernel = sd[hidden[0]].shape[-1] if hidden else 1
    return kind, len(hidden), kernel, first.shape[0], first.shape[1]


class FlowFamily(ModelFamily):
    """A family whose checkpoints hold ``RRDB.*`` + ``flowUpsamplerNet.*`` (SRFlow's layout).

    Subclasses set :attr:`subnet_kinds` (the coupling sub-network kinds of the family),
    :attr:`stacked_blocks` (which RRDB blocks the published models stack, keyed by
    ``(blocks, scale)``: checkpoints record only how many) and :attr:`dequantization`.
    """

    config_class = ModelConfig
    subnet_kinds: frozenset[str]
    stacked_blocks: dict[tuple[int, int], tuple[int, ...]]
    dequantization: str

    def _first_subnet_prefix(self, sd: Mapping[str, Tensor]) -> str | None:
        steps = [
            k for k in sd if re.match(r"^flowUpsamplerNet\.layers\.\d+\.affine\.fFeatures", k)
        ]
        if not steps:
            return None
        index = min(int(k.split(".")[2]) for k in steps)
        return f"flowUpsamplerNet.layers.{index}.affine.fFeatures"

    def claims(self, state_dict: Mapping[str, Tensor]) -> bool:
        sd = without_unused(state_dict)
        prefix = self._first_subnet_prefix(sd)
        if not is_flow_layout(list(sd)) or prefix is None:
            return False
        try:
            return _subnet_structure(sd, prefix)[0] in self.subnet_kinds
        except (DetectionError, KeyError, IndexError):
            return False

    def detect_config(
        self, state_dict: Mapping[str, Tensor], *, stacked_blocks: tuple[int, ...] | None = None,
        **hints: Any,
    ) -> ModelConfig:  # fmt: skip
        sd = without_unused(state_dict)
        prefix = self._first_subnet_prefix(sd)
        if not is_flow_layout(list(sd)) or prefix is None:
            raise DetectionError(f"not an original {self.name} state dict")
        try:
            nf, gc, nb, scale = read_encoder_layout(sd)
            layout = read_flow_layout(sd)
            kind, depth, kernel, hidden, cond_channels = _subnet_structure(sd, prefix)
            n_stacked = cond_channels // nf - 1  # the injector sees the conditioning only
        except (KeyError, IndexError, ValueError) as exc:
            raise DetectionError(f"unreadable {self.name} layout ({exc})") from None
        if stacked_blocks is None:
            stacked_blocks = self.stacked_blocks.get((nb, scale))
            if stacked_blocks is None or len(stacked_blocks) != n_stacked:
                stacked_blocks = tuple(range(nb)) if n_stacked == nb else None
            if stacked_blocks is None:
                raise DetectionError(
                    f"cannot tell which {n_stacked} of {nb} RRDB blocks are stacked; "
                    "pass stacked_blocks explicitly"
                )
        return ModelConfig(
            scale=scale,
            encoder=EncoderConfig(nf, gc, nb, tuple(stacked_blocks)),
            flow=FlowConfig(
                layout.levels, layout.steps_per_level, layout.transitional_steps,
                layout.split_levels, hidden, 1e-4, kind, depth, kernel,  # type: ignore[arg-type]
                layout.squeeze_factor, layout.split_after_steps,
            ),
            dequantization=self.dequantization,  # type: ignore[arg-type]
        )  # fmt: skip

    def subnet_to_ours(self, config: ModelConfig, module: str, rest: str) -> str:
        """Rename ``fAffine*.<rest>`` of an original sub-network key to ours."""
        return rest

    def subnet_to_original(self, config: ModelConfig, rest: str) -> tuple[str, str]:
        """Inverse of :meth:`subnet_to_ours`: ``(module suffix, original rest)``."""
        return "", rest

    def to_ours(self, state_dict: Mapping[str, Tensor], config: Any) -> dict[str, Tensor]:
        def naming(module: str, rest: str) -> str:
            return self.subnet_to_ours(config, module, rest)

        return {to_our_key(k, naming): v for k, v in without_unused(state_dict).items()}

    def to_original(self, state_dict: Mapping[str, Tensor], config: Any) -> dict[str, Tensor]:
        def naming(rest: str) -> tuple[str, str]:
            return self.subnet_to_original(config, rest)

        return {to_original_key(k, naming): v for k, v in state_dict.items()}

    def unused_original_keys(self, config: Any) -> tuple[str, ...]:
        return _UNUSED_KEYS

    def build(self, config: Any, generator: torch.Generator | None = None) -> SRFlow:
        return SRFlow(config, generator)

    def owns(self, config: Any) -> bool:
        return type(config) is ModelConfig and config.flow.subnet in self.subnet_kinds

    def objective(
        self, model: FlowSR, losses: LossWeights, feature_loss: nn.Module | None = None
    ) -> Objective:
        assert isinstance(model, SRFlow)
        return SRFlowObjective(model)
