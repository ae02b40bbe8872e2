"""MATLAB-compatible bicubic ``imresize`` (clean-room, from the protocol in evaluation.md §6).

The NTIRE "Learning the SR space" kit, SRFlow and its successors make LR images and measure the
LR-PSNR with a Python port of MATLAB's ``imresize(..., 'bicubic')``. This module reproduces it
exactly:

* Keys cubic kernel with ``a = -0.5`` (support 2); when downscaling (scale < 1) the kernel is
  stretched for antialiasing: ``h(x) = s * k(s * x)`` with support ``2 / s``.
* Output size ``ceil(scale * in)`` per axis (or the given ``output_shape``; the per-axis scale is
  then ``out / in``).
* MATLAB sample positions: output ``x`` (1-based) maps to input ``u = x / s + 0.5 * (1 - 1 / s)``;
  ``ceil(width) + 2`` taps from ``floor(u - width / 2)``; every weight row normalised to sum 1.
* Half-sample symmetric boundary (``numpy.pad(mode='symmetric')``, periodic beyond ``2n``).
* Separable 1-D passes in ascending order of scale; with equal scales height first.
* Computed in float64. uint8 input: after **each** pass clip to [0, 255], round half to even
  and cast to uint8 (the intermediate image is quantised). Float input: no clip, no rounding.

Each pass is a matmul with a dense ``(out, in)`` weight matrix in which the folded boundary
taps are accumulated; with uint8 data every partial sum is an exact dyadic rational for the
integer factors 1/2, 1/4, 1/8, so the result is bit-exact regardless of summation order.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["imresize", "resize_weights"]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (zero outside |x| <= 2)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1.0)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1.0) & (ax <= 2.0))
    return near + far


def resize_weights(in_size: int, out_size: int, scale: float) -> np.ndarray:
    """Dense float64 ``(out_size, in_size)`` matrix of one MATLAB bicubic 1-D pass.

    Args:
        in_size: Input length along the axis.
        out_size: Output length along the axis.
        scale: Output/input scale factor used for the sample positions and antialiasing.

    Returns:
        The weight matrix; row ``i`` holds the (boundary-folded) weights of output ``i``.
    """
    width = 4.0 / scale if scale < 1.0 else 4.0
    positions = np.arange(1, out_size + 1, dtype=np.float64)
    centres = positions / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(centres - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    distance = centres[:, None] - indices
    raw = scale * _cubic(scale * distance) if scale < 1.0 else _cubic(distance)
    raw = raw / raw.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_size), np.arange(in_size)[::-1]])
    folded = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_size)]
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.repeat(np.arange(out_size), taps)
    np.add.at(matrix, (rows, folded.ravel()), raw.ravel())
    return matrix


def _plan(
    in_hw: tuple[int, int],
    scale: float | None,
    output_shape: tuple[int, int] | None,
) -> list[tuple[int, int, float]]:
    """The 1-D passes ``(axis, out_size, scale)`` in processing order (0 = height)."""
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize: give exactly one of scale and output_shape")
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"imresize: scale must be positive, got {scale}")
        scales = [float(scale), float(scale)]
        sizes = [int(math.ceil(scale * n)) for n in in_hw]
    else:
        sizes = [int(n) for n in output_shape]  # type: ignore[union-attr]
        if len(sizes) != 2 or min(sizes) < 1:
            raise ValueError(f"imresize: output_shape must be two positive ints, got {sizes}")
        scales = [out / n for out, n in zip(sizes, in_hw, strict=True)]
    if min(in_hw) < 1:
        raise ValueError(f"imresize: empty input of size {in_hw}")
    order = sorted(range(2), key=lambda axis: (scales[axis], axis))
    return [(axis, sizes[axis], scales[axis]) for axis in order]


def _quantise_np(x: np.ndarray) -> np.ndarray:
    return np.around(np.clip(x, 0.0, 255.0)).astype(np.uint8)


def _resize_numpy(
    image: np.ndarray, scale: float | None, output_shape: tuple[int, int] | None
) -> np.ndarray:
    if image.ndim not in (2, 3):
        raise ValueError(f"imresize: numpy input must be HW or HWC, got shape {image.shape}")
    is_uint8 = image.dtype == np.uint8
    if not (is_uint8 or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"imresize: numpy input must be uint8 or float, got {image.dtype}")
    out = image
    for axis, size, axis_scale in _plan(image.shape[:2], scale, output_shape):
        weights = resize_weights(out.shape[axis], size, axis_scale)
        moved = np.moveaxis(out.astype(np.float64), axis, 0)
        result = np.moveaxis(np.tensordot(weights, moved, axes=(1, 0)), 0, axis)
        out = _quantise_np(result) if is_uint8 else result
    return out if is_uint8 else out.astype(image.dtype, copy=False)


def _resize_torch(
    image: torch.Tensor,
    scale: float | None,
    output_shape: tuple[int, int] | None,
    quantize: bool,
) -> torch.Tensor:
    if image.dim() not in (3, 4):
        raise ValueError(f"imresize: tensor input must be (C,H,W) or (B,C,H,W), got {image.shape}")
    is_uint8 = image.dtype == torch.uint8
    if not (is_uint8 or image.is_floating_point()):
        raise ValueError(f"imresize: tensor input must be float or uint8, got {image.dtype}")
    out = image.double()
    if quantize and not is_uint8:
        out = torch.round(out.clamp(0.0, 1.0) * 255.0)
    for axis, size, axis_scale in _plan(tuple(image.shape[-2:]), scale, output_shape):
        dim = image.dim() - 2 + axis
        weights = torch.from_numpy(resize_weights(out.shape[dim], size, axis_scale))
        weights = weights.to(out.device)
        moved = out.movedim(dim, -1)
        out = torch.matmul(moved, weights.T).movedim(-1, dim)
        if quantize or is_uint8:
            out = torch.round(out.clamp(0.0, 255.0))  # torch.round: half to even
    if is_uint8:
        return out.to(torch.uint8)
    if quantize:
        out = out / 255.0
    return out.to(image.dtype)


def imresize(
    image: np.ndarray | torch.Tensor,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
    *,
    quantize: bool = False,
) -> np.ndarray | torch.Tensor:
    """MATLAB-compatible bicubic resize (the NTIRE / SRFlow ``imresize`` port, bit-exact).

    Args:
        image: A numpy array ``(H, W)`` or ``(H, W, C)`` of dtype uint8 or float, or a torch
            tensor ``(C, H, W)`` or ``(B, C, H, W)`` of dtype float or uint8.
        scale: Output/input factor applied to both axes (output ``ceil(scale * in)``).
        output_shape: ``(H_out, W_out)`` instead of ``scale``; per-axis scale ``out / in``.
        quantize: Tensors only. For a float tensor holding values in [0, 1], compute exactly as
            the uint8 path would on ``round(clip(x, 0, 1) * 255)`` (clip to [0, 255] and round
            half to even after each 1-D pass) and return the result divided by 255 in the
            input dtype. A uint8 tensor is always quantised this way (result uint8).

    Returns:
        The resized image, same kind (numpy/torch), layout and dtype as the input. uint8 inputs
        are clipped and rounded (half to even) after each pass; float inputs are neither.

    Raises:
        ValueError: On a bad shape/dtype or when not exactly one of scale/output_shape is given.
    """
    if isinstance(image, torch.Tensor):
        return _resize_torch(image, scale, output_shape, quantize)
    if quantize:
        raise ValueError("imresize: quantize applies to tensors only (numpy uint8 is quantised)")
    return _resize_numpy(np.asarray(image), scale, output_shape)
