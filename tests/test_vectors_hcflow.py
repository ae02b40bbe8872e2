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
from srflow.families.hcflow_keys import to_ours
from srflow.models.hcflow import HCFlow
from srflow.models.hcflow_config import HCFlowConfig

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


@torch.no_grad()
def test_rescaling_upscale_from_the_stored_lr(reference) -> None:
    """Rescaling: HR from the 8-bit flow LR (T=0: the means; with the encoded latents) and
    from the bicubic LR (T=0 and unit noise at T=1)."""
    folder, model, io = reference
    if model.config.task != "rescale":
        pytest.skip("rescaling vectors only")
    forward, up, bicubic = io["forward"], io["upscale"], io["upscale_bicubic"]
    zeros = [torch.zeros_like(z) for z in forward["z"]]
    cases = [
        (forward["lr_quant"], zeros, up["T0"]),
        (forward["lr_quant"], forward["z"], up["encoded_z"]),
        (io["lr"], zeros, bicubic["T0"]),
        (io["lr"], io["sample_fixed"]["unit_eps"], bicubic["T1_unit_eps"]),
    ]
    for lr, latents, ref in cases:
        hr, _ = model.decode(lr, latents)
        torch.testing.assert_close(hr, ref["sr_unclamped"], **F32)
        torch.testing.assert_close(hr.clamp(0, 1), ref["sr"], **F32)


@torch.no_grad()
def test_sr_replays_the_original_test_routine(reference) -> None:
    """The original ``test()`` after ``manual_seed``: dequantization noise, NLL, then one sample
    per test heat (``[0, 0, 0.9]``: heat 0 twice, the second kept), all from one RNG stream."""
    folder, model, io = reference
    if model.config.task != "sr":
        pytest.skip("SR vectors only")
    seeded = io["test_seeded"]
    generator = torch.Generator().manual_seed(int(seeded["seed"]))
    noise = torch.rand(io["hr"].shape, generator=generator)
    assert torch.equal(noise, seeded["u"])
    enc = model.encode(io["hr"], io["lr"], noise=noise)
    assert float(enc.nll.mean()) == pytest.approx(seeded["returned"], rel=1e-6)
    heats = [float(h) for h in seeded["val_heats"]]
    samples = [model.sample(io["lr"], h, 1, generator)[0] for h in heats]
    torch.testing.assert_close(samples[1], seeded["sr"][0], **F32)
    torch.testing.assert_close(samples[2], seeded["sr"][1], **F32)
