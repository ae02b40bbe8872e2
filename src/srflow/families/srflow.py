"""The SRFlow family (Lugmayr et al., ECCV 2020): its three published checkpoints."""

from __future__ import annotations

from srflow.families.base import PublishedModel
from srflow.families.flow_family import FlowFamily
from srflow.models.srflow_config import EncoderConfig, FlowConfig, ModelConfig

_DF2K_4X = ModelConfig(4, EncoderConfig(64, 32, 23, (1, 8, 15, 22)), FlowConfig(3, 16, 2, (1,)))
# The 8x models stack blocks [1, 3, 5, 7] (code/confs/SRFlow_DF2K_8X.yml), not the 4x list.
_DF2K_8X = ModelConfig(8, EncoderConfig(64, 32, 23, (1, 3, 5, 7)), FlowConfig(4, 16, 2, (1, 2)))
_CELEBA_8X = ModelConfig(8, EncoderConfig(64, 32, 8, (1, 3, 5, 7)), FlowConfig(4, 16, 2, (1, 2)))


class SRFlowFamily(FlowFamily):
    """SRFlow: RRDB encoder + multi-level conditional Glow, SRFlow's coupling sub-networks."""

    name = "SRFlow"
    subnet_kinds = frozenset({"actnorm"})
    stacked_blocks = {(23, 4): (1, 8, 15, 22), (23, 8): (1, 3, 5, 7), (8, 8): (1, 3, 5, 7)}
    dequantization = "uniform"
    published = (
        PublishedModel("SRFlow_DF2K_4X", "SRFlow", 4, "SRFlow_DF2K_4X.pth",
                       "DF2K (DIV2K + Flickr2K)", _DF2K_4X),
        PublishedModel("SRFlow_DF2K_8X", "SRFlow", 8, "SRFlow_DF2K_8X.pth",
                       "DF2K (DIV2K + Flickr2K)", _DF2K_8X),
        PublishedModel("SRFlow_CelebA_8X", "SRFlow", 8, "SRFlow_CelebA_8X.pth",
                       "CelebA faces (160x160 crops)", _CELEBA_8X),
    )  # fmt: skip


SRFLOW = SRFlowFamily()
