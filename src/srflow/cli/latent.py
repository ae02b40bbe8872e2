"""Latent-space commands: ``srflow encode``, ``decode``, ``resample`` (``explore``),
``transfer``, ``normalize`` and ``restore`` (SRFlow paper, Sec. 4).

Examples::

    srflow encode photo.png -o photo.safetensors            # latents with the photo's own LR
    srflow decode photo.safetensors -o again.png             # the photo back
    srflow resample lr.png -o sr.png -t 0.8 --save-latents z.safetensors
    srflow resample z.safetensors --mask sky.png --seed 3 -o sr2.png   # redraw the sky only
    srflow transfer texture.png lr.png -o styled.png         # LR-consistent style transfer
    srflow normalize edited.png --mode local --mask region.png -o blended.png
    srflow restore noisy.png -o restored.png

Exit status: 0 done; 2 a problem with an option or a file (one ``error:`` line, nothing
written); 3 the output was written but the inverse flow diverged in it (a ``warning:`` line
says how much).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from torch import Tensor

from srflow.cli import latent_io as io
from srflow.cli.common import CliError, seed_arg
from srflow.cli.divergence import DivergenceLog
from srflow.latent import (
    MODES,
    LatentCode,
    decode_code,
    encode_image,
    normalize_code,
    resample_code,
    restore,
    sample_code,
    style_transfer,
)
from srflow.latent.code import as_batch, pad_lr
from srflow.latent.content import feathered_lr
from srflow.latent.restore import DEFAULT_RESTORE_TEMPERATURE
from srflow.models.contract import FlowSR

IMAGE_OR_LATENTS = "an image file, or a latents file (.safetensors) from another command"


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register the latent-space commands."""
    p = subparsers.add_parser("encode", help="encode an HR image into its latents")
    p.add_argument("image", type=Path, help="HR image")
    p.add_argument("--lr", type=Path, help="its LR image (default: its own bicubic downscale)")
    p.add_argument("-o", "--output", type=Path, required=True, help="latents file (.safetensors)")
    io.add_common(p, draws=False)
    p.set_defaults(run=run_encode)

    p = subparsers.add_parser("decode", help="decode a latents file into an image")
    p.add_argument("latents", type=Path, help="latents file (.safetensors)")
    p.add_argument("--lr", type=Path, help="LR image to decode with (default: the stored LR)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output image")
    io.add_common(p, draws=False)
    p.set_defaults(run=run_decode)

    for name, help_text in (("resample", "sample an SR, or redraw a masked region of one"),
                            ("explore", "the same as resample")):  # fmt: skip
        p = subparsers.add_parser(name, help=help_text)
        p.add_argument("input", type=Path, help=f"LR image to sample from, or {IMAGE_OR_LATENTS}")
        _outputs(p)
        p.add_argument("--mask", type=Path, help="mask image (white = redraw); default: all")
        p.add_argument("--base-seed", type=seed_arg, default=0,
                       help="seed of the base sample when the input is an LR image")  # fmt: skip
        io.add_temperatures(p, 0.8)
        io.add_common(p)
        p.set_defaults(run=run_resample)

    p = subparsers.add_parser("transfer", help="LR-consistent style transfer (Sec. 4.2)")
    p.add_argument("source", type=Path, help="HR image whose latents (style) are used")
    p.add_argument("target", type=Path, help="LR image to super-resolve")
    _outputs(p)
    p.add_argument("--mask", type=Path, help="mask image (white = use the source's latents)")
    io.add_temperatures(p, 0.8)
    io.add_common(p)
    p.set_defaults(run=run_transfer)

    p = subparsers.add_parser("normalize", help="latent space normalization (Sec. 4.3, 4.4)")
    p.add_argument("input", type=Path, help=f"HR {IMAGE_OR_LATENTS}")
    _outputs(p)
    p.add_argument("--mode", choices=MODES, default="local", help="statistics to redraw")
    p.add_argument("--mask", type=Path, help="mask image (white = normalize)")
    p.add_argument("--lr", type=Path, help="LR to encode an image with (default: its own)")
    p.add_argument("--feather", type=float, default=0.0, metavar="PIXELS",
                   help="content transfer with --lr and --mask: keep the pasted content and "
                        "blend its border over a Gaussian of this many LR pixels (1 is a good "
                        "start; docs/latent-tools.md)")  # fmt: skip
    io.add_temperatures(p, 0.8)
    io.add_common(p)
    p.set_defaults(run=run_normalize)

    p = subparsers.add_parser("restore", help="remove noise or JPEG artifacts (Sec. 4.5)")
    p.add_argument("input", type=Path, help="degraded image")
    p.add_argument("-o", "--output", type=Path, required=True, help="output image")
    io.add_temperatures(p, DEFAULT_RESTORE_TEMPERATURE)
    io.add_common(p)
    p.set_defaults(run=run_restore)


def _outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True, help="output image")
    p.add_argument("--save-latents", type=Path, metavar="FILE",
                   help="also save the result's latents (.safetensors)")  # fmt: skip


