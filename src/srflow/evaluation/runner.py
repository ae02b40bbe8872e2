"""Evaluate a model on a set of images: bicubic and SRFlow at every temperature, all metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from srflow.data.resize import imresize
from srflow.evaluation.config import EvalConfig
from srflow.evaluation.external import ExternalMethod
from srflow.evaluation.images import EvalImage
from srflow.evaluation.parts import result_entry
from srflow.evaluation.results import EvalResult, MethodResult
from srflow.evaluation.sampling import ModelSampler, bicubic_upscale
from srflow.evaluation.scoring import MetricSuite, outputs_as_uint8
from srflow.families import family_of
from srflow.models.contract import FlowSR

__all__ = ["GALLERY_SAMPLES", "SampleSink", "evaluate"]

logger = logging.getLogger(__name__)
GALLERY_SAMPLES = 4
# called with (image, method row without metrics, uint8 outputs (N, H, W, 3))
SampleSink = Callable[[EvalImage, MethodResult, np.ndarray], None]


def evaluate(
    model: FlowSR | None,
    images: Sequence[EvalImage],
    config: EvalConfig,
    *,
    model_name: str = "model",
    progress: Callable[[str], None] | None = None,
    sample_sink: SampleSink | None = None,
    external: Sequence[ExternalMethod] = (),
    scale: int | None = None,
    gallery: bool = True,
    finished: Mapping[str, list[MethodResult]] | None = None,
    on_image: Callable[[EvalImage, list[MethodResult]], None] | None = None,
) -> EvalResult:
    """Score bicubic and the model's samples on every image.

    For each image: the bicubic upscale of the LR (one deterministic output), then the model at
    every temperature of ``config.all_temperatures`` (0 included, drawn once; others
    ``config.samples`` times, one encoder pass per image). Each output set is scored by a
    :class:`MetricSuite`; LR-PSNR compares with ``imresize(GT, 1/s)`` or the model's LR input
    (``config.conventions.lr_psnr_reference``).

    Other methods' outputs (``external``, :mod:`srflow.evaluation.external`) are scored the
    same way, one row per image and method, after the model's rows.

    Args:
        model: The flow model, any family (evaluated on its own device); ``None``: only
            bicubic and ``external`` (then ``scale`` is required).
        images: Ground truths and LR inputs (:func:`srflow.evaluation.images.load_eval_images`).
        config: Sampling settings and metric conventions.
        model_name: Name shown in reports.
        progress: Called with a short message after each image and method.
        sample_sink: Called with every output set as uint8 (e.g. to save the images).
        external: Other methods' samples for the same images.
        scale: The super-resolution factor when there is no model.
        gallery: Keep the first image's outputs for the sample grid (a worker of a
            distributed run that does not hold the job's first image keeps none).
        finished: Rows of images already scored (by name): taken as they are, not redone
            (a resumed run; the gallery then lacks their outputs).
        on_image: Called with each image's rows once they are all scored (e.g. to save
            them, so that a resumed run can skip the image).

    Returns:
        The per-image rows, the list of unavailable metrics and a gallery of the first image.
    """
    start = time.perf_counter()
    sampler = ModelSampler(model, config.batch_size) if model is not None else None
    if model is not None:
        scale = model.config.scale
    if scale is None:
        raise ValueError("evaluate: give a model or the scale")
    family = family_of(model.config).name if model is not None else ""
    device = sampler.device if sampler is not None else torch.device("cpu")
    suite = MetricSuite(config, device=device)
    result = EvalResult(
        model=model_name,
        scale=scale,
        config=config,
        images=[],
        rows=[],
        unavailable=suite.unavailable,
        device=str(device),
    )
    mode = config.conventions.uint8
    for index, image in enumerate(images):
        result.images.append(result_entry(image))
        if finished is not None and image.name in finished:
            result.rows += finished[image.name]
            continue
        first = index == 0 and gallery
        image_rows: list[MethodResult] = []
        if config.conventions.lr_psnr_reference == "gt":
            lr_reference = np.asarray(imresize(image.hr, 1.0 / scale))
        elif config.conventions.lr_psnr_reference == "gt_float":
            lr_reference = np.asarray(imresize(image.hr.astype(np.float64) / 255.0, 1.0 / scale))
        else:
            lr_reference = image.lr
        outputs: list[tuple[str, float | None, np.ndarray]] = [
            ("bicubic", None, bicubic_upscale(image.lr, scale)[None])
        ]
        if sampler is not None:
            draws = sampler.sample(image.lr, config.all_temperatures, config.samples, config.seed)
            outputs += [("srflow", t, samples) for t, samples in draws.items()]
        outputs += [(method.name, None, method.samples[image.name]) for method in external]
        if first:
            result.gallery["ground truth"] = [image.hr]
        for method, temperature, samples in outputs:
            scores = suite.score(image.hr, lr_reference, scale, samples)
            row = MethodResult(
                image.name, method, temperature, len(samples), scores.metrics, scores.per_sample,
                family,
            )  # fmt: skip
            image_rows.append(row)
            if first or sample_sink is not None:
                as_uint8 = outputs_as_uint8(samples, mode)
                if first:
                    result.gallery[row.label] = list(as_uint8[:GALLERY_SAMPLES])
                if sample_sink is not None:
                    sample_sink(image, row, as_uint8)
            if progress is not None:
                progress(f"{image.name}: {row.label}")
        result.rows += image_rows
        if on_image is not None:
            on_image(image, image_rows)
    result.seconds = time.perf_counter() - start
    logger.info("evaluated %d image(s) in %.1f s", len(images), result.seconds)
    return result
