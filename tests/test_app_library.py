"""Library functions added for the explorer app: sample codes, LR-PSNR of a sample, the
pixel-std map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srflow.data.resize import imresize
from srflow.inference.pipeline import SuperResolver
from srflow.latent import decode_code
from srflow.metrics.consistency import lr_psnr_of_sample
from srflow.metrics.diversity import pixel_std_diversity, pixel_std_map
from test_inference_api import tiny_model


@pytest.fixture(scope="module")
def resolver() -> SuperResolver:
    return SuperResolver(tiny_model())


def test_sample_codes_decode_to_the_samples(resolver: SuperResolver) -> None:
    rgb = torch.rand(3, 10, 13)  # padded to the size multiple, cropped back
    images = next(resolver.sample_temperatures(rgb, [0.7], 3, seed=5))
    codes = resolver.sample_codes(rgb, 0.7, 3, seed=5)
    assert len(codes) == 3 and codes[0].image_size == (40, 52)
    for image, code in zip(images, codes, strict=True):
        decoded = decode_code(resolver.model, code)[0].clamp(0, 1)
        assert torch.allclose(decoded, image, atol=1e-5)


def test_sample_codes_refuse_a_tiny_image(resolver: SuperResolver) -> None:
    with pytest.raises(ValueError, match="at least"):
        resolver.sample_codes(torch.rand(3, 1, 5))


def test_lr_psnr_of_a_consistent_sample_is_infinite() -> None:
    sr = torch.rand(3, 16, 16)
    sr = torch.round(sr * 255) / 255
    down = imresize((sr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), scale=0.25)
    lr = torch.from_numpy(down).permute(2, 0, 1).float() / 255
    assert lr_psnr_of_sample(sr, lr, 4) == math.inf
    assert lr_psnr_of_sample(sr, 1 - lr, 4) < 20


def test_pixel_std_map_averages_to_the_diversity() -> None:
    samples = np.random.default_rng(0).random((4, 5, 6, 3))
    std = pixel_std_map(samples)
    assert std.shape == (5, 6)
    assert math.isclose(std.mean(), pixel_std_diversity(samples), rel_tol=1e-12)
    assert not pixel_std_map(samples[:1]).any()
    with pytest.raises(ValueError):
        pixel_std_map(np.zeros((0, 2, 2)))
