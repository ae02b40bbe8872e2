"""A model exported to ONNX (``srflow export-onnx``), run by onnxruntime behind the contract.

An export folder holds ``manifest.json`` (the family and configuration, the latents' shapes
as a function of the LR size, the graphs' inputs), ``conditioning.onnx`` (LR -> everything
that does not depend on the sample) and ``sampling.onnx`` (those tensors + latents -> HR),
plus ``downscale.onnx`` for a model with its own HR -> LR flow. :class:`OnnxFlowSR` offers
the contract's sampling half: :meth:`prepare` runs the conditioning graph once per image,
:meth:`decode` the sampling graph; latents are drawn by the contract (one ``torch.Generator``,
so a seed gives the same samples as the PyTorch model). Encoding and log-likelihoods need
the PyTorch model and are refused in one line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from srflow.models.contract import Capabilities, CapabilityError, Conditioning, FlowSR

MANIFEST = "manifest.json"
FORMAT = "srflow-onnx/1"
#: ``srflow`` device name -> onnxruntime execution providers, most preferred first.
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "mps": ["CoreMLExecutionProvider", "CPUExecutionProvider"],
}
_DECODE_ONLY = "an ONNX export samples only; use the model file it was exported from"


@dataclass(frozen=True)
class LatentSpec:
    """One latent tensor: its channels and how many HR pixels one of its positions spans."""

    channels: int
    hr_divisor: int


def providers_for(device: str) -> list[str]:
    """Execution providers for a device (``$SRFLOW_ONNX_PROVIDERS``, comma-separated, wins),
    keeping only those this onnxruntime build has."""
    import onnxruntime

    wanted = os.environ.get("SRFLOW_ONNX_PROVIDERS")
    names = wanted.split(",") if wanted else PROVIDERS.get(device.split(":")[0], PROVIDERS["cpu"])
    available = set(onnxruntime.get_available_providers())
    chosen = [name.strip() for name in names if name.strip() in available]
    if not chosen:
        have = ", ".join(sorted(available))
        raise ValueError(f"none of the ONNX execution providers {', '.join(names)} is "
                         f"installed (this onnxruntime has {have})")
    return chosen


class OnnxGraph:
    """One onnxruntime session; inputs by name (an input the graph does not use is dropped)."""

    def __init__(self, path: Path, providers: list[str]) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        self.inputs = {i.name for i in self.session.get_inputs()}

    def __call__(self, feeds: dict[str, Tensor]) -> list[Tensor]:
        arrays = {
            name: np.ascontiguousarray(t.detach().cpu().float().numpy())
            for name, t in feeds.items() if name in self.inputs
        }  # fmt: skip
        return [torch.from_numpy(a) for a in self.session.run(None, arrays)]


class OnnxFlowSR(FlowSR):
    """The contract's sampling half on an export folder (module doc)."""

    def __init__(self, config: Any, manifest: dict[str, Any], folder: Path,
                 providers: list[str]) -> None:  # fmt: skip
        super().__init__()
        self.config = config
        self.manifest = manifest
        self.folder = folder
        self.providers = providers
        self.name = manifest.get("name")
        self.trained_temperature = manifest.get("trained_temperature")
        self.latents = [LatentSpec(int(s["channels"]), int(s["hr_divisor"]))
                        for s in manifest["latents"]]  # fmt: skip
        self.capabilities = Capabilities(
            downscale=bool(manifest.get("downscale")),
            rescaling=bool(manifest.get("rescaling")),
            noise_level=bool(manifest.get("noise_level")),
            reasons={name: f"{_DECODE_ONLY} ({name})" for name in
                     ("local_receptive_field", "encoder_pretraining", "noise_level",
                      "downscale")},
        )  # fmt: skip
        graphs = manifest["graphs"]
        self.conditioning_graph = OnnxGraph(folder / graphs["conditioning"], providers)
        self.sampling_graph = OnnxGraph(folder / graphs["sampling"], providers)
        down = graphs.get("downscale")
        self.downscale_graph = OnnxGraph(folder / down, providers) if down else None
        #: tells the pipelines the dtype and device the graphs take (they hold no weights here)
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    @property
    def flow_levels(self) -> int:
        return int(self.manifest["flow_levels"])

    def latent_levels(self) -> list[int]:
        return [int(level) for level in self.manifest["latent_levels"]]

    def latent_draw_order(self) -> list[int]:
        return [int(i) for i in self.manifest["latent_draw_order"]]

    def latent_shapes(self, lr: Tensor, n: int = 1) -> list[tuple[int, ...]]:
        b, _, h, w = lr.shape
        s = self.config.scale
        return [(n * b, spec.channels, h * s // spec.hr_divisor, w * s // spec.hr_divisor)
                for spec in self.latents]  # fmt: skip

    def prepare(
        self, lr: Tensor, keep: bool = True, *, noise_level: float | None = None
    ) -> Conditioning:
        """The conditioning graph's outputs: the features and the terms the sampling graph
        would otherwise compute per sample (each image once)."""
        self.check_noise_level(noise_level)
        level = float(noise_level or 0.0) if self.capabilities.noise_level else None
        feeds = {"lr": lr, **self._level_feed(level)}
        outputs = [f.to(lr.device) for f in self.conditioning_graph(feeds)]
        return Conditioning(lr, outputs, keep, noise_level=level)

    def decode(
        self, conditioning: Conditioning | Tensor, latents: list[Tensor], *, logdet: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        if logdet:
            raise CapabilityError(f"the log-determinant: {_DECODE_ONLY}")
        prepared = conditioning if isinstance(conditioning, Conditioning) else self.prepare(
            conditioning, keep=False)  # fmt: skip
        k = latents[0].shape[0] // prepared.lr.shape[0]  # samples per image, sample-major
        feeds = {"lr": prepared.lr.repeat(k, 1, 1, 1)}
        for i, feature in enumerate(prepared.features):
            feeds[f"feature{i}"] = feature.repeat(k, 1, 1, 1)
        feeds.update({f"latent{i}": z for i, z in enumerate(latents)})
        feeds.update(self._level_feed(prepared.noise_level))
        (hr,) = self.sampling_graph(feeds)
        return hr.to(latents[0].device), None

    def _level_feed(self, level: float | None) -> dict[str, Tensor]:
        """The graphs' noise-level input, a ``(1, 1, 1, 1)`` tensor (none given: 0), for a
        noise-conditioned family; nothing for the others."""
        if not self.capabilities.noise_level:
            return {}
        return {"noise_level": torch.full((1, 1, 1, 1), float(level or 0.0), dtype=torch.float32)}

    def encode(self, hr: Tensor, lr: Tensor) -> Any:
        raise CapabilityError(f"encoding: {_DECODE_ONLY}")

    def downscale(self, hr: Tensor) -> Tensor:
        if self.downscale_graph is None:
            self.require("downscale", "downscaling")
        assert self.downscale_graph is not None
        return self.downscale_graph({"hr": hr})[0].to(hr.device)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an export folder (ValueError naming the problem)."""
    path = folder / MANIFEST
    if path.stat().st_size > 1 << 20:
        raise ValueError(f"{path}: manifest larger than 1 MiB")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not an srflow ONNX manifest (format {FORMAT})")
    for name in ("family", "config", "graphs", "latents", "latent_levels", "flow_levels"):
        if name not in manifest:
            raise ValueError(f"{path}: the manifest has no {name!r}")
    for graph in manifest["graphs"].values():
        if Path(graph).name != graph or not (folder / graph).is_file():
            raise ValueError(f"{path}: graph {graph!r} is not a file of the folder")
    return manifest
