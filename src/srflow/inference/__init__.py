"""Inference: super-resolution pipelines."""

from srflow.inference.api import load
from srflow.inference.pipeline import InputTooSmallError, SuperResolver, pick_device

__all__ = ["InputTooSmallError", "SuperResolver", "load", "pick_device"]
