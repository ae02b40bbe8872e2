"""Equivalence with the original implementation on the mini4x reference vectors."""

from __future__ import annotations

import pytest
import torch

from conftest import VECTORS, need_path
from srflow.checkpoints import load_original as load_official
from srflow.families.options import config_from_official_options
from srflow.families.original_sampling import original_seeded_latents

F32 = {"atol": 5e-5, "rtol": 1e-4}


@pytest.fixture(scope="module")
def mini():
    folder = need_path(VECTORS / "mini4x")
    io = torch.load(folder / "io.pt")
    model = load_official(folder / "state_dict.pt")
    return model, io


def test_config_from_options_equals_detected(mini) -> None:
    import json

    model, _ = mini
    opt = json.loads((VECTORS / "mini4x" / "config.json").read_text())["parsed_official_opt"]
    assert config_from_official_options(opt) == model.config


def test_layer_order(mini) -> None:
    model, io = mini
    names = {"SqueezeLayer": "squeeze", "FlowStep:noCoupling": "transition",
             "FlowStep:CondAffineSeparatedAndCond": "step"}  # fmt: skip
    expected = [names.get(t, "split") for t in io["meta"]["layer_types"]]
    assert model.flow.layer_type_names() == expected


@torch.no_grad()
def test_conditioning_and_rrdb_output(mini) -> None:
    model, io = mini
    conds = model.features(io["lr"])
    for cond, name in zip(conds, io["rrdb_level_names"], strict=True):
        torch.testing.assert_close(cond, io["rrdb"][name], **F32)
    torch.testing.assert_close(model.encoder.super_resolve(io["lr"]), io["rrdb"]["out"], **F32)


@torch.no_grad()
def test_encode(mini) -> None:
    model, io = mini
    enc = model.encode(io["hr"], io["lr"])
    for ours, ref in zip(enc.latents, io["encode"]["epses"], strict=True):
        torch.testing.assert_close(ours, ref, **F32)
    torch.testing.assert_close(enc.original_nll, io["encode"]["nll"], atol=1e-4, rtol=0)
    torch.testing.assert_close(enc.original_logdet, io["encode"]["logdet"], atol=0, rtol=2e-6)
    # bits/dim is the per-pixel figure over 3 channels
    torch.testing.assert_close(enc.bits_per_dim, io["encode"]["nll"] / 3, atol=1e-4, rtol=0)


@torch.no_grad()
def test_encode_dequantized_with_seeded_generator(mini) -> None:
    model, io = mini
    ref = io["encode_deq"]
    enc = model.encode(
        io["hr"], io["lr"], dequantize=True, generator=torch.Generator().manual_seed(ref["seed"])
    )
    for ours, theirs in zip(enc.latents, ref["epses"], strict=True):
        torch.testing.assert_close(ours, theirs, **F32)
    torch.testing.assert_close(enc.original_nll, ref["nll"], atol=1e-4, rtol=0)
    torch.testing.assert_close(enc.original_logdet, ref["logdet"], atol=0, rtol=2e-6)


@torch.no_grad()
def test_reconstruction(mini) -> None:
    model, io = mini
    sr, logdet = model.decode(io["lr"], io["encode"]["epses"])
    torch.testing.assert_close(sr, io["recon"]["sr"], **F32)
    torch.testing.assert_close(sr, io["hr"], atol=1e-5, rtol=0)
    torch.testing.assert_close(logdet, io["recon"]["logdet"], atol=0, rtol=2e-6)
    sr_deq, _ = model.decode(io["lr"], io["encode_deq"]["epses"])
    torch.testing.assert_close(sr_deq, io["recon_deq"]["sr"], **F32)


@torch.no_grad()
def test_fixed_latent_samples_at_each_temperature(mini) -> None:
    model, io = mini
    ref = io["sample_fixed"]
    for j in range(len(ref["heats"])):
        sr, logdet = model.decode(io["lr"], ref["epses_per_heat"][j])
        torch.testing.assert_close(sr, ref["sr"][j], **F32)
        torch.testing.assert_close(logdet, ref["logdet"][j], atol=0, rtol=2e-6)


@pytest.mark.parametrize("name", ["heat_0.9", "heat_0.0"])
@torch.no_grad()
def test_seeded_sampling_replay(mini, name: str) -> None:
    model, io = mini
    ref = io["sample_seeded"][name]
    latents = original_seeded_latents(model, io["lr"], ref["heat"], ref["seed"])
    torch.testing.assert_close(latents[-1], ref["z"], atol=0, rtol=0)
    for ours, theirs in zip(latents[:-1], ref["split_eps"], strict=True):
        torch.testing.assert_close(ours, theirs, atol=0, rtol=0)
    sr, _ = model.decode(io["lr"], [*ref["split_eps"], ref["z"]])
    torch.testing.assert_close(sr, ref["sr"], **F32)


@torch.no_grad()
def test_float64(mini) -> None:
    model, io = mini
    model64 = load_official(VECTORS / "mini4x" / "state_dict.pt").double()
    ref = io["f64"]
    hr, lr = io["hr"].double(), io["lr"].double()
    enc = model64.encode(hr, lr)
    for ours, theirs in zip(enc.latents, ref["encode"]["epses"], strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
    torch.testing.assert_close(enc.original_nll, ref["encode"]["nll"], atol=1e-10, rtol=0)
    torch.testing.assert_close(enc.original_logdet, ref["encode"]["logdet"], atol=1e-9, rtol=0)
    sr, logdet = model64.decode(lr, ref["encode"]["epses"])
    torch.testing.assert_close(sr, ref["recon"]["sr"], atol=1e-10, rtol=0)
    torch.testing.assert_close(logdet, ref["recon"]["logdet"], atol=1e-9, rtol=0)
    fixed = io["sample_fixed"]
    for j, heat in enumerate(fixed["heats"].tolist()):
        sr, _ = model64.decode(lr, [u.double() * heat for u in fixed["unit_epses"]])
        torch.testing.assert_close(sr, ref["sample_fixed"]["sr"][j], atol=1e-10, rtol=0)
