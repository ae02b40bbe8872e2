"""Invertible building blocks. Images are ``(B, C, H, W)``; see :mod:`srflow.flows.base`."""

from srflow.flows.actnorm import ActNorm2d, data_dependent_init
from srflow.flows.base import FlowLayer, FlowSequence, sum_except_batch
from srflow.flows.coupling import AffineInjector, ConditionalAffineCoupling
from srflow.flows.invconv import InvConv1x1
from srflow.flows.split import SplitPrior
from srflow.flows.squeeze import Squeeze2d
from srflow.flows.step import FlowStep

__all__ = [
    "ActNorm2d",
    "AffineInjector",
    "ConditionalAffineCoupling",
    "FlowLayer",
    "FlowSequence",
    "FlowStep",
    "InvConv1x1",
    "SplitPrior",
    "Squeeze2d",
    "data_dependent_init",
    "sum_except_batch",
]
