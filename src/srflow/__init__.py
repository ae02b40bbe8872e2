"""srflow: flow-based, diverse image super-resolution (SRFlow and family).

Quick start::

    import srflow
    model = srflow.load()                 # embedded 4x model; or a .safetensors / original .pth
    images = model.super_resolve(pil_image, temperature=0.8, samples=4, seed=0)  # PIL images
"""

from srflow.checkpoints import load_model, save_model
from srflow.data.image_io import read_image
from srflow.data.resize import imresize
from srflow.divergence import DivergenceWarning
from srflow.inference.api import load
from srflow.inference.rescale import Rescaler
from srflow.models.srflow import SRFlow
from srflow.models.srflow_config import ModelConfig
from srflow.version import __version__

__all__ = [
    "DivergenceWarning",
    "ModelConfig",
    "Rescaler",
    "SRFlow",
    "__version__",
    "imresize",
    "load",
    "load_model",
    "read_image",
    "save_model",
]
