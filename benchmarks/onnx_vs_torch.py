"""onnxruntime (CPU) against srflow's PyTorch sampling path, side by side in one run.

    python benchmarks/onnx_vs_torch.py [--sizes 64 128] [--models SRFlow_DF2K_4X ...]

For each published architecture (random weights: time and memory do not depend on their
values) and LR size, two fresh processes, one per runtime, each: load the model (PyTorch: the
sampling twin, as ``srflow sr`` uses; ONNX: an export folder, written once into
``--work`` and reused on a rerun), then the first sample (prepare + decode of one sample),
then 3 further samples (decode only, the conditioning kept), and the process's peak resident
memory. Prints a Markdown table with the ratio ONNX / PyTorch.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

DEFAULT_MODELS = ("SRFlow_DF2K_4X", "SRFlowDA-R_4X", "HCFlow_SR_DF2K_4X")
FURTHER = 3


def build(name: str) -> torch.nn.Module:
    from srflow.families import family_of, published_named

    published = published_named(name)
    model = family_of(published.config).build(published.config, torch.Generator().manual_seed(0))
    return model.eval()


def export_folder(name: str, work: Path) -> Path:
    from srflow.checkpoints.onnx_export import export_onnx

    folder = work / name
    if not (folder / "manifest.json").is_file():
        export_onnx(build(name), folder)
    return folder


def photo(size: int) -> torch.Tensor:
    """The example photo's top-left ``size`` x ``size`` LR crop, ``(1, 3, size, size)``."""
    from srflow.data.image_io import read_image

    image = read_image(Path(__file__).resolve().parents[1] / "examples" / "astronaut_lr.png")
    return image.rgb[None, :, :size, :size].contiguous()


def measure(name: str, size: int, runtime: str, work: Path) -> dict[str, float]:
    """One process's figures (run as a child: peak memory is per process)."""
    from srflow.checkpoints import load_model

    torch.set_grad_enabled(False)
    start = time.perf_counter()
    model = load_model(work / name) if runtime == "onnx" else build(name).sampling_twin()
    loaded = time.perf_counter() - start
    lr = photo(size)
    generator = torch.Generator().manual_seed(1)

    def latents() -> list[torch.Tensor]:
        return model.sample_latents(model.latent_shapes(lr, 1), 0.6, generator)

    start = time.perf_counter()
    conditioning = model.prepare(lr)
    model.decode(conditioning, latents(), logdet=False)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(FURTHER):
        model.decode(conditioning, latents(), logdet=False)
    further = (time.perf_counter() - start) / FURTHER
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"load_s": loaded, "first_s": first, "further_s": further, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--work", type=Path, default=Path("bench_onnx"))
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "SIZE", "RUNTIME"))
    args = parser.parse_args()
    if args.child:
        name, size, runtime = args.child
        sys.stdout.write(json.dumps(measure(name, int(size), runtime, args.work)) + "\n")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    rows = ["| model | LR | runtime | first sample s | each further s | peak GiB | "
            "ONNX / PyTorch (further) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in args.models:
        export_folder(name, args.work)
        for size in args.sizes:
            figures = {}
            for runtime in ("torch", "onnx"):
                done = subprocess.run([sys.executable, __file__, "--work", str(args.work),
                                       "--child", name, str(size), runtime],
                                      capture_output=True, text=True, check=True)  # fmt: skip
                figures[runtime] = json.loads(done.stdout.strip().splitlines()[-1])
            ratio = figures["onnx"]["further_s"] / figures["torch"]["further_s"]
            for runtime, f in figures.items():
                shown = f"{ratio:.2f}" if runtime == "onnx" else ""
                rows.append(f"| {name} | {size}x{size} | {runtime} | {f['first_s']:.2f} | "
                            f"{f['further_s']:.2f} | {f['peak_gib']:.2f} | {shown} |")  # fmt: skip
            sys.stdout.write("\n".join(rows[-2:]) + "\n")
            sys.stdout.flush()
    sys.stdout.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
