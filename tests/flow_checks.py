"""Whole-model property checks shared by the tests of every flow configuration."""

from __future__ import annotations

import torch
from torch.func import jacrev

from srflow.flows.distributions import gaussian_log_prob
from srflow.models.srflow import SRFlow


def assert_log_prob_is_change_of_variables(
    model: SRFlow, hr: torch.Tensor, lr: torch.Tensor
) -> None:
    """log p(hr) = log|det d latents / d hr| + log N(latents; 0, I), with the autograd
    Jacobian of the encoder (one float64 image, ``(1, 3, H, W)``)."""
    conds = model.features(lr)
    shape = hr.shape

    def to_latents(v: torch.Tensor) -> torch.Tensor:
        latents = model.flow.encode(v.view(shape), conds).output
        return torch.cat([z.reshape(-1) for z in latents])

    jac = jacrev(to_latents)(hr.reshape(-1))
    enc = model.encode(hr, lr)
    flat = torch.cat([z.reshape(1, -1) for z in enc.latents], dim=1)
    expected = torch.linalg.slogdet(jac)[1] + gaussian_log_prob(flat)
    torch.testing.assert_close(enc.log_prob, expected, atol=1e-8, rtol=0)


def assert_each_close(
    ours: list[torch.Tensor], refs: list[torch.Tensor], **tolerance: float
) -> None:
    """``assert_close`` over two equally long lists of tensors (latents per level, ...)."""
    assert len(ours) == len(refs), (len(ours), len(refs))
    for mine, ref in zip(ours, refs, strict=True):
        torch.testing.assert_close(mine, ref, **tolerance)


def assert_float64_vectors(model64: SRFlow, io: dict, **logdet_tolerance: float) -> None:
    """The float64 part of an SRFlow-layout vector folder (``io["f64"]``): encode latents, NLL
    and log-det, the reconstruction (and the HR itself) and the fixed-latent samples, at the
    vectors' float64 tolerance ``atol=1e-10`` (the log-det at ``logdet_tolerance``)."""
    f64 = {"atol": 1e-10, "rtol": 0.0}
    ref = io["f64"]
    hr, lr = io["hr"].double(), io["lr"].double()
    enc = model64.encode(hr, lr)
    assert_each_close(enc.latents, ref["encode"]["epses"], **f64)
    torch.testing.assert_close(enc.original_nll, ref["encode"]["nll"], **f64)
    torch.testing.assert_close(enc.original_logdet, ref["encode"]["logdet"], **logdet_tolerance)
    sr, _ = model64.decode(lr, ref["encode"]["epses"])
    torch.testing.assert_close(sr, ref["recon"]["sr"], **f64)
    torch.testing.assert_close(sr, hr, atol=1e-12, rtol=0)
    unit = io["sample_fixed"]["unit_epses"]
    for j, heat in enumerate(io["sample_fixed"]["heats"].tolist()):
        sr, _ = model64.decode(lr, [e.double() * heat for e in unit])
        torch.testing.assert_close(sr, ref["sample_fixed"]["sr"][j], **f64)
