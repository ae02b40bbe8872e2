"""Strict YAML <-> dataclass loading for configs.

Dataclass schemas are the source of truth. :func:`from_dict` checks and coerces every value
against the type hints; unknown or missing keys and wrong types raise :class:`ConfigError`
naming the dotted path. Overrides are ``"a.b.c=value"`` strings whose value is parsed with
``yaml.safe_load`` (never ``eval``).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Train:
    ...     lr: float = 1e-3
    ...     steps: int = 10
    >>> from_dict(Train, apply_overrides({"steps": 5}, ["lr=2e-4"]))
    Train(lr=0.0002, steps=5)
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, TypeVar, Union

import yaml

from srflow.files import atomic_file

T = TypeVar("T")


class ConfigError(ValueError):
    """A config is malformed: unknown or missing key, wrong type, or invalid value."""


class ConfigValueError(ValueError):
    """A config value is out of its valid range."""


@dataclasses.dataclass(frozen=True)
class Tagged:
    """Marks a dataclass field, ``Annotated[Any, Tagged(parse, dump, schema, key)]``, whose
    data names its own schema under ``key`` (a model configuration tagged with its family):
    ``parse(data, path)`` builds the value, ``dump(value)`` gives its data back,
    ``schema(data)`` is the dataclass its other keys are checked against (``None``: not known
    from the data)."""

    parse: Callable[[object, str], Any]
    dump: Callable[[Any], dict[str, Any]]
    schema: Callable[[object], type | None]
    key: str


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _tagged(hint: Any) -> Tagged | None:
    """The :class:`Tagged` marker of an ``Annotated`` hint, if any."""
    if typing.get_origin(hint) is not Annotated:
        return None
    return next((m for m in hint.__metadata__ if isinstance(m, Tagged)), None)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _at(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _mismatch(hint: Any, value: object, path: str) -> ConfigError:
    got = f"{type(value).__name__} {value!r}"
    return ConfigError(_at(path, f"expected {_type_name(hint)}, got {got}"))


def _unknown_key(key: object, path: str, known: Sequence[str]) -> ConfigError:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown key '{_join(path, key)}'{hint}")


def _misfit(hint: Any, value: object) -> int:
    """How many keys of a mapping ``value`` the dataclass ``hint`` does not know (a large
    number when ``hint`` is not a dataclass or ``value`` not a mapping)."""
    if not (dataclasses.is_dataclass(hint) and isinstance(value, Mapping)):
        return 1 << 30
    names = {f.name for f in dataclasses.fields(hint)}
    return sum(key not in names for key in value)


def _convert(value: object, hint: Any, path: str) -> Any:
    """Check ``value`` against the type hint ``hint`` and coerce it (lists to tuples, ...)."""
    tagged = _tagged(hint)
    if tagged is not None:
        return tagged.parse(value, path)
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_dict(hint, value, path=path)  # type: ignore[arg-type]
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        if len(options) == 1:
            return _convert(value, options[0], path)
        errors: list[tuple[int, ConfigError]] = []
        for option in options:
            try:
                return _convert(value, option, path)
            except ConfigError as exc:
                errors.append((_misfit(option, value), exc))
        best = min(errors, key=lambda e: e[0])
        if isinstance(value, Mapping) and best[0] < len(value):
            raise best[1]  # the schema the mapping was meant for says what is wrong
        raise _mismatch(hint, value, path)
    if origin is Literal:
        if any(type(value) is type(a) and value == a for a in args):
            return value
        raise ConfigError(_at(path, f"expected one of {list(args)}, got {value!r}"))
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _mismatch(hint, value, path)
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            items = [_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
        elif args and args != ((),):
            if len(value) != len(args):
                raise ConfigError(_at(path, f"expected {len(args)} items, got {len(value)}"))
            pairs = enumerate(zip(value, args, strict=True))
            items = [_convert(v, a, f"{path}[{i}]") for i, (v, a) in pairs]
        else:
            items = list(value)
        return items if origin is list or hint is list else tuple(items)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise _mismatch(hint, value, path)
        key_type, value_type = args or (Any, Any)
        return {
            _convert(k, key_type, path): _convert(v, value_type, _join(path, k))
            for k, v in value.items()
        }
    if hint is bool or hint is str:
        if type(value) is hint:
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:  # PyYAML 1.1 reads "1e-4" (no dot) as a string
                return float(value)
            except ValueError:
                pass
    elif hint is type(None):
        if value is None:
            return None
    elif isinstance(hint, type) and issubclass(hint, PurePath):
        if isinstance(value, (str, PurePath)):
            return hint(value)
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    raise _mismatch(hint, value, path)


def from_dict(cls: type[T], data: Mapping[str, Any], *, path: str = "") -> T:
    """Build the dataclass ``cls`` from plain data, strictly.

    Args:
        cls: a dataclass type; nested dataclass fields are built recursively.
        data: mapping of field names to values (e.g. parsed YAML). Missing keys take the
            field default.
        path: dotted prefix of ``data`` inside a larger config, used in error messages.

    Returns:
        The constructed instance, after its ``validate()`` method (if any) has run.

    Raises:
        ConfigError: on an unknown key, a missing required key, a value of the wrong type,
            or a failed ``validate()``.
    """
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"from_dict expects a dataclass type, got {cls!r}")
    if not isinstance(data, Mapping):
        raise _mismatch(cls, data, path)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise _unknown_key(key, path, list(fields))
    hints, kwargs = _hints(cls), {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], _join(path, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key '{_join(path, name)}'")
    try:
        obj = cls(**kwargs)
        if callable(validate := getattr(obj, "validate", None)):
            validate()
    except ConfigError:
        raise
    except ValueError as exc:  # from __post_init__ or validate()
        raise ConfigError(_at(path, str(exc))) from exc
    return obj


def to_dict(obj: object) -> dict[str, Any]:
    """Convert a dataclass instance to plain YAML-safe data (tuples to lists, paths to str).

    Args:
        obj: a dataclass instance.

    Returns:
        A nested dict of ``bool``, ``int``, ``float``, ``str``, ``None``, lists and dicts.
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"to_dict expects a dataclass instance, got {type(obj).__name__}")
    return _plain(obj)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = _hints(type(value))
        out = {}
        for f in dataclasses.fields(value):
            tagged = _tagged(hints[f.name])
            item = getattr(value, f.name)
            out[f.name] = _plain(tagged.dump(item) if tagged is not None else item)
        return out
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    for kind in (bool, int, float, str):  # also unwraps subclasses such as numpy scalars
        if isinstance(value, kind):
            return kind(value)
    if value is None:
        return None
    raise TypeError(f"cannot convert {type(value).__name__} {value!r} to YAML")


