"""Many samples for the price of a few: time, memory and FLOPs of sampling runs.

    python benchmarks/bench_samples.py [--device cpu|cuda] [--models NAME ...]
        [--sizes 64 128] [--runs n1 n10 n100 t3x10 n10_b2 n30]

For each model (random weights) and LR size, each run goes in a fresh process after a warm-up,
through ``SuperResolver.sample_temperatures`` (what ``srflow sr`` calls): ``nN`` draws N
samples at temperature 0.8 in one call (decoded in the library's default batches: 4 samples at
a time on the CPU, all on a GPU), ``t3x10`` 10 samples at each of 0.6, 0.7 and 0.8 (one
prepared conditioning; the 30 samples decoded as one stream of batches), ``n10_b2`` 10
samples decoded in batches of 2. The table gives the time, the peak memory above the loaded
model, the FLOPs the run executed
(``torch.utils.flop_counter``), its minimum FLOPs (the fixed work once: the encoder and every
conditioning-only term; plus the per-sample work N times, both counted on the model), the
achieved GFLOP/s of that minimum, and the GFLOP/s of a reference 3x3 convolution (64 -> 64
channels, 256x256) measured in the same run. Each process tunes the C allocator as the
``srflow`` command does (:mod:`srflow.inference.allocator`); ``--malloc-default`` measures the
given runs with glibc's default allocator as well (rows marked "malloc default"). Results are
kept in ``outputs/bench_samples.json`` so an interrupted run resumes; ``--fresh`` starts over,
``--redo`` measures the selected cases again. ``--repeats K`` runs each case in K fresh
processes, interleaved with the other selected cases, and keeps the fastest (on a shared
machine a single run can be off by 20 %).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch
from harness import machine_description, measure, run_case_in_subprocess, write_section
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, register_flop_formula

from srflow.divergence import DivergenceWarning
from srflow.families import family_of, published_models
from srflow.inference.allocator import keep_freed_memory
from srflow.inference.pipeline import SuperResolver, inference_layout

MODELS = ("SRFlow_DF2K_4X", "SRFlowDA_4X", "SRFlowDA-R_4X", "SRFlowDA-S_4X", "SRFlowDA-D_4X")
RUNS = ("n1", "n10", "n100", "t3x10", "n10_b2", "n30")
STATE = Path(__file__).resolve().parents[1] / "outputs" / "bench_samples.json"


def _build(name: str):  # noqa: ANN202 (benchmark helper; SuperResolver places it)
    for _, published in published_models():
        if published.name == name:
            torch.manual_seed(0)
            return family_of(published.config).build(published.config)
    raise SystemExit(f"unknown model {name!r}")


def _plan(run: str) -> tuple[list[float], int, int | None]:
    """(temperatures, samples per temperature, batch size) of a run."""
    if run == "t3x10":
        return [0.6, 0.7, 0.8], 10, None
    if run == "n10_b2":
        return [0.8], 10, 2
    return [0.8], int(run[1:]), None


def _sample(resolver: SuperResolver, lr: torch.Tensor, run: str) -> None:
    """The run through ``SuperResolver.sample_temperatures`` (what ``srflow sr`` calls): one
    prepared conditioning, the temperatures' samples decoded as one stream of equal batches."""
    temperatures, n, batch = _plan(run)
    for _ in resolver.sample_temperatures(lr[0], temperatures, n, 0, batch_size=batch):
        pass


_POINTWISE_CONV = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)
if _POINTWISE_CONV is not None:
    # the library's packed per-sample convolutions (srflow.flows.packed) run this oneDNN op,
    # which torch.utils.flop_counter does not count by itself

    @register_flop_formula(_POINTWISE_CONV)
    def _pointwise_conv_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001, ANN002, ANN003
        return conv_flop_count(x_shape, w_shape, out_shape)


def _flops(fn) -> float:  # noqa: ANN001
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def _minimum_flops(model, lr: torch.Tensor) -> tuple[float, float]:  # noqa: ANN001
    """(fixed, per sample): one prepared decode minus a second one, and the second one."""
    g = torch.Generator().manual_seed(0)
    shapes = model.latent_shapes(lr)
    latents = [z.to(lr) for z in model.sample_latents(shapes, 0.8, g)]
    holder: dict[str, object] = {}
    twin = model.sampling_twin()

    def first() -> None:
        holder["prepared"] = twin.prepare(lr)
        twin.decode(holder["prepared"], latents, logdet=False)

    total = _flops(first)
    per_sample = _flops(lambda: twin.decode(holder["prepared"], latents, logdet=False))
    return total - per_sample, per_sample


