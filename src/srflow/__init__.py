"""srflow: flow-based, diverse image super-resolution (SRFlow and family).

Quick start::

    import srflow
    pipe = srflow.load("model.safetensors")        # or an original SRFlow .pth
    images = pipe.super_resolve(pil_image, temperature=0.8, samples=4, seed=0)
"""

from srflow.config.schema import ModelConfig
from srflow.models.checkpoint import load_model, save_model
from srflow.models.srflow import SRFlow

__version__ = "0.1.0"

__all__ = ["ModelConfig", "SRFlow", "__version__", "load_model", "save_model"]
