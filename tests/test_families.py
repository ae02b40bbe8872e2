"""The family registry: every published layout is detected as exactly its configuration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import VECTORS, need_path
from reference_weights import read_keys
from srflow.checkpoints import CheckpointError, load_model, read_model_config
from srflow.cli.main import main
from srflow.families import FAMILIES, DetectionError, detect, family_of, published_models
from srflow.families.options import config_from_official_options

#: key-layout file -> (family, published name)
LAYOUTS = {
    "DF2K_4X": ("SRFlow", "SRFlow_DF2K_4X"),
    "DF2K_8X": ("SRFlow", "SRFlow_DF2K_8X"),
    "CelebA_8X": ("SRFlow", "SRFlow_CelebA_8X"),
    **{
        f"SRFlowDA{v}_{s}X": ("SRFlow-DA", f"SRFlowDA{v}_{s}X")
        for v in ("", "-R", "-S", "-D")
        for s in (4, 8)
    },
    "HCFlow_SR4X": ("HCFlow", "HCFlow_SR_DF2K_4X"),
    "HCFlow_SRface8X": ("HCFlow", "HCFlow_SR_CelebA_8X"),
    "HCFlow_Rescaling4X": ("HCFlow", "HCFlow_Rescaling_DF2K_4X"),
    "NCSR_4X": ("NCSR", "NCSR_4X"),
    "NCSR_8X": ("NCSR", "NCSR_8X"),
}


def _fake(layout: dict[str, tuple[int, ...]], device: str = "meta") -> dict[str, torch.Tensor]:
    return {k: torch.zeros(s, device=device) for k, s in layout.items()}


def test_registry_lists_every_published_checkpoint_once() -> None:
    names = [p.name for _, p in published_models()]
    assert sorted(names) == sorted(name for _, name in LAYOUTS.values())
    configs = [p.config for _, p in published_models()]
    assert len(set(configs)) == len(configs)  # no two published models share a config
    for family, published in published_models():
        assert family_of(published.config) is family


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
def test_layout_is_detected_as_its_configuration(layout_name: str) -> None:
    family_name, published_name = LAYOUTS[layout_name]
    layout = read_keys(layout_name)
    detection = detect(_fake(layout))
    assert detection.family.name == family_name
    assert detection.published is not None and detection.published.name == published_name
    assert detection.config == detection.published.config
    assert f"(published {detection.published.shown_as})" in detection.describe()
    # both directions of the key mapping, and the exact key set of the built model
    assert detection.family.original_keys(detection.config) == set(layout)
    ours = detection.family.to_ours(_fake(layout), detection.config)
    with torch.device("meta"):
        model_keys = detection.family.build(detection.config).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {
        k: tuple(v.shape) for k, v in model_keys.items()
    }
    # DataParallel prefix
    wrapped = {f"module.{k}": v for k, v in _fake(layout).items()}
    assert detect(wrapped).config == detection.config


@pytest.mark.slow
@pytest.mark.parametrize("layout_name", ["SRFlowDA-S_8X", "SRFlowDA-D_4X", "DF2K_8X"])
def test_detection_survives_our_safetensors_format(
    layout_name: str, tmp_path: Path, capsys
) -> None:
    """``.pth`` -> ``srflow convert`` -> ``.safetensors`` keeps family and configuration."""
    family_name, published_name = LAYOUTS[layout_name]
    source = tmp_path / "original.pth"
    torch.save(_fake(read_keys(layout_name), "cpu"), source)
    target = tmp_path / "converted.safetensors"
    assert main(["convert", str(source), str(target)]) == 0
    published = next(p for _, p in published_models() if p.name == published_name)
    assert f"(published {published.shown_as})" in capsys.readouterr().out
    assert read_model_config(target) == published.config
    assert main(["info", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"published {published.shown_as}" in out and family_name in out
    assert load_model(target).config == published.config


def test_unknown_file_names_families_and_closest_match(tmp_path: Path) -> None:
    layout = read_keys("SRFlowDA-R_4X")
    fake = _fake(layout)
    # the flow of DA-R 4x with an encoder under another name: no family claims it
    renamed = {k.replace("RRDB.", "encoder."): v for k, v in fake.items()}
    with pytest.raises(DetectionError) as info:
        detect(renamed)
    message = str(info.value)
    assert "\n" not in message
    assert f"tried {', '.join(f.name for f in FAMILIES)}" in message
    assert "tried NCSR, SRFlow," in message  # a derived family before its parent
    assert "closest is SRFlow-DA SRFlowDA-R_4X" in message
    assert "missing (RRDB." in message and "unexpected (encoder." in message
    path = tmp_path / "other.pth"
    torch.save({k: torch.zeros(1) for k in list(renamed)[:5]}, path)
    with pytest.raises(CheckpointError, match=r"other\.pth: matches no model family"):
        load_model(path)


def test_claimed_but_broken_layout_names_the_keys(tmp_path: Path) -> None:
    layout = read_keys("SRFlowDA-D_4X")
    state = _fake(layout, "cpu")
    del state["flowUpsamplerNet.layers.3.affine.fAffine2.5.2.weight"]
    path = tmp_path / "broken_da.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert "broken_da.pth" in message and "\n" not in message
    assert "flow.layers.3.coupling.net.hidden.5.2.weight" in message


def test_families_claim_disjoint_layouts() -> None:
    """Only a layout's own family claims it, and the families it derives from (their keys
    are a subset of its keys), which detection tries after it."""
    by_name = {family.name: family for family in FAMILIES}
    for layout_name, (family_name, _) in LAYOUTS.items():
        fake = _fake(read_keys(layout_name))
        lineage, name = [], family_name
        while name is not None:
            lineage.append(name)
            name = by_name[name].parent
        claimants = [family.name for family in FAMILIES if family.claims(fake)]
        assert claimants == [n for n in (f.name for f in FAMILIES) if n in lineage], layout_name
        assert claimants[0] == family_name


@pytest.mark.parametrize(
    "folder",
    ["full_SRFlowDA_4X", "full_SRFlowDA-R_4X", "full_SRFlowDA-S_4X", "full_SRFlowDA-D_4X"],
)
def test_original_options_give_the_detected_configuration(folder: str) -> None:
    """The original's parsed yml (``model:`` selects the variant) -> the same config."""
    config_json = need_path(VECTORS / folder / "config.json")
    opt = json.loads(config_json.read_text())["parsed_official_opt"]
    name = folder.removeprefix("full_")
    assert config_from_official_options(opt) == detect(_fake(read_keys(name))).config


