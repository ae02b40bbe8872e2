"""Lower precision per part of the model: speed and error against float32.

    python benchmarks/precision.py [--device cpu|cuda] [--size 64] [--samples 4]

Models: the embedded default model (trained) and the published SRFlow DF2K 4x and SRFlow-DA
4x architectures with the synthetic weights of ``../shared/vectors`` (no layer is an
identity). For each mode the same latents are decoded (temperature 0.8) and compared with
float32: the share of output values within 1/255 of float32 (target >= 99.9 %), the largest
difference, and the time of one call (conditioning + ``--samples`` samples) over float32's.

Modes (``torch.autocast``; float16 on CUDA only): ``encoder`` runs the RRDB encoder in low
precision, the conditioning cast back to float32; ``terms`` also computes the flow's
conditioning-only terms (injector shift/scale, couplings' first-conv parts) in low precision;
``all`` runs everything, the invertible part too.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from harness import machine_description, write_section

from srflow.inference.pipeline import inference_layout
from srflow.models.contract import Conditioning

ROOT = Path(__file__).resolve().parents[1]
MODES = ("float32", "encoder", "terms", "all")


def _models(device: str) -> dict[str, torch.nn.Module]:
    import srflow
    from srflow.checkpoints import load_original as load_official

    sys.path.insert(0, str(ROOT / "tests"))
    from reference_weights import rebuild_state_dict

    found = {"default (trained)": srflow.load(device=device).model}
    vectors = ROOT.parent / "shared" / "vectors"
    for folder in ("full_DF2K_4X", "full_SRFlowDA_4X"):
        if (vectors / folder).is_dir():
            model = load_official(rebuild_state_dict(vectors / folder))
            found[f"{folder.removeprefix('full_')} (synthetic)"] = model.eval().to(device)
    # the memory layout the library runs in (channels-last on the CPU), for every model
    return {name: inference_layout(m, torch.device(device)) for name, m in found.items()}


def _run(model: torch.nn.Module, lr: torch.Tensor, latents: list[torch.Tensor], mode: str,
         dtype: torch.dtype) -> torch.Tensor:  # fmt: skip
    device = lr.device.type

    def low(fn: Callable[[], object]) -> object:
        with torch.autocast(device, dtype=dtype):
            return fn()

    twin = model.sampling_twin()
    with torch.no_grad():
        if mode == "float32":
            prepared = twin.prepare(lr)
        else:
            features = low(lambda: twin.prepare(lr).features)
            prepared = Conditioning(lr, [c.float() for c in features])  # type: ignore[union-attr]
        if mode in ("terms", "all"):  # the first decode computes and keeps the terms
            first = [z[:1] for z in latents]
            low(lambda: twin.decode(prepared, first, logdet=False))
        if mode == "all":
            hr = low(lambda: twin.decode(prepared, latents, logdet=False)[0])
        else:
            hr = twin.decode(prepared, latents, logdet=False)[0]
    return hr.float().clamp(0, 1)  # type: ignore[union-attr]


def _timed(fn: Callable[[], torch.Tensor], device: str) -> tuple[torch.Tensor, float]:
    fn()  # warm-up
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        out = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return out, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args()
    dtypes = {"bfloat16": torch.bfloat16}
    if args.device.startswith("cuda"):
        dtypes["float16"] = torch.float16
    rows = []
    for name, model in _models(args.device).items():
        g = torch.Generator().manual_seed(0)
        photo = ROOT / "examples" / "astronaut_lr.png"
        from srflow.data.image_io import read_image

        lr = read_image(photo).rgb[None, :, : args.size, : args.size].to(args.device)
        shapes = model.latent_shapes(lr, args.samples)
        latents = [z.to(args.device) for z in model.sample_latents(shapes, 0.8, g)]
        case = functools.partial(_run, model, lr, latents)
        reference, base = _timed(functools.partial(case, "float32", torch.float32), args.device)
        for label, dtype in dtypes.items():
            for mode in MODES[1:]:
                out, seconds = _timed(functools.partial(case, mode, dtype), args.device)
                diff = (out - reference).abs()
                within = float((diff <= 1 / 255).double().mean()) * 100
                rows.append(f"| {name} | {label} | {mode} | {within:.3f} | "
                            f"{float(diff.max()) * 255:.1f} | {seconds:.2f} | "
                            f"{base / seconds:.2f} |")  # fmt: skip
    body = "\n".join([
        f"Machine: {machine_description(args.device)}. LR {args.size}x{args.size} crop of "
        f"examples/astronaut_lr.png, {args.samples} samples at temperature 0.8, same latents; "
        "'within': output values within 1/255 of float32 (target >= 99.9 %); 'max': largest "
        "difference in 8-bit levels; 'speed-up': float32 time over this mode's.",
        "",
        "| model | dtype | low precision in | within 1/255 (%) | max (levels) | time (s) | "
        "speed-up |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ])  # fmt: skip
    sys.stdout.write(body + "\n")
    write_section(f"precision ({args.device})", body)


if __name__ == "__main__":
    main()