def _split_override(override: str) -> tuple[list[str], Any]:
    key, sep, text = override.partition("=")
    keys = key.strip().split(".")
    if not sep or not all(k.strip() for k in keys):
        raise ConfigError(f"invalid override '{override}' (expected 'a.b.c=value')")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{override}': invalid YAML value ({exc})") from exc
    return [k.strip() for k in keys], value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a deep copy of ``data`` with ``"a.b.c=value"`` overrides applied.

    Values are parsed with ``yaml.safe_load``; missing intermediate mappings are created.
    Type checking is left to :func:`from_dict`.

    Raises:
        ConfigError: on a malformed override or one that descends into a non-mapping value.
    """
    result = copy.deepcopy(dict(data))
    for override in overrides:
        keys, value = _split_override(override)
        node = result
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                dotted = ".".join(keys[: depth + 1])
                raise ConfigError(f"override '{override}': '{dotted}' is not a mapping")
            node = child
        node[keys[-1]] = value
    return result


def check_override_path(cls: type, override: str, data: Mapping[str, Any]) -> None:
    """Raise if the dotted key of ``override`` names no field of the schema ``cls``; a
    :class:`Tagged` field is checked against the schema its value in ``data`` names."""
    hint: Any = cls
    node: Any = data
    keys, _ = _split_override(override)
    for depth, key in enumerate(keys):
        tagged = _tagged(hint)
        if tagged is not None:
            hint = tagged.schema(node)
            if hint is None:  # the value names no known schema: parsing will say why
                return
        if typing.get_origin(hint) is Annotated:
            hint = typing.get_args(hint)[0]
        if typing.get_origin(hint) in (Union, types.UnionType):
            hint = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
        path = ".".join(keys[:depth])
        if dataclasses.is_dataclass(hint):
            names = [f.name for f in dataclasses.fields(hint) if f.init]
            if key not in names and not (tagged is not None and key == tagged.key):
                raise ConfigError(f"override '{override}': {_unknown_key(key, path, names)}")
            hint = _hints(hint).get(key, Any)  # type: ignore[arg-type]
        elif typing.get_origin(hint) is dict:
            hint = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        elif hint is not Any:
            raise ConfigError(f"override '{override}': '{path}' is not a section")
        node = node.get(key) if isinstance(node, Mapping) else None


def load_yaml(
    cls: type[T],
    path: str | Path,
    overrides: Sequence[str] = (),
    apply: Callable[[dict[str, Any], Sequence[str]], dict[str, Any]] | None = None,
) -> T:
    """Load a YAML file strictly into the dataclass ``cls``, applying overrides.

    Args:
        cls: the dataclass schema.
        path: the YAML file (``yaml.safe_load``); an empty file means all defaults.
        overrides: ``"a.b.c=value"`` strings applied after loading, in order.
        apply: applies the overrides to the data (default :func:`apply_overrides`).

    Raises:
        ConfigError: with the file name, on invalid YAML or any error of :func:`from_dict`.
        OSError: if the file cannot be read.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from exc
    data = {} if data is None else data
    try:
        if not isinstance(data, Mapping):
            raise ConfigError(f"top level must be a mapping, got {type(data).__name__}")
        applied = (apply or apply_overrides)(dict(data), overrides)
        for override in overrides:
            check_override_path(cls, override, applied)
        return from_dict(cls, applied)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


class _Dumper(yaml.SafeDumper):
    """Safe dumper writing lists of scalars in flow style (``[1, 8, 15]``)."""


def _represent_list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, (list, dict)) for v in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dumps_yaml(obj: object) -> str:
    """Serialize a dataclass instance to YAML text (field order kept)."""
    return yaml.dump(to_dict(obj), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def dump_yaml(obj: object, path: str | Path) -> None:
    """Write a dataclass instance to a YAML file atomically (temp file + ``os.replace``)."""
    with atomic_file(path, "w", encoding="utf-8") as file:
        file.write(dumps_yaml(obj))
