"""``srflow export-onnx``: any model to an ONNX folder that onnxruntime samples from.

Two graphs keep the contract's "prepare once, sample many" split: ``conditioning.onnx`` maps
the LR ``(B, 3, h, w)`` to everything that depends on it alone (the model's features, then
every conditioning-only term its sampling twin keeps between decodes), and ``sampling.onnx``
maps the LR, those tensors and the latents (encode order) to the HR image, unclamped.
Batch and spatial sizes are dynamic. The latents are inputs: randomness stays with the
caller. A model with an HR -> LR flow also gets ``downscale.onnx``. ``manifest.json`` says
what the folder is (:mod:`srflow.models.onnx_model`).

The graphs are traced from the model's sampling path (the twin where the family has one, in
its plain layout: oneDNN weight packing applies to channels-last inputs only, and the two
in-place shortcuts ONNX cannot express take their plain form while tracing). Everything that
depends on the weights alone (inverse 1x1 convolutions, folded scales) is computed once at
export and stored as constants: ONNX has no matrix inverse. The export is checked against
the reference decode (:func:`verify_export`). Float32 only (docs/onnx.md says why).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from srflow.checkpoints.errors import CheckpointError
from srflow.config.loading import to_dict
from srflow.families import family_of
from srflow.models.contract import Conditioning, FlowSR
from srflow.models.onnx_model import FORMAT, MANIFEST
from srflow.version import __version__

OPSET = 17
#: Largest difference of a verification decode (float32, a smooth probe image) accepted, per
#: unit of the output's largest value: a trained model's outputs lie near [0, 1], while an
#: untrained deep flow's inverse is chaotic (random-weight SRFlow DF2K 4x: outputs up to 2e4,
#: its own float32 and float64 decodes 0.06 apart).
VERIFY_TOLERANCE = 1e-3


@contextlib.contextmanager
def weights_as_constants(model: nn.Module) -> Iterator[None]:
    """Within this context the module's parameters and buffers are plain tensors, so tracing
    computes what depends on them alone (a matrix inverse) and stores the result as a
    constant; they are parameters and buffers again afterwards."""
    moved: list[tuple[nn.Module, str, str, Tensor]] = []
    for module in model.modules():
        for kind in ("_parameters", "_buffers"):
            table = getattr(module, kind)
            for name in [n for n, t in table.items() if t is not None]:
                tensor = table.pop(name)
                moved.append((module, kind, name, tensor))
                object.__setattr__(module, name, tensor.detach())
    try:
        yield
    finally:
        for module, kind, name, tensor in moved:
            del module.__dict__[name]
            getattr(module, kind)[name] = tensor


class _Conditioning(nn.Module):
    """LR (and a noise level, for a noise-conditioned family) -> the features, then every
    conditioning-only term the model's sampling twin keeps between decodes (SRFlow's
    injectors' shifts and scales, its couplings' conditioning parts), flattened; after a call
    :attr:`n_features` counts the features and :attr:`structure` gives each kept term's key
    and how many tensors it holds (0: one tensor, not a tuple)."""

    def __init__(self, model: FlowSR, noise: bool) -> None:
        super().__init__()
        self.model, self.noise = model, noise
        self.n_features = 0
        self.structure: list[tuple[tuple[int, str], int]] = []

    def forward(self, lr: Tensor, *level: Tensor) -> tuple[Tensor, ...]:
        sampler = self.model.sampling_twin()
        prepared = sampler.prepare(lr, keep=True)
        prepared.noise_level = level[0] if self.noise else None
        if sampler is not self.model:  # a twin fills its cache on a decode; the image is unused
            shapes = sampler.latent_shapes(lr, 1)
            sampler.decode(prepared, [lr.new_zeros(shape) for shape in shapes], logdet=False)
        self.n_features, self.structure, terms = len(prepared.features), [], []
        for key, value in prepared.cache.items():
            parts = value if isinstance(value, tuple) else (value,)
            self.structure.append((key, len(parts) if isinstance(value, tuple) else 0))
            terms.extend(parts)
        return (*prepared.features, *terms)


class _Sampling(nn.Module):
    """The conditioning graph's outputs, the latents (and the noise level) -> the HR image,
    decoded by the sampling twin from the given terms."""

    def __init__(self, model: FlowSR, n_features: int,
                 structure: list[tuple[tuple[int, str], int]], noise: bool) -> None:  # fmt: skip
        super().__init__()
        self.model, self.n_features, self.structure, self.noise = (
            model, n_features, structure, noise)  # fmt: skip

    def forward(self, lr: Tensor, *inputs: Tensor) -> Tensor:
        rest = list(inputs)
        features = [rest.pop(0) for _ in range(self.n_features)]
        cache: dict[tuple[int, str], object] = {}
        for key, size in self.structure:
            cache[key] = rest.pop(0) if size == 0 else tuple(rest.pop(0) for _ in range(size))
        level = rest.pop() if self.noise else None
        conditioning = Conditioning(lr, features, keep=True, noise_level=level)
        conditioning.cache = cache
        return self.model.sampling_twin().decode(conditioning, rest, logdet=False)[0]


class _Downscale(nn.Module):
    def __init__(self, model: FlowSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, hr: Tensor) -> Tensor:
        return self.model.downscale(hr)


def probe_lr(model: FlowSR, batch: int = 2, cells: int = 3) -> Tensor:
    """A smooth, photo-like LR (random pixels make the inverse flow chaotic)."""
    side = model.config.size_multiple_lr * max(1, math.ceil(12 / model.config.size_multiple_lr))
    y = torch.linspace(0, 1, side * cells // 3)[:, None]
    x = torch.linspace(0, 1, side + model.config.size_multiple_lr)[None, :]
    image = torch.stack([0.5 + 0.3 * torch.sin(6 * x + 4 * y), 0.4 + 0.3 * torch.cos(5 * y + x),
                         0.5 + 0.2 * torch.sin(3 * x * y + 1)])  # fmt: skip
    return torch.stack([image, image.flip(-1)][:batch])


def _export(module: nn.Module, args: tuple[Tensor, ...], path: Path, inputs: list[str],
            outputs: list[str], opset: int) -> None:  # fmt: skip
    axes = {name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"}
            for name in inputs + outputs}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python-side shape checks
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=opset, dynamo=False)  # fmt: skip


def latent_divisors(model: FlowSR, lr: Tensor) -> list[dict[str, int]]:
    """Each latent's channels and HR pixels per latent position, checked on both sides."""
    specs = []
    s = model.config.scale
    for shape in model.latent_shapes(lr, 1):
        divisor = lr.shape[2] * s // shape[2]
        if shape[2] * divisor != lr.shape[2] * s or shape[3] * divisor != lr.shape[3] * s:
            raise CheckpointError(f"latent shape {shape} is not a fixed fraction of the HR")
        specs.append({"channels": int(shape[1]), "hr_divisor": int(divisor)})
    return specs


