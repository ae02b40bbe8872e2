"""Loading original checkpoints: wrappers, strictness, safety, conversion, detection."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import VECTORS, need_path
from srflow.checkpoints import CheckpointError, load_model
from srflow.cli.main import main
from srflow.families import load_preset
from srflow.models.srflow import SRFlow


@pytest.fixture(scope="module")
def mini() -> tuple[dict[str, torch.Tensor], dict]:
    folder = need_path(VECTORS / "mini4x")
    return torch.load(folder / "state_dict.pt"), torch.load(folder / "io.pt")


def _latents_match(model: SRFlow, io: dict) -> None:
    with torch.no_grad():
        enc = model.encode(io["hr"], io["lr"])
    for ours, ref in zip(enc.latents, io["encode"]["epses"], strict=True):
        torch.testing.assert_close(ours, ref, atol=5e-5, rtol=1e-4)


def test_module_prefix_and_state_dict_wrapper(mini, tmp_path: Path) -> None:
    state, io = mini
    wrapped = tmp_path / "SRFlow_mini_dp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    _latents_match(load_model(wrapped), io)


def test_missing_and_unexpected_keys_are_named(mini, tmp_path: Path) -> None:
    state, _ = mini
    broken = dict(state)
    missing_key = "flowUpsamplerNet.layers.3.affine.fAffine.2.weight"
    del broken[missing_key]
    broken["RRDB.extra_conv.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert "broken.pth" in message and "\n" not in message
    assert "layers.3" in message and "extra_conv" in message


def test_wrong_shape_is_named(mini, tmp_path: Path) -> None:
    state, _ = mini
    bad = dict(state)
    bad["flowUpsamplerNet.layers.3.invconv.weight"] = torch.zeros(5, 5)
    path = tmp_path / "shape.pth"
    torch.save(bad, path)
    with pytest.raises(CheckpointError, match="invconv"):
        load_model(path)


class _Payload:
    """An object whose unpickling would run code: it must never be unpickled."""

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path("/tmp/srflow_unpickled_marker"),))


def test_arbitrary_pickles_are_refused(tmp_path: Path) -> None:
    marker = Path("/tmp/srflow_unpickled_marker")
    marker.unlink(missing_ok=True)
    path = tmp_path / "evil.pth"
    with path.open("wb") as f:
        pickle.dump({"weight": _Payload()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="evil.pth"):
        load_model(path)
    assert not marker.exists()
    truncated = tmp_path / "cut.pth"
    torch.save({"a": torch.zeros(100)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cut.pth"):
        load_model(truncated)


def test_convert_command_copies_weights_bit_for_bit(mini, tmp_path: Path, capsys) -> None:
    state, io = mini
    source = tmp_path / "SRFlow_mini.pth"
    torch.save(state, source)
    target = tmp_path / "mini.safetensors"
    assert main(["convert", str(source), str(target)]) == 0
    converted = load_file(target)
    assert len(converted) == len(state) - 2  # the unused flowUpsamplerNet.f conv is dropped
    assert sorted(float(v.double().sum()) for v in converted.values()) == sorted(
        float(v.double().sum())
        for k, v in state.items()
        if not k.startswith("flowUpsamplerNet.f.")
    )
    model = load_model(target)
    _latents_match(model, io)
    assert main(["info", str(target)]) == 0
    assert "scale: 4x" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "absent.pth"), str(tmp_path / "x.safetensors")]) == 2
    assert "absent.pth" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


def test_8x_tiny_round_trip_and_two_splits() -> None:
    """An 8x model (L=4, splits after levels 1 and 2) built like the published 8x configs."""
    base = load_preset("tiny")
    flow = base.flow.__class__(**{**base.flow.__dict__, "levels": 4, "split_levels": (1, 2)})
    config = base.__class__(**{**base.__dict__, "scale": 8, "flow": flow})
    model = SRFlow(config, generator=torch.Generator().manual_seed(0)).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        lr = torch.rand(2, 3, 4, 6, dtype=torch.float64)
        hr = torch.rand(2, 3, 32, 48, dtype=torch.float64)
        enc = model.encode(hr, lr)
        assert [tuple(z.shape) for z in enc.latents] == [
            (2, 6, 16, 24), (2, 12, 8, 12), (2, 192, 2, 3)
        ]  # fmt: skip
        back, logdet = model.decode(lr, enc.latents)
    torch.testing.assert_close(back, hr, atol=1e-10, rtol=0)
    torch.testing.assert_close(logdet, -enc.original_logdet, atol=1e-8, rtol=0)


def test_unloadable_files_say_why_without_unsafe_advice(tmp_path: Path) -> None:
    import pickle

    from srflow.checkpoints import CheckpointError, load_model

    (tmp_path / "random.pth").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"x": Path("y")}, protocol=2))
    (tmp_path / "photo.pth").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    for name, why in (("random.pth", "not a PyTorch file"), ("photo.pth", "not a PyTorch file"),
                      ("evil.pth", "never unpickles")):  # fmt: skip
        with pytest.raises(CheckpointError) as info:
            load_model(tmp_path / name)
        message = str(info.value)
        assert message.startswith(f"{tmp_path / name}: not a model checkpoint") and why in message
        assert "weights_only" not in message and "\n" not in message


def test_safetensors_suffix_is_case_insensitive(tmp_path: Path) -> None:
    from srflow.checkpoints import load_model, save_model
    from srflow.families import load_preset
    from srflow.models.srflow import SRFlow

    path = save_model(SRFlow(load_preset("tiny")), tmp_path / "m.safetensors")
    upper = path.rename(tmp_path / "M.SAFETENSORS")
    assert load_model(upper).config == load_preset("tiny")
