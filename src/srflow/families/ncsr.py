"""The NCSR family (Kim & Son, CVPRW 2021; NTIRE 2021 winner): SRFlow plus a noise-conditioned
affine in every conditional step, its published ``4X.pth`` and ``8X.pth``.

An NCSR checkpoint is SRFlow's layout plus ``affine.fAffine_std.*`` in every conditional step,
so it derives from SRFlow: detection tries it first. The keys tell the scale, ``K``, ``L`` and
the noise map's channels; which steps apply the noise part, the stacked RRDB blocks (``[1, 8,
15, 22]`` at both scales) and the training noise come from the published configuration of the
same shape (``../spec/ncsr.md`` sections 4 and 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from srflow.config.losses import LossWeights
from srflow.families.base import DetectionError, PublishedModel
from srflow.families.flow_family import FlowFamily
from srflow.families.flow_keys import is_flow_layout
from srflow.families.ncsr_objective import NCSRObjective
from srflow.families.objective import Objective
from srflow.models.contract import FlowSR
from srflow.models.ncsr import NCSR
from srflow.models.ncsr_config import NCSRConfig
from srflow.models.srflow_config import EncoderConfig, FlowConfig

NOISE_KEY = ".affine.fAffine_std."
_ENCODER = EncoderConfig(64, 32, 23, (1, 8, 15, 22))
_NCSR_4X = NCSRConfig(4, _ENCODER, FlowConfig(3, 16, 2, (1,)), 32, "none", (0, 16, 16), 3, 0.05)
_NCSR_8X = NCSRConfig(
    8, _ENCODER, FlowConfig(4, 20, 2, (1, 2)), 32, "none", (0, 0, 16, 16), 3, 0.03
)


class NCSRFamily(FlowFamily):
    """NCSR 4x and 8x: SRFlow's model with a noise-conditioned part in its couplings."""

    name = "NCSR"
    parent = "SRFlow"
    config_class = NCSRConfig
    subnet_kinds = frozenset({"actnorm"})
    stacked_blocks = {(23, 4): (1, 8, 15, 22), (23, 8): (1, 8, 15, 22)}
    dequantization = "none"
    published = (
        PublishedModel("NCSR_4X", "NCSR", 4, "4X.pth", "DF2K (DIV2K + Flickr2K), 160x160 crops",
                       _NCSR_4X, label="4X"),
        PublishedModel("NCSR_8X", "NCSR", 8, "8X.pth", "DF2K (DIV2K + Flickr2K), 160x160 crops",
                       _NCSR_8X, label="8X"),
    )  # fmt: skip

    def claims(self, state_dict: Mapping[str, Tensor]) -> bool:
        keys = list(state_dict)
        return is_flow_layout(keys) and any(NOISE_KEY in k for k in keys)

    def detect_config(self, state_dict: Mapping[str, Tensor], **hints: Any) -> NCSRConfig:
        base = super().detect_config(state_dict, **hints)
        first = next(k for k in state_dict if k.endswith(f"{NOISE_KEY}0.weight"))
        layer = first.split(NOISE_KEY)[0]
        channels = state_dict[f"{layer}.actnorm.bias"].shape[1]
        noise_channels = state_dict[first].shape[1] - channels // 2
        for published in self.published:
            shape = (published.config.scale, published.config.flow, published.config.encoder)
            if (base.scale, base.flow, base.encoder) == shape:
                if noise_channels != published.config.noise_channels:
                    break
                return published.config
        raise DetectionError(
            f"an NCSR layout ({base.scale}x, K={base.flow.steps_per_level}, "
            f"L={base.flow.levels}) other than the published ones: which steps apply the noise "
            "part is not in the keys (build an NCSRConfig with noise_steps and convert with it)"
        )

    def owns(self, config: Any) -> bool:
        return type(config) is NCSRConfig

    def build(self, config: Any, generator: torch.Generator | None = None) -> NCSR:
        return NCSR(config, generator)

    def objective(
        self, model: FlowSR, losses: LossWeights, feature_loss: nn.Module | None = None
    ) -> Objective:
        assert isinstance(model, NCSR)
        return NCSRObjective(model)


NCSR_FAMILY = NCSRFamily()
