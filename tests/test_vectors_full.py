"""The full published SRFlow DF2K 4x against its vectors; every published key layout."""

from __future__ import annotations

import pytest
import torch

from conftest import VECTORS, need_path
from reference_weights import read_keys, rebuild_state_dict
from srflow.checkpoints import load_original as load_official
from srflow.families import detect, load_preset, original_to_ours
from srflow.models.srflow import SRFlow

F32 = {"atol": 5e-5, "rtol": 1e-4}


@pytest.fixture(scope="module")
def full4x():
    folder = need_path(VECTORS / "full_DF2K_4X")
    return load_official(rebuild_state_dict(folder)), torch.load(folder / "io.pt")


@torch.no_grad()
def test_full_df2k_4x_matches_reference(full4x) -> None:
    model, io = full4x
    assert model.config == load_preset("srflow_df2k_x4")
    assert sum(p.numel() for p in model.parameters()) + 276576 == io["meta"]["num_params"]
    enc = model.encode(io["hr"], io["lr"])
    for ours, ref in zip(enc.latents, io["encode"]["epses"], strict=True):
        torch.testing.assert_close(ours, ref, **F32)
    torch.testing.assert_close(enc.original_nll, io["encode"]["nll"], atol=1e-4, rtol=0)
    # log-dets are sums of ~1e4-sized terms that nearly cancel; float32 rounding depends on
    # the CPU's kernels (2.7e-6 relative on an AMD EPYC); the vectors' README reports 6e-4 absolute
    torch.testing.assert_close(enc.original_logdet, io["encode"]["logdet"], atol=6e-4, rtol=2e-6)
    sr, logdet = model.decode(io["lr"], io["encode"]["epses"])
    torch.testing.assert_close(sr, io["recon"]["sr"], **F32)
    torch.testing.assert_close(logdet, io["recon"]["logdet"], atol=6e-4, rtol=2e-6)
    fixed = io["sample_fixed"]
    for j in range(len(fixed["heats"])):
        sr, _ = model.decode(io["lr"], fixed["epses_per_heat"][j])
        torch.testing.assert_close(sr, fixed["sr"][j], **F32)
    seeded = io["sample_seeded"]["heat_0.9"]
    sr, _ = model.decode(io["lr"], [*seeded["split_eps"], seeded["z"]])
    torch.testing.assert_close(sr, seeded["sr"], **F32)


@torch.no_grad()
def test_full_df2k_4x_float64(full4x) -> None:
    model, io = full4x
    model = SRFlow(model.config).double().eval()
    model.load_state_dict(full4x[0].state_dict())
    ref = io["f64"]
    enc = model.encode(io["hr"].double(), io["lr"].double())
    for ours, theirs in zip(enc.latents, ref["encode"]["epses"], strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
    sr, _ = model.decode(io["lr"].double(), ref["encode"]["epses"])
    torch.testing.assert_close(sr, ref["recon"]["sr"], atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    ("keys", "preset"),
    [
        ("DF2K_4X", "srflow_df2k_x4"),
        ("DF2K_8X", "srflow_df2k_x8"),
        ("CelebA_8X", "srflow_celeba_x8"),
    ],
)
def test_published_key_layouts(keys: str, preset: str) -> None:
    """Our model built from the preset has exactly the published keys and shapes."""
    layout = read_keys(keys)
    fake = {k: torch.zeros(s) for k, s in layout.items()}
    assert detect(fake).config == load_preset(preset)
    converted = original_to_ours(fake, detect(fake))
    with torch.device("meta"):
        ours = SRFlow(load_preset(preset)).state_dict()
    assert set(converted) == set(ours)
    assert all(tuple(converted[k].shape) == tuple(v.shape) for k, v in ours.items())
    assert len(converted) == len(layout) - 2  # the unused flowUpsamplerNet.f conv


def test_8x_structure_and_latent_shapes() -> None:
    with torch.device("meta"):
        model = SRFlow(load_preset("srflow_df2k_x8"))
    types = model.flow.layer_type_names()
    assert types.count("squeeze") == 4 and types.count("split") == 2
    assert types.count("step") == 64 and types.count("transition") == 8
    shapes = model.latent_shapes(torch.empty(2, 3, 6, 8, device="meta"))
    assert shapes == [(2, 6, 24, 32), (2, 12, 12, 16), (2, 192, 3, 4)]