def graph_inputs(path: Path) -> list[str]:
    """The inputs a written graph takes (the exporter drops those it does not use, e.g. the
    LR of a family whose decode needs only the conditioning)."""
    import onnx

    return [value.name for value in onnx.load(str(path)).graph.input]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_onnx(
    model: FlowSR, folder: str | Path, *, source: str | Path | None = None, opset: int = OPSET,
) -> Path:  # fmt: skip
    """Write ``model`` as an ONNX folder (module doc) and check it against the model.

    The folder is written beside its final place and renamed into it, so a failed export
    leaves nothing behind; an existing export folder is replaced, any other folder refused.

    Returns:
        The folder.

    Raises:
        CheckpointError: the model does not trace, or the graphs disagree with it.
    """
    folder = Path(folder)
    if folder.exists() and not (folder / MANIFEST).is_file() and any(folder.iterdir()):
        raise CheckpointError(f"{folder}: exists and is not an srflow ONNX folder; "
                              "choose an empty or new folder")  # fmt: skip
    model = model.float().cpu().eval()
    staging = folder.with_name(f".{folder.name}.exporting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        manifest = _write_graphs(model, staging, opset)
        if source is not None:
            manifest["source"] = {"file": Path(source).name, "sha256": sha256_of(Path(source))}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        manifest["verified"] = verify_export(model, staging)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write_graphs(model: FlowSR, staging: Path, opset: int) -> dict:
    lr = probe_lr(model)
    noise = bool(model.capabilities.noise_level)
    level = [torch.full((1, 1, 1, 1), 0.1)] if noise else []
    conditioning = _Conditioning(model, noise)
    with torch.no_grad():
        outputs = conditioning(lr, *level)
        latents = model.sample_latents(model.latent_shapes(lr, 1), 0.5,
                                       torch.Generator().manual_seed(0))  # fmt: skip
    sampling = _Sampling(model, conditioning.n_features, conditioning.structure, noise)
    output_names = [f"feature{i}" for i in range(len(outputs))]
    latent_names = [f"latent{i}" for i in range(len(latents))]
    noise_names = ["noise_level"] if noise else []
    graphs = {"conditioning": "conditioning.onnx", "sampling": "sampling.onnx"}
    try:
        with torch.no_grad(), weights_as_constants(model):
            _export(conditioning, (lr, *level), staging / graphs["conditioning"],
                    ["lr", *noise_names], output_names, opset)  # fmt: skip
            _export(sampling, (lr, *outputs, *latents, *level), staging / graphs["sampling"],
                    ["lr", *output_names, *latent_names, *noise_names], ["hr"], opset)  # fmt: skip
            if model.capabilities.downscale:
                graphs["downscale"] = "downscale.onnx"
                hr = torch.nn.functional.interpolate(lr, scale_factor=model.config.scale)
                _export(_Downscale(model), (hr,), staging / graphs["downscale"], ["hr"],
                        ["lr"], opset)  # fmt: skip
    except (RuntimeError, ValueError, TypeError) as exc:  # the exporter's own error types vary
        raise CheckpointError(f"ONNX export failed: {str(exc).splitlines()[0]}") from None
    return {
        "format": FORMAT,
        "name": model.name,
        "family": family_of(model.config).name,
        "config": to_dict(model.config),
        "scale": model.config.scale,
        "size_multiple_lr": model.config.size_multiple_lr,
        "flow_levels": model.flow_levels,
        "latent_levels": model.latent_levels(),
        "latent_draw_order": model.latent_draw_order(),
        "latents": latent_divisors(model, lr),
        "temperature": "the standard deviation of the latents: draw latent i as "
                       "N(0, 1) * t_i, one t for all, one per flow level or one per latent",
        "trained_temperature": model.trained_temperature,
        "noise_level": noise,
        "downscale": bool(model.capabilities.downscale),
        "rescaling": bool(model.capabilities.rescaling),
        "graphs": graphs,
        "inputs": {name: graph_inputs(staging / file) for name, file in graphs.items()},
        "outputs": {"conditioning": output_names, "sampling": ["hr"]},
        "dtype": "float32",
        "opset": opset,
        "srflow_version": __version__,
    }  # fmt: skip


def verify_export(model: FlowSR, staging: Path) -> dict:
    """Decode a smooth probe at another size and batch through the folder and through the
    model (and downscale, and at a noise level, where the model can); the largest difference
    must stay within :data:`VERIFY_TOLERANCE` (see :func:`_relative`)."""
    from srflow.checkpoints import load_onnx_folder

    exported = load_onnx_folder(staging)
    lr = probe_lr(model, batch=1, cells=5)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        latents = model.sample_latents(model.latent_shapes(lr, 2), 0.6, generator)
        expected = model.decode(model.prepare(lr, keep=False), latents, logdet=False)[0]
        got = exported.decode(exported.prepare(lr, keep=False), latents, logdet=False)[0]
        difference = _relative(got, expected)
        if model.capabilities.noise_level:  # a noise level other than the default 0
            expected = model.decode(model.prepare(lr, noise_level=0.3), latents, logdet=False)[0]
            got = exported.decode(exported.prepare(lr, noise_level=0.3), latents, logdet=False)[0]
            difference = max(difference, _relative(got, expected))
        if model.capabilities.downscale:
            hr = torch.nn.functional.interpolate(lr, scale_factor=model.config.scale)
            difference = max(difference, _relative(exported.downscale(hr), model.downscale(hr)))
    if not difference <= VERIFY_TOLERANCE:
        raise CheckpointError(f"the ONNX graphs differ from the model by {difference:.3g} of "
                              f"the output's range on a probe image (more than "
                              f"{VERIFY_TOLERANCE})")  # fmt: skip
    return {"lr": list(lr.shape[2:]), "samples": 2, "max_relative_difference": difference}


def _relative(got: Tensor, expected: Tensor) -> float:
    """The largest difference per unit of the larger of 1 and the output's largest value."""
    scale = max(1.0, float(expected.abs().max()))
    return float((got - expected).abs().max()) / scale
