"""LR consistency (LR-PSNR) as measured by the NTIRE "Learning the SR space" challenge.

The super-resolved image is downscaled with the MATLAB-compatible bicubic
(:func:`srflow.data.resize.imresize`, uint8 in and out, so each 1-D pass is clipped and
rounded) and compared with the LR image by PSNR on RGB, data range 255, MSE over all pixels and
channels, no border crop. A perfectly consistent SR gives ``math.inf``.
"""

from __future__ import annotations

import numpy as np
import torch

from srflow.data.image_io import to_uint8_round
from srflow.data.resize import imresize
from srflow.metrics.psnr_ssim import psnr

__all__ = ["lr_psnr", "lr_psnr_float", "lr_psnr_of_sample", "lr_psnr_vs_gt"]


def _check_uint8(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"{name} must be uint8 (H, W, C), got {image.dtype} {image.shape}")
    return image


def lr_psnr(sr_uint8_hwc: np.ndarray, lr_uint8_hwc: np.ndarray, scale: int) -> float:
    """PSNR between ``imresize(SR, 1/scale)`` and the given LR image (challenge protocol).

    Args:
        sr_uint8_hwc: Super-resolved image, uint8 ``(H, W, 3)``.
        lr_uint8_hwc: Low-resolution input, uint8 ``(H/scale, W/scale, 3)``.
        scale: The super-resolution factor (e.g. 4 or 8).

    Returns:
        The LR-PSNR in dB; ``math.inf`` when the downscaled SR equals the LR exactly.

    Raises:
        ValueError: On wrong dtypes or when the downscaled SR and the LR differ in shape.
    """
    sr = _check_uint8(sr_uint8_hwc, "sr")
    lr = _check_uint8(lr_uint8_hwc, "lr")
    down = imresize(sr, scale=1.0 / scale)
    if down.shape != lr.shape:
        raise ValueError(f"SR {sr.shape} downscaled by {scale} is {down.shape}, LR is {lr.shape}")
    return psnr(down, lr)


def lr_psnr_vs_gt(sr: np.ndarray, gt: np.ndarray, scale: int) -> float:
    """LR-PSNR as the NTIRE kit computes it: ``PSNR(imresize(SR, 1/s), imresize(GT, 1/s))``.

    The kit's LR reference is its own bicubic of the ground truth, not the provided LR file.
    As in the kit, SR is cropped top-left to the GT size; cropping the GT to multiples of 8
    (the kit does this for both tracks) is the caller's job.

    Args:
        sr: Super-resolved image, uint8 ``(H', W', 3)`` with ``H' >= H`` and ``W' >= W``.
        gt: Ground-truth HR image, uint8 ``(H, W, 3)``.
        scale: The super-resolution factor.

    Returns:
        The LR-PSNR in dB (``math.inf`` if both downscaled images are identical).

    Raises:
        ValueError: On wrong dtypes or an SR smaller than the GT.
    """
    sr = _check_uint8(sr, "sr")
    gt = _check_uint8(gt, "gt")
    if sr.shape[0] < gt.shape[0] or sr.shape[1] < gt.shape[1] or sr.shape[2] != gt.shape[2]:
        raise ValueError(f"SR {sr.shape} is smaller than GT {gt.shape}")
    sr = sr[: gt.shape[0], : gt.shape[1]]
    return psnr(imresize(sr, scale=1.0 / scale), imresize(gt, scale=1.0 / scale))


def lr_psnr_float(sr: np.ndarray, lr_reference: np.ndarray, scale: int) -> float:
    """HCFlow's "bicHR" PSNR: ``PSNR(imresize(SR / 255, 1/s), lr_reference)`` on floats.

    Args:
        sr: Super-resolved image, uint8 ``(H, W, 3)`` (rounded by the caller, as HCFlow).
        lr_reference: ``imresize(GT / 255, 1/s)``, float ``(H/s, W/s, 3)`` (no rounding).
        scale: The super-resolution factor.

    Returns:
        The PSNR in dB with peak 1, no crop, RGB.
    """
    sr = _check_uint8(sr, "sr")
    down = np.asarray(imresize(sr.astype(np.float64) / 255.0, scale=1.0 / scale))
    if down.shape != lr_reference.shape:
        raise ValueError(f"SR {sr.shape} downscaled by {scale} is {down.shape}, "
                         f"reference is {lr_reference.shape}")  # fmt: skip
    return psnr(down, lr_reference, data_range=1.0)


def lr_psnr_of_sample(sr: torch.Tensor, lr: torch.Tensor, scale: int) -> float:
    """:func:`lr_psnr` of float images as a sampler returns them: both are rounded to 8 bits
    (as they would be written to PNG) first.

    Args:
        sr: the super-resolved image, float ``(3, H, W)`` in ``[0, 1]``.
        lr: its LR input, float ``(3, H / scale, W / scale)`` in ``[0, 1]``.
        scale: the super-resolution factor.
    """
    def hwc(image: torch.Tensor) -> np.ndarray:
        return np.asarray(to_uint8_round(image.detach().float().cpu().permute(1, 2, 0)))

    return lr_psnr(hwc(sr), hwc(lr), scale)
