"""HCFlow's HR -> LR trunk against the original implementation's per-layer traces."""

from __future__ import annotations

import pytest
import torch

from conftest import SPEC, VECTORS, need_path
from reference_weights import recipe_module
from srflow.families.hcflow_keys import trunk_key_to_ours
from srflow.models.hcflow_trunk import ChannelSplit, HCFlowTrunk

#: folder -> (trunk arguments, sub-networks are FCNs, input key of io["forward"])
CASES = {
    "full_HCFlow_SR4X": ({"levels": 2, "steps": 13}, True, "hr_deq"),
    "full_HCFlow_Rescaling4X": ({"levels": 2, "steps": 8, "haar": True}, False, None),
}


def _trunk_with_original_weights(folder: str) -> tuple[HCFlowTrunk, dict]:
    args, fcn, _ = CASES[folder]
    recipe = recipe_module("synth_weights_hcflow")
    name = folder.removeprefix("full_")
    keys = recipe.read_keys_tsv(need_path(SPEC / "keys" / f"keys_{name}.tsv"))
    sd = recipe.synth_state_dict(keys)
    sd.update(torch.load(need_path(VECTORS / folder / "actnorm_params.pt")))
    ours = {}
    for key, value in sd.items():
        mapped = trunk_key_to_ours(key, fcn)
        if mapped is not None:
            ours[mapped] = value
    trunk = HCFlowTrunk(**args)
    trunk.load_state_dict(ours, strict=True)
    return trunk.eval(), torch.load(VECTORS / folder / "io.pt")


@pytest.mark.parametrize("folder", sorted(CASES))
@torch.no_grad()
def test_trunk_reproduces_the_original_trace(folder: str) -> None:
    """Every trunk layer's output sum equals the original's trace (float64 sums of float32)."""
    trunk, io = _trunk_with_original_weights(folder)
    source = CASES[folder][2]
    x = io["forward"][source] if source else io["hr"]
    trace = io["trace_forward"]
    row = 0
    for layer in trunk.layers:
        if isinstance(layer, ChannelSplit):
            kept, part = x[:, : layer.kept], x[:, layer.kept :]
            for tensor in (kept, part):
                torch.testing.assert_close(
                    tensor.double().sum((1, 2, 3)), trace["sum"][row], atol=2e-4, rtol=1e-5
                )
                row += 1
            x = kept
            continue
        x, _ = layer(x)
        assert list(x.shape) == trace["shape"][row]
        torch.testing.assert_close(
            x.double().sum((1, 2, 3)), trace["sum"][row], atol=2e-4, rtol=1e-5
        )
        torch.testing.assert_close(
            x.double().abs().sum((1, 2, 3)), trace["abs_sum"][row], atol=2e-4, rtol=1e-5
        )
        row += 1


@pytest.mark.parametrize("folder", sorted(CASES))
def test_trunk_round_trip_float64_and_logdet(folder: str) -> None:
    trunk, io = _trunk_with_original_weights(folder)
    trunk = trunk.double()
    x = io["hr"].double()
    y, parts, logdet = trunk.encode(x)
    back, logdet_back = trunk.decode(y, parts)
    torch.testing.assert_close(back, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(logdet_back, -logdet, atol=1e-9, rtol=0)


@pytest.mark.parametrize("folder", sorted(CASES))
@torch.no_grad()
def test_trunk_outputs_equal_the_original_lr_and_high_frequency_parts(folder: str) -> None:
    trunk, io = _trunk_with_original_weights(folder)
    source = CASES[folder][2]
    forward = io["forward"]
    y, parts, logdet = trunk.encode(forward[source] if source else io["hr"])
    torch.testing.assert_close(y, forward["y"], atol=5e-5, rtol=1e-4)
    if "logdet_trunk" in forward:  # the SR vectors hold the trunk's log-det (README: rtol 2e-6)
        torch.testing.assert_close(logdet, forward["logdet_trunk"].float(), atol=0, rtol=2e-6)
    for ours, ref in zip(parts, forward["latents_raw"], strict=True):
        torch.testing.assert_close(ours, ref, atol=5e-5, rtol=1e-4)