def test_da_8x_configurations_follow_the_spec() -> None:
    """8x facts of the spec's table, independent of the 4x tests: levels, latents, params."""
    expected = {  # name -> (final latent channels at LR, number of splits, parameters)
        "SRFlowDA_8X": (48, 2, 30_014_883), "SRFlowDA-R_8X": (48, 2, 30_014_883),
        "SRFlowDA-S_8X": (24, 3, 31_748_931), "SRFlowDA-D_8X": (48, 2, 26_276_979),
    }  # fmt: skip
    for _, published in published_models():
        if published.name not in expected:
            continue
        channels, splits, params = expected[published.name]
        with torch.device("meta"):
            model = family_of(published.config).build(published.config)
        lr = torch.empty(1, 3, 5, 7, device="meta")
        shapes = model.latent_shapes(lr)
        assert shapes[-1] == (1, channels, 5, 7)
        assert len(shapes) == splits + 1
        assert sum(p.numel() for p in model.parameters()) + 276_576 == params
        assert model.config.encoder.stacked_blocks == (1, 8, 15, 22)
        assert model.config.size_multiple_lr == 1


def test_models_doc_lists_every_published_checkpoint_with_its_parameters() -> None:
    """docs/models.md's table: one row per published model, parameter counts as built."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text()
    rows = {
        cells[0]: cells
        for line in doc.splitlines()
        if line.startswith("| ")
        and len(cells := [c.strip() for c in line.strip("|").split("|")]) == 8
    }
    for family, published in published_models():
        cells = rows[published.name]
        assert cells[1] == family.name and cells[2] == published.variant
        assert cells[3] == f"{published.scale}x" and published.file in cells[5]
        with torch.device("meta"):
            params = sum(p.numel() for p in family.build(published.config).parameters())
        assert cells[4] == f"{params:,}"


def test_every_published_config_survives_our_metadata(tmp_path: Path) -> None:
    """The JSON config our safetensors files carry rebuilds each published configuration."""
    from srflow.config.loading import to_dict
    from srflow.families import family_named

    for family, published in published_models():
        data = json.loads(json.dumps(to_dict(published.config)))
        assert family_named(family.name).parse_config(data) == published.config
        assert family.describe(published.config).endswith(f"(published {published.shown_as})")


def test_info_on_an_unknown_file_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "esrgan.pth"
    torch.save({"conv_first.weight": torch.zeros(64, 3, 3, 3)}, path)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "esrgan.pth" in err and "matches no model family" in err


def test_hcflow_checkpoints_load_and_the_latent_tools_run_them(tmp_path: Path, capsys) -> None:
    """An HCFlow file is detected, converted and described; ``srflow encode`` / ``decode``
    run it through the same model interface as SRFlow models."""
    from PIL import Image

    from srflow.checkpoints import save_model
    from srflow.families import family_named

    family = family_named("HCFlow")
    config = family.published[2].config  # rescaling 4x: the smallest
    path = save_model(family.build(config), tmp_path / "rescaling.safetensors")
    assert main(["info", str(path)]) == 0
    assert "HCFlow (rescaling) 4x (published HCFlow_Rescaling_DF2K_4X)" in capsys.readouterr().out
    assert load_model(path).config == config
    image = tmp_path / "photo.png"
    pixels = (np.arange(16 * 16 * 3).reshape(16, 16, 3) % 251).astype(np.uint8)
    Image.fromarray(pixels).save(image)
    z = tmp_path / "z.safetensors"
    assert main(["encode", str(image), "-o", str(z), "--model", str(path)]) == 0
    out = tmp_path / "decoded.png"
    assert main(["decode", str(z), "-o", str(out), "--model", str(path)]) == 0
    decoded = np.asarray(Image.open(out)).astype(int)
    assert np.abs(decoded - pixels).max() <= 1