def _reference_gflops(device: str) -> float:
    """GFLOP/s of a plain 3x3 convolution (64 -> 64 channels, 256x256), the best of 10 calls
    after 3 warm-up calls, in the layout the model's convolutions run in (channels-last on
    the CPU, :func:`~srflow.inference.pipeline.inference_layout`): on a 2-core AMD EPYC the
    default layout ran it at about 200 GFLOP/s, channels-last at about 500."""
    conv = inference_layout(torch.nn.Conv2d(64, 64, 3, padding=1).to(device), torch.device(device))
    x = torch.rand(1, 64, 256, 256, device=device)
    if device == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    flops = 2 * 64 * 64 * 9 * 256 * 256
    with torch.no_grad():
        for _ in range(3):
            conv(x)
        best = float("inf")
        for _ in range(10):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            conv(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def _case(spec: str, device: str, count_flops: bool = True) -> dict[str, float]:
    name, size, run, *allocator = spec.split(":")
    if not allocator:
        keep_freed_memory()
    # random weights: most values overflow (clamped, as with any model); no warning per batch
    warnings.simplefilter("ignore", DivergenceWarning)
    model = _build(name)
    resolver = SuperResolver(model, device=device)
    lr = torch.rand(1, 3, int(size), int(size), device=device)
    with torch.no_grad():
        _sample(resolver, torch.rand(1, 3, 16, 16, device=device), "n1")  # warm-up
        result = measure(lambda: _sample(resolver, lr, run), device)
        if count_flops:
            result["flops"] = _flops(lambda: _sample(resolver, lr, run))
            fixed, per_sample = _minimum_flops(model, lr)
            temperatures, n, _ = _plan(run)
            result["min_flops"] = fixed + per_sample * n * len(temperatures)
    result["ref_gflops"] = _reference_gflops(device)
    return result


def _table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    lines = [
        f"Machine: {machine_description(args.device)}. Random weights, float32. 'min': the "
        "fixed work once plus the per-sample work N times; 'eff.': min GFLOP/s over the "
        "reference 3x3 convolution's GFLOP/s in the same run (target >= 0.67); 'x n1': time "
        "over the 1-sample run of the same model and size (target for n100: <= 6).",
        "",
        "| model | LR | run | time (s) | x n1 | peak (MB) | GFLOP run | GFLOP min | "
        "GFLOP/s (min) | ref GFLOP/s | eff. |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, r in results.items():
        name, size, run, *allocator = spec.split(":")
        one = results.get(":".join([name, size, "n1", *allocator]))
        run += " (malloc default)" if allocator else ""
        run += f" (fastest of {r['repeats']})" if r.get("repeats", 1) > 1 else ""
        ratio = f"{r['seconds'] / one['seconds']:.2f}" if one else "-"
        achieved = r["min_flops"] / r["seconds"] / 1e9
        lines.append(
            f"| {name} | {size} | {run} | {r['seconds']:.2f} | {ratio} | {r['peak_mb']:.0f} | "
            f"{r['flops'] / 1e9:.0f} | {r['min_flops'] / 1e9:.0f} | {achieved:.1f} | "
            f"{r['ref_gflops']:.1f} | {achieved / r['ref_gflops']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS)
    parser.add_argument("--fresh", action="store_true", help="forget the kept results")
    parser.add_argument("--malloc-default", action="store_true",
                        help="also run with glibc's default allocator")  # fmt: skip
    parser.add_argument("--redo", action="store_true", help="measure the selected cases again")
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes per case")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--time-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_case(args.case, args.device, count_flops=not args.time_only)))
        return
    results = {} if args.fresh or not STATE.exists() else json.loads(STATE.read_text())
    STATE.parent.mkdir(parents=True, exist_ok=True)
    specs = [
        spec
        for name in args.models
        for size in args.sizes
        for run in args.runs
        for spec in [f"{name}:{size}:{run}"]
        + ([f"{name}:{size}:{run}:default"] if args.malloc_default else [])
        if args.redo or spec not in results
    ]
    for repeat in range(args.repeats):
        for spec in specs:
            counted = {
                k: results[spec][k] for k in ("flops", "min_flops") if k in results.get(spec, {})
            }
            extra = ["--time-only"] if len(counted) == 2 else []  # FLOPs do not change
            result = run_case_in_subprocess(
                Path(__file__), spec, ["--device", args.device, *extra]
            )
            result |= counted
            kept = results.get(spec) if repeat else None
            if kept is None or result["seconds"] < kept["seconds"]:
                results[spec] = result
            results[spec]["repeats"] = repeat + 1
            STATE.write_text(json.dumps(results, indent=1))
            print(spec, result, flush=True)
    write_section(f"bench_samples ({args.device})", _table(results, args))


if __name__ == "__main__":
    main()
