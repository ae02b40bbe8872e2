"""Tests for the strict YAML <-> dataclass config loader."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from srflow.config.loading import (
    ConfigError,
    apply_overrides,
    dump_yaml,
    dumps_yaml,
    from_dict,
    load_yaml,
    to_dict,
)


@dataclass(frozen=True)
class Flow:
    levels: int = 3
    split_levels: tuple[int, ...] = (1,)
    affine_eps: float = 1e-4
    kind: Literal["glow", "affine"] = "glow"


@dataclass(frozen=True)
class Model:
    scale: int = 4
    flow: Flow = field(default_factory=Flow)
    crop: tuple[int, int] = (160, 160)
    weights: Path | None = None


@dataclass(frozen=True)
class Root:
    name: str
    model: Model = field(default_factory=Model)
    enabled: bool = True
    loss_weights: dict[str, float] = field(default_factory=dict)
    temperatures: tuple[float, ...] = (0.0, 0.9)

    def validate(self) -> None:
        if self.model.scale not in (2, 4, 8):
            raise ConfigError(f"model.scale: {self.model.scale} is not 2, 4 or 8")


@dataclass(frozen=True)
class Checked:
    count: int = 1

    def validate(self) -> None:
        if self.count < 1:
            raise ValueError("count must be positive")


@dataclass(frozen=True)
class Scalars:
    i: int = 0
    f: float = 0.0
    b: bool = False
    s: str = ""


def full_data() -> dict:
    return {
        "name": "run",
        "model": {
            "scale": 8,
            "flow": {"levels": 4, "split_levels": [1, 2], "affine_eps": 1e-3, "kind": "affine"},
            "crop": [96, 128],
            "weights": "ckpt/model.safetensors",
        },
        "enabled": False,
        "loss_weights": {"nll": 1.0, "l1": 2},
        "temperatures": [0.5, 1],
    }


def test_from_dict_builds_nested_and_coerces() -> None:
    cfg = from_dict(Root, full_data())
    assert cfg.model.flow == Flow(levels=4, split_levels=(1, 2), affine_eps=1e-3, kind="affine")
    assert cfg.model.crop == (96, 128)
    assert cfg.model.weights == Path("ckpt/model.safetensors")
    assert cfg.loss_weights == {"nll": 1.0, "l1": 2.0}
    assert isinstance(cfg.loss_weights["l1"], float)
    assert cfg.temperatures == (0.5, 1.0) and isinstance(cfg.temperatures[1], float)
    assert cfg.enabled is False


def test_missing_keys_take_defaults() -> None:
    cfg = from_dict(Root, {"name": "x", "model": {"flow": {"levels": 2}}})
    assert cfg == Root(name="x", model=Model(flow=Flow(levels=2)))


def test_round_trip_to_dict_from_dict_and_yaml(tmp_path: Path) -> None:
    cfg = from_dict(Root, full_data())
    plain = to_dict(cfg)
    assert plain["model"]["crop"] == [96, 128]
    assert plain["model"]["weights"] == "ckpt/model.safetensors"
    assert yaml.safe_load(yaml.safe_dump(plain)) == plain  # YAML-safe types only
    assert from_dict(Root, plain) == cfg
    assert from_dict(Root, yaml.safe_load(dumps_yaml(cfg))) == cfg
    target = tmp_path / "config.yaml"
    dump_yaml(cfg, target)
    assert load_yaml(Root, target) == cfg
    assert os.listdir(tmp_path) == ["config.yaml"]  # no temp file left behind


def test_dump_yaml_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    target.write_text("old: content\n")
    dump_yaml(Root(name="new"), target)
    assert load_yaml(Root, target).name == "new"


def test_unknown_key_names_dotted_path_and_suggests() -> None:
    data = {"name": "x", "model": {"flow": {"levls": 3}}}
    with pytest.raises(ConfigError) as info:
        from_dict(Root, data)
    assert str(info.value) == "unknown key 'model.flow.levls' (did you mean 'levels'?)"
    with pytest.raises(ConfigError, match=r"^unknown key 'zzz'$"):
        from_dict(Root, {"name": "x", "zzz": 1})


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"^missing required key 'name'$"):
        from_dict(Root, {})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"model": {"flow": {"levels": "three"}}},
            "model.flow.levels: expected int, got str 'three'",
        ),
        ({"model": {"flow": {"levels": 3.0}}}, "model.flow.levels: expected int, got float 3.0"),
        ({"model": {"flow": {"levels": True}}}, "model.flow.levels: expected int, got bool True"),
        ({"enabled": 1}, "enabled: expected bool, got int 1"),
        ({"enabled": "yes"}, "enabled: expected bool, got str 'yes'"),
        ({"model": {"flow": {"affine_eps": "small"}}}, "model.flow.affine_eps: expected float"),
        ({"model": {"flow": {"affine_eps": False}}}, "model.flow.affine_eps: expected float"),
        ({"model": {"flow": {"split_levels": [1, "x"]}}}, r"model.flow.split_levels\[1\]: "),
        (
            {"model": {"flow": {"split_levels": 1}}},
            r"model.flow.split_levels: expected tuple\[int, ...\], got int 1$",
        ),
        ({"model": {"flow": {"kind": "spline"}}}, "model.flow.kind: expected one of"),
        ({"model": {"crop": [1, 2, 3]}}, "model.crop: expected 2 items, got 3"),
        ({"model": {"weights": 5}}, "model.weights: expected Path, got int 5"),
        ({"model": 4}, "model: expected Model, got int 4"),
        ({"loss_weights": {"nll": "x"}}, "loss_weights.nll: expected float"),
        ({"loss_weights": [1.0]}, "loss_weights: expected dict"),
        ({"name": 3}, "name: expected str, got int 3"),
    ],
)
def test_wrong_types_are_errors(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        from_dict(Root, {"name": "x", **data})


def test_float_field_accepts_float_strings_and_ints() -> None:
    cfg = from_dict(Scalars, {"f": "1e-4"})
    assert cfg.f == 1e-4 and isinstance(cfg.f, float)
    assert from_dict(Scalars, {"f": 3}).f == 3.0
    assert from_dict(Root, {"name": "x", "temperatures": ["1e-1"]}).temperatures == (0.1,)


def test_optional_and_literal() -> None:
    assert from_dict(Model, {"weights": None}).weights is None
    assert from_dict(Model, {"flow": {"kind": "affine"}}).flow.kind == "affine"


def test_validate_runs_and_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"^model.scale: 3 is not 2, 4 or 8$"):
        from_dict(Root, {"name": "x", "model": {"scale": 3}})
    with pytest.raises(ConfigError, match=r"^count must be positive$"):
        from_dict(Checked, {"count": 0})

    @dataclass(frozen=True)
    class Outer:
        inner: Checked = field(default_factory=Checked)

    with pytest.raises(ConfigError, match=r"^inner: count must be positive$"):
        from_dict(Outer, {"inner": {"count": -1}})


def test_apply_overrides_is_pure_and_parses_yaml() -> None:
    data = {"model": {"flow": {"levels": 3}}}
    result = apply_overrides(data, ["model.flow.levels=4", "model.scale=8", "train.lr=2e-4"])
    assert data == {"model": {"flow": {"levels": 3}}}
    assert result == {"model": {"flow": {"levels": 4}, "scale": 8}, "train": {"lr": "2e-4"}}
    assert apply_overrides({}, ["a=[1, 2]", "b=x=y", "c="]) == {"a": [1, 2], "b": "x=y", "c": None}


@pytest.mark.parametrize("override", ["levels", "=3", "a..b=1", "a.=1"])
def test_malformed_override(override: str) -> None:
    with pytest.raises(ConfigError, match="invalid override"):
        apply_overrides({}, [override])


def test_override_into_scalar_is_error() -> None:
    with pytest.raises(ConfigError, match="'model.scale' is not a mapping"):
        apply_overrides({"model": {"scale": 4}}, ["model.scale.x=1"])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "preset.yaml"
    path.write_text(text)
    return path


def test_load_yaml_with_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "name: run\nmodel:\n  flow: {levels: 3, split_levels: [1]}\n")
    overrides = ["model.flow.levels=4", "model.flow.affine_eps=1e-5", "model.flow.split_levels=[]"]
    cfg = load_yaml(Root, path, overrides)
    assert cfg.model.flow == Flow(levels=4, split_levels=(), affine_eps=1e-5)
    assert load_yaml(Root, str(path), ["model.weights=w.pt"]).model.weights == Path("w.pt")


def test_load_yaml_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: run\nmodel: {flow: {levls: 3}}\n")
    with pytest.raises(ConfigError, match=rf"^{path}: unknown key 'model.flow.levls'"):
        load_yaml(Root, path)
    path = write(tmp_path, "name: run\nmodel: {scale: [\n")
    with pytest.raises(ConfigError, match=rf"^{path}: invalid YAML") as info:
        load_yaml(Root, path)
    assert "\n" not in str(info.value)
    path = write(tmp_path, "- 1\n- 2\n")
    with pytest.raises(ConfigError, match=rf"^{path}: top level must be a mapping"):
        load_yaml(Root, path)
    with pytest.raises(OSError):
        load_yaml(Root, tmp_path / "missing.yaml")


def test_load_yaml_override_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "name: run\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(Root, path, ["model.flow.levls=4"])
    message = str(info.value)
    assert "override 'model.flow.levls=4'" in message
    assert "unknown key 'model.flow.levls' (did you mean 'levels'?)" in message
    with pytest.raises(ConfigError, match="'model.scale' is not a section"):
        load_yaml(Root, path, ["model.scale.x=1"])
    with pytest.raises(ConfigError, match="model.flow.levels: expected int, got str 'four'"):
        load_yaml(Root, path, ["model.flow.levels=four"])
    assert load_yaml(Root, path, ["loss_weights.nll=0.5"]).loss_weights == {"nll": 0.5}


def test_empty_yaml_means_defaults(tmp_path: Path) -> None:
    assert load_yaml(Scalars, write(tmp_path, "")) == Scalars()


@given(st.integers())
def test_override_int_property(value: int) -> None:
    assert from_dict(Scalars, apply_overrides({}, [f"i={value}"])).i == value


@given(st.floats(allow_nan=False))
def test_override_float_property(value: float) -> None:
    for text in (repr(value), str(value), f"{value:e}"):
        parsed = from_dict(Scalars, apply_overrides({}, [f"f={text}"])).f
        assert parsed == float(text) and math.copysign(1, parsed) == math.copysign(1, value)


@given(st.booleans(), st.sampled_from([str.lower, str.capitalize, str.upper]))
def test_override_bool_property(value: bool, case: object) -> None:
    assert from_dict(Scalars, apply_overrides({}, [f"b={case(str(value))}"])).b is value


@given(st.text())
def test_override_quoted_string_property(value: str) -> None:
    text = yaml.safe_dump(value)
    assert from_dict(Scalars, apply_overrides({}, [f"s={text}"])).s == value


YAML_WORDS = {
    case(word)
    for word in ("true", "false", "yes", "no", "on", "off", "null")
    for case in (str.lower, str.capitalize, str.upper)
}  # PyYAML (YAML 1.1) reads exactly these plain scalars as bool or None


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_/-]{0,12}", fullmatch=True))
def test_override_plain_string_property(value: str) -> None:
    if value in YAML_WORDS:
        with pytest.raises(ConfigError):
            from_dict(Scalars, apply_overrides({}, [f"s={value}"]))
    else:
        assert from_dict(Scalars, apply_overrides({}, [f"s={value}"])).s == value


def test_model_and_training_presets_are_kept_apart(capsys) -> None:
    from srflow.cli.main import main
    from srflow.config.presets import model_preset_names, training_preset_names
    from srflow.train.config import load_run_config

    assert "tiny" in model_preset_names() and "train_tiny" in training_preset_names()
    assert not set(model_preset_names()) & set(training_preset_names())
    with pytest.raises(ConfigError, match=r"'tiny' is a model preset .*did you mean train_tiny"):
        load_run_config("tiny")  # formerly: the published 200,000-step schedule on "tiny"
    assert main(["train", "tiny"]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: 'tiny' is a model preset") and "\n" not in line
    assert load_run_config("train_tiny").train.steps < 1000
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "training presets: train_celeba_x8," in help_text and "train_tiny" in help_text
