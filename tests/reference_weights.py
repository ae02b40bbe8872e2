"""Rebuild the weights of the ``../shared/vectors/full_*`` folders from their recipes."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest
import torch

from conftest import SPEC, VECTORS, need_path


def recipe_module(name: str) -> ModuleType:
    """``synth_weights`` (SRFlow key sets), ``synth_weights_da`` (SRFlow-DA) or
    ``synth_weights_ncsr`` (NCSR)."""
    path = need_path(VECTORS / f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_keys(name: str) -> dict[str, tuple[int, ...]]:
    """The published key layout ``keys_<name>.tsv``: key -> shape."""
    module = recipe_module("synth_weights")
    return dict(module.read_keys_tsv(need_path(SPEC / "keys" / f"keys_{name}.tsv")))


def rebuild_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """The original state dict of a ``full_<name>`` vectors folder, checked against its
    checksums (skips the test if torch's random stream no longer reproduces it)."""
    name = folder.name.removeprefix("full_")
    recipes = {"SRFlowDA": "synth_weights_da", "NCSR": "synth_weights_ncsr"}
    recipe = recipe_module(next(
        (module for prefix, module in recipes.items() if name.startswith(prefix)), "synth_weights"
    ))  # fmt: skip
    sd = recipe.synth_state_dict(
        recipe.read_keys_tsv(need_path(SPEC / "keys" / f"keys_{name}.tsv"))
    )
    sd.update(torch.load(folder / "actnorm_params.pt"))
    for line in (folder / "state_dict_checksums.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        key, _, total, _squares = line.split("\t")
        if not math.isclose(
            float(sd[key].double().sum()), float(total), rel_tol=1e-6, abs_tol=1e-6
        ):
            pytest.skip(
                f"torch's randn stream changed: the {folder.name} weights cannot be rebuilt"
            )
    return sd
