"""Every published SRFlow-family architecture against the original implementation's vectors.

Parametrized over the ``../shared/vectors/full_*`` folders of the SRFlow and SRFlow-DA
families (``full_DF2K_8X``, ``full_SRFlowDA*_4X``, and any other such folder that is
present): the weights are rebuilt from the recipe, the configuration is *detected* from the
keys (never taken from the folder), and every stored output is reproduced in float32 and
float64 within the tolerances of the vectors' README.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch

from conftest import VECTORS
from flow_checks import assert_each_close, assert_float64_vectors
from reference_weights import rebuild_state_dict
from srflow.checkpoints import load_original as load_official
from srflow.families import detect
from srflow.families.original_sampling import original_seeded_latents

FOLDERS = sorted(
    p.name for p in VECTORS.glob("full_*")
    if re.fullmatch(r"full_(DF2K|CelebA|SRFlowDA[-A-Z]*)_\dX", p.name) and p.name != "full_DF2K_4X"
) if VECTORS.exists() else []  # fmt: skip
F32 = {"atol": 5e-5, "rtol": 1e-4}


def _published_name(folder: str) -> str:
    name = folder.removeprefix("full_")
    return name if name.startswith("SRFlowDA") else f"SRFlow_{name}"


def _logdet_tolerance(folder: str) -> dict[str, float]:
    # SRFlow-DA log-dets are small sums of large terms: absolute tolerance (README: 1e-2)
    return {"atol": 1e-2, "rtol": 0.0} if "SRFlowDA" in folder else {"atol": 6e-4, "rtol": 2e-6}


@pytest.fixture(scope="module", params=FOLDERS)
def reference(request: pytest.FixtureRequest) -> tuple[str, torch.nn.Module, dict]:
    folder: Path = VECTORS / request.param
    sd = rebuild_state_dict(folder)
    detection = detect(sd)
    assert detection.published is not None
    assert detection.published.name == _published_name(folder.name)
    model = load_official(sd)
    return folder.name, model, torch.load(folder / "io.pt")


def test_detected_architecture(reference) -> None:
    name, model, io = reference
    meta = io["meta"]
    assert sum(p.numel() for p in model.parameters()) + 276576 == meta["num_params"]
    assert list(model.config.encoder.stacked_blocks) == list(meta["stackRRDB_blocks"])
    assert len(model.flow.layers) == len(meta["layer_types"])
    names = {"Split2d": "split", "SqueezeLayer": "squeeze"}
    types = [
        names.get(t.split(":")[0], "step" if "Cond" in t else "transition")
        for t in meta["layer_types"]
    ]
    assert model.flow.layer_type_names() == types
    assert model.latent_shapes(io["lr"]) == [tuple(e.shape) for e in io["encode"]["epses"]]


@torch.no_grad()
def test_encode_and_likelihood_float32(reference) -> None:
    name, model, io = reference
    enc = model.encode(io["hr"], io["lr"])
    assert_each_close(enc.latents, io["encode"]["epses"], **F32)
    torch.testing.assert_close(enc.original_nll, io["encode"]["nll"], atol=1e-4, rtol=0)
    torch.testing.assert_close(
        enc.original_logdet, io["encode"]["logdet"], **_logdet_tolerance(name)
    )


@torch.no_grad()
def test_dequantized_encode_float32(reference) -> None:
    name, model, io = reference
    deq = io["encode_deq"]
    if deq.get("noise_type") == "gaussian":  # SRFlow-DA: hr + N(0,1) * sigma, no log-det term
        assert model.config.dequantization == "gaussian"
        torch.testing.assert_close(
            io["hr"] + deq["n"] * deq["sigma"], deq["hr_deq"], atol=0, rtol=0
        )
        offset = 0.0
    else:  # SRFlow: uniform noise of width 1/32 and -ln(32) per pixel
        assert model.config.dequantization == "uniform"
        offset = 5.0
    enc = model.encode(deq["hr_deq"], io["lr"])
    assert_each_close(enc.latents, deq["epses"], **F32)
    torch.testing.assert_close(enc.original_nll + offset, deq["nll"], atol=1e-4, rtol=0)


@torch.no_grad()
def test_reconstruction_and_samples_float32(reference) -> None:
    name, model, io = reference
    sr, logdet = model.decode(io["lr"], io["encode"]["epses"])
    torch.testing.assert_close(sr, io["recon"]["sr"], **F32)
    torch.testing.assert_close(logdet, io["recon"]["logdet"], **_logdet_tolerance(name))
    fixed = io["sample_fixed"]
    for j in range(len(fixed["heats"])):
        sr, logdet = model.decode(io["lr"], fixed["epses_per_heat"][j])
        torch.testing.assert_close(sr, fixed["sr"][j], **F32)
        torch.testing.assert_close(logdet, fixed["logdet"][j], **_logdet_tolerance(name))


@torch.no_grad()
def test_seeded_sampling_replay(reference) -> None:
    """The original's ``get_sr_with_z(heat, seed=2024)`` draws, replayed on a private generator."""
    name, model, io = reference
    for key, seeded in io["sample_seeded"].items():
        heat = float(key.removeprefix("heat_"))
        latents = original_seeded_latents(model, io["lr"], heat, int(seeded["seed"]))
        torch.testing.assert_close(latents[-1], seeded["z"], atol=0, rtol=0)
        assert_each_close(latents[:-1], seeded["split_eps"], atol=0, rtol=0)
        sr, _ = model.decode(io["lr"], latents)
        torch.testing.assert_close(sr, seeded["sr"], **F32)


@torch.no_grad()
def test_float64(reference) -> None:
    name, model, io = reference
    assert_float64_vectors(copy.deepcopy(model).double(), io, atol=1e-8, rtol=1e-12)
