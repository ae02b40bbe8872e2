"""``srflow metrics``: image quality metrics of images, against references where they need one.

``srflow metrics IMAGE_OR_DIR [--ref IMAGE_OR_DIR] [--metric psnr lpips ...] [--json]``
prints one line per image (``--json``: one JSON object per line, ``{"image": ..., "psnr":
...}``); references are paired by relative path without suffix. ``--list`` names every metric
and its convention. Exit status: 0 all done, 1 some image failed (the others are still
scored), 2 a fatal setup problem.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from srflow.cli.common import (
    CliError,
    InputError,
    InputFile,
    collect_inputs,
    fail,
    for_each_input,
    note,
)
from srflow.data.image_io import IMAGE_SUFFIXES, read_image
from srflow.inference.naming import source_stems
from srflow.inference.pipeline import pick_device
from srflow.metrics.registry import METRIC_SPECS, MetricRunner
from srflow.metrics.weights import MetricUnavailable

DEFAULT_FULL_REFERENCE = ("psnr", "ssim", "lpips")
DEFAULT_NO_REFERENCE = ("niqe", "piqe")
#: Above this share of pixels in flat neighbourhoods of nonzero levels, NIQE and BRISQUE get a
#: note: the MATLAB releases' rounding residue there is unknown (on TID2013's I06, 0.64 % of
#: the pixels moved BRISQUE by up to 10 %; docs/metrics.md).
RESIDUE_NOTE_SHARE = 1e-3


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``srflow metrics``."""
    p = subparsers.add_parser("metrics", help="image quality metrics (PSNR, SSIM, LPIPS, NIQE...)")
    p.add_argument("inputs", nargs="*", type=Path, help="image files or folders")
    p.add_argument("--ref", type=Path, help="reference image or folder (paired by name)")
    p.add_argument("--metric", nargs="+", choices=sorted(METRIC_SPECS), metavar="NAME",
                   help="metrics (default: psnr ssim lpips with --ref, else niqe piqe)",
                   )  # fmt: skip
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--list", action="store_true", help="list the metrics and their conventions")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (LPIPS)")
    p.set_defaults(run=run)


def _as_uint8(path: Path) -> np.ndarray:
    loaded = read_image(path)
    return np.rint(loaded.rgb.permute(1, 2, 0).double().numpy() * 255).astype(np.uint8)


def _references(ref: Path | None) -> dict[Path, Path]:
    if ref is None:
        return {}
    if ref.is_file():
        return {Path(ref.stem): ref}
    if not ref.is_dir():
        raise CliError(f"{ref}: no such file or folder (--ref)")
    files, _, _ = collect_inputs([ref], frozenset(IMAGE_SUFFIXES))
    return {f.out_stem: f.path for f in files}


def _format(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    """Run ``srflow metrics``; returns the exit status."""
    if args.list:
        width = max(len(name) for name in METRIC_SPECS)
        for spec in METRIC_SPECS.values():
            kind = "full-reference" if spec.full_reference else "no-reference"
            better = "higher" if spec.higher_is_better else "lower"
            print(f"{spec.name:<{width}} {kind:<15} {better} is better; {spec.convention}")
        return 0
    if not args.inputs:
        raise CliError("give image files or folders (or --list)")
    names = args.metric or list(DEFAULT_FULL_REFERENCE if args.ref else DEFAULT_NO_REFERENCE)
    needing = [n for n in names if METRIC_SPECS[n].full_reference]
    if needing and args.ref is None:
        raise CliError(f"{', '.join(needing)}: full-reference; pass --ref IMAGE_OR_DIR")
    try:
        runner = MetricRunner(pick_device(args.device))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    references = _references(args.ref)
    files, skipped, missing = collect_inputs(args.inputs, frozenset(IMAGE_SUFFIXES))
    for problem in skipped:
        note(problem)
    for problem in missing:
        fail(problem)
    unavailable: set[str] = set()

    def score(item: InputFile) -> None:
        image = _as_uint8(item.path)
        ref = None
        if needing:
            named = (references.get(stem) for stem in source_stems(item.out_stem))
            ref_path = next((p for p in named if p is not None), None) or (
                next(iter(references.values())) if len(references) == 1 else None
            )
            if ref_path is None:
                tried = ", ".join(str(s) for s in source_stems(item.out_stem))
                raise InputError(f"{item.path}: no reference named {tried} in {args.ref}")
            ref = _as_uint8(ref_path)
        values: dict[str, float] = {}
        for name in names:
            if name in unavailable:
                continue
            try:
                values[name] = runner.compute(name, image, ref)
            except MetricUnavailable as exc:
                unavailable.add(name)
                fail(f"{name} not computed: {exc}")
            except ValueError as exc:  # wrong reference size, image too small for the metric
                raise InputError(f"{item.path}: {exc}") from None
        if {"niqe", "brisque"} & values.keys():
            _note_residue(item.path, image)
        undefined = [name for name, value in values.items() if math.isnan(value)]
        if undefined:
            note(f"{item.path}: {', '.join(undefined)} undefined (nan): the image is too flat for "
                 "the fits (no values on one side of the local mean); the MATLAB releases give "
                 "nan too")  # fmt: skip
        if args.json:
            record = {"image": str(item.path), **{k: _json(v) for k, v in values.items()}}
            line = json.dumps(record)
        else:
            line = "  ".join([str(item.path), *(f"{k}={_format(v)}" for k, v in values.items())])
        tqdm.write(line, file=sys.stdout)  # above the progress bar

    failures = for_each_input(files, score)
    return 1 if failures or missing or unavailable else 0


def _note_residue(path: Path, image: np.ndarray) -> None:
    from srflow.metrics.niqe import residue_share

    share = residue_share(image)
    if share > RESIDUE_NOTE_SHARE:
        note(
            f"{path}: {share:.1%} of the pixels are flat neighbourhoods of a nonzero gray level;"
            " NIQE and BRISQUE there may differ from the MATLAB releases (docs/metrics.md, the"
            " rounding residue of flat neighbourhoods)"
        )


def _json(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)
