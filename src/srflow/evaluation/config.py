"""Settings of an evaluation run: sampling, metric conventions, parameter-file locations.

Defaults are the SRFlow paper / NTIRE "Learning the SR space" protocol (``docs/metrics.md``):
SR converted to uint8 by truncation (SRFlow's ``test.py``), PSNR/SSIM on RGB without border
crop, LR-PSNR against the MATLAB bicubic of the ground truth (the challenge kit), 10 samples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = [
    "NO_REFERENCE_METRICS",
    "OPTIONAL_METRICS",
    "UINT8_MODES",
    "LR_PSNR_REFERENCES",
    "EvalConfig",
    "MetricConventions",
    "MetricFiles",
]

UINT8_MODES = ("truncate", "round", "float")
LR_PSNR_REFERENCES = ("gt", "input", "gt_float")
NO_REFERENCE_METRICS = ("niqe", "brisque", "piqe")
OPTIONAL_METRICS = ("lpips", *NO_REFERENCE_METRICS)


@dataclass(frozen=True)
class MetricConventions:
    """Where the papers differ, which convention to use.

    Attributes:
        y_channel: PSNR/SSIM on the BT.601 luma (MATLAB ``rgb2ycbcr``) instead of RGB.
        crop_border: Pixels removed from every side before PSNR/SSIM (0 = none; HCFlow and
            BasicSR use the scale factor).
        uint8: How float SR outputs in [0, 1] become 8-bit: ``truncate`` (SRFlow/SRFlow-DA
            ``test.py``, the images submitted to the challenge), ``round`` (HCFlow, image
            writers), or ``float`` (PSNR/SSIM on the unquantised float output; every other
            metric then uses the rounded image).
        lpips_spatial: LPIPS column = mean of the spatial map (NTIRE kit, ``spatial=True``);
            False: the sum of per-layer means (``lpips`` default, SRFlow's and HCFlow's test
            scripts). The diversity score always uses the spatial maps.
        lr_psnr_reference: ``gt`` compares ``imresize(SR, 1/s)`` with ``imresize(GT, 1/s)``
            (challenge kit); ``input`` compares with the LR image given to the model (SRFlow's
            ``test.py``). Identical when the LR is the MATLAB bicubic of the HR. ``gt_float``:
            HCFlow's "bicHR" PSNR, both uint8 images resized as floats in [0, 1] (no rounding
            after the resize), PSNR with peak 1.
        ssim_matlab: the SSIM column is Wang's MATLAB ``ssim_index.m`` on ``rgb2gray`` of the
            uint8 images (what many papers quote), after the border crop, instead of
            scikit-image's SSIM on RGB (SRFlow's protocol).
        pixel_std_unbiased: the pixel-std diversity with the unbiased (N - 1) standard
            deviation over samples (HCFlow's test script: torch's default) instead of the
            population one (SRFlow's Table 1).
    """

    y_channel: bool = False
    crop_border: int = 0
    uint8: str = "truncate"
    lpips_spatial: bool = True
    lr_psnr_reference: str = "gt"
    pixel_std_unbiased: bool = False
    ssim_matlab: bool = False

    def __post_init__(self) -> None:
        if self.uint8 not in UINT8_MODES:
            raise ValueError(f"uint8 must be one of {UINT8_MODES}, got {self.uint8!r}")
        if self.lr_psnr_reference not in LR_PSNR_REFERENCES:
            raise ValueError(
                f"lr_psnr_reference must be one of {LR_PSNR_REFERENCES}, "
                f"got {self.lr_psnr_reference!r}"
            )
        if self.crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {self.crop_border}")


@dataclass(frozen=True)
class MetricFiles:
    """Explicit parameter-file locations (None: the search order of ``srflow.metrics.weights``)."""

    lpips_backbone: str | os.PathLike[str] | None = None
    lpips_linear: str | os.PathLike[str] | None = None
    niqe_params: str | os.PathLike[str] | None = None
    brisque_model: str | os.PathLike[str] | None = None


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run.

    Attributes:
        temperatures: Latent standard deviations to sample at. Temperature 0 is always
            evaluated (added when missing) and drawn once: all its samples are identical.
        samples: Samples per image and temperature (> 0); the challenge uses 10.
        seed: Seed of the latent noise. Each (image, temperature) starts a fresh CPU generator
            from it, so a temperature's samples do not depend on which others are evaluated.
        batch_size: Samples decoded together.
        conventions: Metric conventions.
        files: Parameter-file locations of the optional metrics.
        skip_metrics: Optional metrics not to compute (names from ``OPTIONAL_METRICS``).
    """

    temperatures: tuple[float, ...] = (0.0, 0.5, 0.8, 0.9, 1.0)
    samples: int = 10
    seed: int = 0
    batch_size: int = 5
    conventions: MetricConventions = field(default_factory=MetricConventions)
    files: MetricFiles = field(default_factory=MetricFiles)
    skip_metrics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if any(t < 0 for t in self.temperatures):
            raise ValueError(f"temperatures must be >= 0, got {self.temperatures}")
        unknown = sorted(set(self.skip_metrics) - set(OPTIONAL_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; optional ones: {OPTIONAL_METRICS}")

    @property
    def all_temperatures(self) -> tuple[float, ...]:
        """Sorted, de-duplicated temperatures including 0 (the reference row)."""
        return tuple(sorted({0.0, *(float(t) for t in self.temperatures)}))


def hcflow_conventions(scale: int) -> MetricConventions:
    """The conventions of HCFlow's ``test_HCFlow.py`` (docs/metrics.md): uint8 by rounding,
    ``scale`` border pixels cropped, LPIPS as the layer mean, float "bicHR" LR-PSNR, unbiased
    pixel std (PSNR/SSIM on RGB; add ``y_channel`` for its Y columns)."""
    return MetricConventions(
        crop_border=scale, uint8="round", lpips_spatial=False, lr_psnr_reference="gt_float",
        pixel_std_unbiased=True,
    )  # fmt: skip