def _write_decoded(path: Path, model: FlowSR, code: LatentCode) -> int:
    """Decode ``code`` into the image file ``path``; the exit status (3: values diverged)."""
    log = DivergenceLog()
    with log.catch():
        image = decode_code(model, code)[0]
    io.write_rgb(path, image)
    log.report(path, log.take())
    return log.status(0)


def _guard(path: Path, exc: ValueError) -> CliError:
    text = str(exc)
    return CliError(text if str(path) in text else f"{path}: {text}")


def run_encode(args: argparse.Namespace) -> int:
    """``srflow encode``."""
    model = io.load(args)
    hr = io.read_rgb(args.image, model)
    lr = io.read_rgb(args.lr, model) if args.lr else None
    try:
        code = encode_image(model, hr, lr)
    except ValueError as exc:
        raise _guard(args.lr or args.image, exc) from None
    io.write_code(args.output, code)
    return 0


def run_decode(args: argparse.Namespace) -> int:
    """``srflow decode``."""
    model = io.load(args)
    code = io.read_code(args.latents, model)
    if args.lr:
        lr = pad_lr(model, io.read_rgb(args.lr, model))
        if lr.shape != code.lr.shape:
            found, stored = lr.shape, code.lr.shape
            raise CliError(f"{args.lr}: an LR of {found[3]}x{found[2]} (padded) does not fit "
                           f"the latents (made for {stored[3]}x{stored[2]})")  # fmt: skip
        code = replace(code, lr=lr)
    return _write_decoded(args.output, model, code)


def run_resample(args: argparse.Namespace) -> int:
    """``srflow resample`` / ``srflow explore``."""
    model = io.load(args)
    temps = io.temperatures(args)
    try:
        if io.is_latents_file(args.input):
            code = io.read_code(args.input, model)
        else:
            lr = io.read_rgb(args.input, model)
            code = sample_code(model, lr, temps, io.generator(args.base_seed))
        mask = io.read_mask_for(args.mask, code.image_size, code.lr.device)
        code = resample_code(model, code, temps, io.generator(args.seed), mask)
    except ValueError as exc:
        raise _guard(args.input, exc) from None
    status = _write_decoded(args.output, model, code)
    io.write_code(args.save_latents, code)
    return status


def _fit_source(source: Tensor, want: tuple[int, int], path: Path) -> Tensor:
    """Center-crop the source HR image to ``want`` (error if it is smaller)."""
    h, w = source.shape[1:]
    if h < want[0] or w < want[1]:
        raise CliError(f"{path}: the source is {w}x{h}, smaller than the {want[1]}x{want[0]} "
                       "super-resolution of the target")  # fmt: skip
    top, left = (h - want[0]) // 2, (w - want[1]) // 2
    return source[:, top : top + want[0], left : left + want[1]]


def run_transfer(args: argparse.Namespace) -> int:
    """``srflow transfer``."""
    model = io.load(args)
    source = io.read_rgb(args.source, model)
    target = io.read_rgb(args.target, model)
    s = model.config.scale
    want = (target.shape[1] * s, target.shape[2] * s)
    source = _fit_source(source, want, args.source)
    mask = io.read_mask_for(args.mask, want, target.device)
    try:
        code = style_transfer(model, source, target, mask=mask,
                              temperature=io.temperatures(args),
                              generator=io.generator(args.seed))  # fmt: skip
    except ValueError as exc:
        raise _guard(args.source, exc) from None
    status = _write_decoded(args.output, model, code)
    io.write_code(args.save_latents, code)
    return status


def run_normalize(args: argparse.Namespace) -> int:
    """``srflow normalize``."""
    model = io.load(args)
    try:
        if io.is_latents_file(args.input):
            if args.lr:
                raise CliError("--lr applies to an image input (a latents file has its LR)")
            code, hr, lr = io.read_code(args.input, model), None, None
        else:
            hr = io.read_rgb(args.input, model)
            lr = io.read_rgb(args.lr, model) if args.lr else None
            code = encode_image(model, hr, lr)
        mask = io.read_mask_for(args.mask, code.image_size, code.lr.device)
        if args.feather:
            if args.feather < 0 or hr is None or lr is None or mask is None:
                raise CliError("--feather takes a positive width, with --lr and --mask")
            feathered, mask = feathered_lr(model, hr, lr, mask, args.feather)
            code = encode_image(model, hr, feathered)
        code = normalize_code(model, code, args.mode, io.temperatures(args),
                              io.generator(args.seed), mask)  # fmt: skip
    except ValueError as exc:
        raise _guard(args.lr or args.input, exc) from None
    status = _write_decoded(args.output, model, code)
    io.write_code(args.save_latents, code)
    return status


def run_restore(args: argparse.Namespace) -> int:
    """``srflow restore``."""
    model = io.load(args)
    image = as_batch(io.read_rgb(args.input, model))
    log = DivergenceLog()
    try:
        with log.catch():
            out = restore(model, image, temperature=io.temperatures(args),
                          generator=io.generator(args.seed))  # fmt: skip
    except ValueError as exc:
        raise _guard(args.input, exc) from None
    io.write_rgb(args.output, out[0])
    log.report(args.output, log.take())
    return log.status(0)
