"""The HCFlow family (Liang et al., ICCV 2021): its three published checkpoints.

``SR_DF2K_X4_HCFlow++.pth`` (general SR 4x), ``SR_CelebA_X8_HCFlow++.pth`` (faces 8x) and
``Rescaling_DF2K_X4_HCFlow.pth`` (image rescaling 4x); the HCFlow and HCFlow+ training
stages have the same layouts. The dequantization width (``quant``: 64 for DF2K, 256 for
CelebA) is not in the checkpoints: it is taken from the published configuration of the same
shape (it matters for the NLL only, not for sampling).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from srflow.config.loading import ConfigValueError
from srflow.config.losses import LossWeights
from srflow.config.training import TrainConfig
from srflow.families import hcflow_keys
from srflow.families.base import DetectionError, ModelFamily, PublishedModel
from srflow.families.hcflow_objective import HCFlowObjective
from srflow.families.objective import Objective
from srflow.models.contract import FlowSR
from srflow.models.hcflow import HCFlow
from srflow.models.hcflow_config import HCFlowConfig

_SR_4X = HCFlowConfig()
_FACE_8X = HCFlowConfig(levels=3, rrdb_blocks=(5, 5), dequantization_bins=256)
_RESCALING_4X = HCFlowConfig(
    trunk_steps=8, conditional_steps=6, rrdb_blocks=(2, 1), rrdb_growth=16, task="rescale"
)


def _count(keys: list[str], pattern: str) -> int:
    return len({m.group(1) for k in keys if (m := re.match(pattern, k))})


class HCFlowFamily(ModelFamily):
    """HCFlow: HR <-> (LR, high-frequency latents), for SR and for image rescaling."""

    name = "HCFlow"
    config_class = HCFlowConfig
    published = (
        PublishedModel("HCFlow_SR_DF2K_4X", "HCFlow++", 4, "SR_DF2K_X4_HCFlow++.pth",
                       "DF2K (DIV2K + Flickr2K), 160x160 crops", _SR_4X),
        PublishedModel("HCFlow_SR_CelebA_8X", "HCFlow++", 8, "SR_CelebA_X8_HCFlow++.pth",
                       "CelebA faces, 160x160", _FACE_8X),
        PublishedModel("HCFlow_Rescaling_DF2K_4X", "HCFlow (rescaling)", 4,
                       "Rescaling_DF2K_X4_HCFlow.pth", "DF2K (DIV2K + Flickr2K)", _RESCALING_4X),
    )  # fmt: skip

    def claims(self, state_dict: Mapping[str, Tensor]) -> bool:
        keys = list(state_dict)
        return any(k.startswith("flow.layers.") for k in keys) and any(
            k.startswith("flow.level0_condFlow.") for k in keys
        )

    def detect_config(self, state_dict: Mapping[str, Tensor], **hints: Any) -> HCFlowConfig:
        sd = dict(state_dict)
        keys = list(sd)
        try:
            levels = _count(keys, r"^flow\.level(\d+)_condFlow\.")
            rescale = any(k.endswith("haar_weights") for k in keys)
            trunk_steps = _count(keys, r"^flow\.layers\.(\d+)\.actnorm\.") // levels
            p = "flow.level0_condFlow."
            config = HCFlowConfig(
                levels=levels,
                trunk_steps=trunk_steps,
                conditional_steps=_count(keys, rf"^{re.escape(p)}additional_flow_steps\.(\d+)\."),
                rrdb_blocks=(
                    _count(keys, rf"^{re.escape(p)}RRDB_trunk0\.(\d+)\."),
                    _count(keys, rf"^{re.escape(p)}RRDB_trunk1\.(\d+)\."),
                ),
                rrdb_growth=sd[f"{p}RRDB_trunk0.0.RDB1.conv1.weight"].shape[0],
                hidden_channels=sd[f"{p}additional_flow_steps.0.affine.f.conv1.weight"].shape[0],
                task="rescale" if rescale else "sr",
                dense_growth=sd["flow.layers.1.affine.f.conv1.weight"].shape[0] if rescale else 32,
            )
        except (KeyError, ValueError, ZeroDivisionError) as exc:
            raise DetectionError(f"unreadable HCFlow layout ({exc})") from None
        for published in self.published:  # quant is not stored: take the published one
            same = {**vars(published.config), "dequantization_bins": config.dequantization_bins}
            if vars(config) == same:
                return published.config
        return config

    def to_ours(self, state_dict: Mapping[str, Tensor], config: Any) -> dict[str, Tensor]:
        return hcflow_keys.to_ours(dict(state_dict), fcn=config.task == "sr")

    def to_original(self, state_dict: Mapping[str, Tensor], config: Any) -> dict[str, Tensor]:
        fcn = config.task == "sr"
        return {hcflow_keys.to_original_key(k, fcn): v for k, v in state_dict.items()}

    def build(self, config: Any, generator: torch.Generator | None = None) -> HCFlow:
        return HCFlow(config, generator)

    def check_training(self, train: TrainConfig) -> None:
        if train.l1_pretrain_steps or train.encoder_freeze_fraction:
            raise ConfigValueError(
                "train: HCFlow has no L1 pre-training or encoder freezing "
                "(l1_pretrain_steps and encoder_freeze_fraction must be 0)"
            )

    def objective(
        self, model: FlowSR, losses: LossWeights, feature_loss: nn.Module | None = None
    ) -> Objective:
        assert isinstance(model, HCFlow)
        return HCFlowObjective(model, losses, feature_loss)

    def describe(self, config: Any) -> str:
        if self.published_for(config) is None and config.task == "rescale":
            return f"{self.name} rescaling {config.scale}x (custom configuration)"
        return super().describe(config)


HCFLOW = HCFlowFamily()
