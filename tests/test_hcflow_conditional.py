"""HCFlow's per-level conditional flows against the original implementation's forward pass."""

from __future__ import annotations

import pytest
import torch

from conftest import SPEC, VECTORS, need_path
from reference_weights import recipe_module
from srflow.families.hcflow_keys import level_key_to_ours
from srflow.models.hcflow_conditional import ConditionalLevelFlow, level_condition

#: folder -> per level (channels of a, conditioning channels), steps, RRDBs, growth, SR?
CASES = {
    "full_HCFlow_SR4X": ([(6, 6 + 128), (21, 3)], 13, (7, 7), 32, True),
    "full_HCFlow_Rescaling4X": ([(6, 6 + 64), (21, 3)], 6, (2, 1), 16, False),
}
F32 = {"atol": 5e-5, "rtol": 1e-4}


def _levels(folder: str) -> tuple[list[ConditionalLevelFlow], dict]:
    shapes, steps, blocks, growth, sr = CASES[folder]
    recipe = recipe_module("synth_weights_hcflow")
    keys = recipe.read_keys_tsv(
        need_path(SPEC / "keys" / f"keys_{folder.removeprefix('full_')}.tsv")
    )
    sd = recipe.synth_state_dict(keys)
    sd.update(torch.load(need_path(VECTORS / folder / "actnorm_params.pt")))
    per_level: list[dict[str, torch.Tensor]] = [{} for _ in shapes]
    for key, value in sd.items():
        mapped = level_key_to_ours(key)
        if mapped is not None:
            per_level[mapped[0]][mapped[1]] = value
    levels = []
    for (channels, cond), state in zip(shapes, per_level, strict=True):
        flow = ConditionalLevelFlow(channels, cond, steps, blocks, growth, sr, not sr)
        flow.load_state_dict(state, strict=True)
        levels.append(flow.eval())
    return levels, torch.load(VECTORS / folder / "io.pt")


@pytest.mark.parametrize("folder", sorted(CASES))
@torch.no_grad()
def test_levels_reproduce_the_original_forward(folder: str) -> None:
    """Coarsest level first, conditioned on the flow's LR; finer levels on their kept channels
    and the coarser features: features, transformed parts, predicted Gaussians, latents."""
    levels, io = _levels(folder)
    forward = io["forward"]
    eps_key = "eps" if "eps" in forward else "z"
    coarser: list[torch.Tensor] = []
    for index in reversed(range(len(levels))):
        cond = (
            forward["y"]
            if index == len(levels) - 1
            else level_condition(forward["kept"][index], coarser)
        )
        out = levels[index].encode(forward["latents_raw"][index], cond)
        torch.testing.assert_close(out.features, forward["cond_features"][index], **F32)
        torch.testing.assert_close(out.transformed, forward["latents_transformed"][index], **F32)
        torch.testing.assert_close(out.mean, forward["prior_mean"][index], **F32)
        log_std = forward["prior_logs" if "prior_logs" in forward else "prior_logscale"][index]
        torch.testing.assert_close(out.log_std, log_std, **F32)
        torch.testing.assert_close(out.eps, forward[eps_key][index], **F32)
        coarser.insert(0, out.features)


@pytest.mark.parametrize("folder", sorted(CASES))
def test_level_round_trip_float64(folder: str) -> None:
    levels, io = _levels(folder)
    level = levels[-1].double()
    part = io["forward"]["latents_raw"][-1].double()
    cond = io["forward"]["y"].double()
    out = level.encode(part, cond)
    back, features, logdet = level.decode(out.eps, cond)
    torch.testing.assert_close(back, part, atol=1e-10, rtol=0)
    torch.testing.assert_close(logdet, -out.logdet, atol=1e-9, rtol=0)
    torch.testing.assert_close(features, out.features, atol=0, rtol=0)
