"""HCFlow (SR 4x, rescaling 4x) against the original implementation's vectors.

Weights rebuilt from the recipe (``synth_weights_hcflow.py``), renamed by the HCFlow key
mapping and loaded strictly; tolerances from the vectors' README.
"""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import SPEC, VECTORS, need_path
from flow_checks import assert_each_close
from reference_weights import recipe_module
from srflow.config.hcflow import HCFlowConfig
from srflow.families.hcflow_keys import to_ours
from srflow.models.hcflow import HCFlow

CONFIGS = {
    "full_HCFlow_SR4X": HCFlowConfig(),
    "full_HCFlow_Rescaling4X": HCFlowConfig(
        trunk_steps=8, conditional_steps=6, rrdb_blocks=(2, 1), rrdb_growth=16, task="rescale"
    ),
}
F32 = {"atol": 5e-5, "rtol": 1e-4}
F64 = {"atol": 1e-10, "rtol": 0.0}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def reference(request: pytest.FixtureRequest) -> tuple[str, HCFlow, dict]:
    folder = request.param
    recipe = recipe_module("synth_weights_hcflow")
    keys = recipe.read_keys_tsv(
        need_path(SPEC / "keys" / f"keys_{folder.removeprefix('full_')}.tsv")
    )
    sd = recipe.synth_state_dict(keys)
    sd.update(torch.load(need_path(VECTORS / folder / "actnorm_params.pt")))
    config = CONFIGS[folder]
    model = HCFlow(config)
    model.load_state_dict(to_ours(sd, fcn=config.task == "sr"), strict=True)
    return folder, model.eval(), torch.load(VECTORS / folder / "io.pt")


@torch.no_grad()
def test_forward(reference) -> None:
    folder, model, io = reference
    assert sum(p.numel() for p in model.parameters()) == io["meta"]["num_params"]
    forward = io["forward"]
    sr = model.config.task == "sr"
    enc = model.encode(io["hr"], io["lr"], noise=forward["u"] if sr else None)
    torch.testing.assert_close(enc.y, forward["y"], **F32)
    assert torch.equal(torch.round(enc.lr_quant * 255), torch.round(forward["lr_quant"] * 255))
    assert_each_close(enc.latents, forward["eps" if sr else "z"], **F32)
    if sr:
        assert enc.dequantization_logdet == pytest.approx(forward["logdet_init"], rel=1e-12)
        torch.testing.assert_close(enc.logdet_trunk, forward["logdet_trunk"], atol=0, rtol=2e-6)
        assert_each_close(enc.prior_log_prob, forward["logp_prior"], atol=2e-3, rtol=2e-6)
        torch.testing.assert_close(enc.logdet, forward["logdet_flow"], atol=0, rtol=2e-6)
        torch.testing.assert_close(enc.lr_log_prob, forward["logp_lr"], atol=0, rtol=1e-6)
        torch.testing.assert_close(enc.objective, forward["objective"], atol=0, rtol=1e-6)
        torch.testing.assert_close(enc.nll, forward["nll_per_sample"], atol=2e-3, rtol=0)


@torch.no_grad()
def test_reconstruction_and_fixed_samples(reference) -> None:
    folder, model, io = reference
    forward = io["forward"]
    latents = forward["eps"] if model.config.task == "sr" else forward["z"]
    hr, _ = model.decode(forward["y"], latents)
    torch.testing.assert_close(hr, io["recon"]["sr_unclamped"], **F32)
    fixed = io["sample_fixed"]
    for j, heat in enumerate(fixed["heats"].tolist()):
        hr, _ = model.decode(fixed["lr_in"], [u * heat for u in fixed["unit_eps"]])
        torch.testing.assert_close(hr, fixed["sr_unclamped"][j], **F32)
        torch.testing.assert_close(hr.clamp(0, 1), fixed["sr"][j], **F32)


@torch.no_grad()
def test_seeded_sampling_replays_the_original(reference) -> None:
    """``torch.manual_seed(seed)`` then the original sampler: noise coarsest level first."""
    folder, model, io = reference
    lr = io["sample_fixed"]["lr_in"]
    for seeded in io["sample_seeded"].values():
        generator = torch.Generator().manual_seed(int(seeded["seed"]))
        sr = model.sample(lr, float(seeded["heat"]), 1, generator)[0]
        torch.testing.assert_close(sr, seeded["sr"], **F32)


@torch.no_grad()
def test_float64(reference) -> None:
    folder, model, io = reference
    model64 = copy.deepcopy(model).double()
    ref = io["f64"]
    sr = model.config.task == "sr"
    noise = io["forward"]["u"].double() if sr else None
    enc = model64.encode(io["hr"].double(), io["lr"].double(), noise=noise)
    torch.testing.assert_close(enc.y, ref["forward"]["y"], **F64)
    assert_each_close(enc.latents, ref["forward"]["eps" if sr else "z"], **F64)
    hr, _ = model64.decode(ref["forward"]["y"], ref["forward"]["eps" if sr else "z"])
    torch.testing.assert_close(hr, ref["recon"]["sr_unclamped"], **F64)
    fixed = io["sample_fixed"]
    # rescaling samples start from the float64 run's own quantized LR (k / 255 in float64)
    lr_in = fixed["lr_in"].double() if sr else ref["forward"]["lr_quant"]
    for j, heat in enumerate(fixed["heats"].tolist()):
        hr, _ = model64.decode(lr_in, [u.double() * heat for u in fixed["unit_eps"]])
        torch.testing.assert_close(hr, ref["sample_fixed"]["sr_unclamped"][j], **F64)
