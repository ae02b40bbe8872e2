"""Inference: super-resolution pipelines."""

from srflow.inference.pipeline import InputTooSmallError, SuperResolver, pick_device

__all__ = ["InputTooSmallError", "SuperResolver", "pick_device"]
