"""Key layout of the original HCFlow checkpoints (``flow.layers.<i>.*`` trunk part).

Trunk steps are ``flow.layers.<i>.{actnorm, permute, affine.f}``; ``affine.f`` is an FCN
(``conv1``/``conv2`` with ActNorm, ``conv3`` zero-initialized: our ``net.0/2/4``) in the SR
models and a dense block (``conv1`` ... ``conv5``, the same names here) in the rescaling
model, whose Haar squeezes store their filters (``haar_weights``). Each level's conditional
flow is ``flow.level<l>_condFlow.{conv_first, RRDB_trunk0, RRDB_trunk1, trunk_conv1,
additional_flow_steps.<s>, f}`` (our ``features.*``, ``steps.<s>``, ``prior``).
"""

from __future__ import annotations

import re

_FCN = {"conv1": "0", "conv2": "2", "conv3": "4"}
_TRUNK = re.compile(r"^flow\.layers\.(\d+)\.(.*)$")


def trunk_key_to_ours(key: str, fcn: bool) -> str | None:
    """Our key (relative to :class:`~srflow.models.hcflow_trunk.HCFlowTrunk`) for an original
    trunk key, or ``None`` if ``key`` is not a trunk key. ``fcn``: the sub-networks are FCNs
    (SR models) rather than dense blocks (rescaling)."""
    m = _TRUNK.match(key)
    if not m:
        return None
    index, rest = m.groups()
    if rest.startswith("affine.f."):
        conv, _, tail = rest.removeprefix("affine.f.").partition(".")
        rest = f"affine.net.{_FCN[conv] if fcn else conv}.{tail}"
    return f"layers.{index}.{rest}"


_LEVEL = re.compile(r"^flow\.level(\d+)_condFlow\.(.*)$")
_LEVEL_PARTS = [
    (re.compile(r"^conv_first\."), "features.conv_first."),
    (re.compile(r"^RRDB_trunk([01])\.(\d+)\.RDB(\d)\."), r"features.trunk\1.\2.rdb\3."),
    (re.compile(r"^trunk_conv1\."), "features.trunk_conv."),
    (re.compile(r"^f\."), "prior."),
]


def level_key_to_ours(key: str) -> tuple[int, str] | None:
    """``(level, our key)`` (relative to
    :class:`~srflow.models.hcflow_conditional.ConditionalLevelFlow`) for an original
    conditional-flow key, or ``None`` if ``key`` is not one."""
    m = _LEVEL.match(key)
    if not m:
        return None
    level, rest = int(m.group(1)), m.group(2)
    if rest.startswith("additional_flow_steps."):
        inner = "flow.layers." + rest.removeprefix("additional_flow_steps.")
        step = trunk_key_to_ours(inner, fcn=True)
        assert step is not None
        return level, "steps." + step.removeprefix("layers.")
    for pattern, repl in _LEVEL_PARTS:
        if pattern.match(rest):
            return level, pattern.sub(repl, rest, count=1)
    return level, rest


def to_ours(state_dict: dict, fcn: bool) -> dict:
    """An original HCFlow state dict (keys canonical) renamed to
    :class:`~srflow.models.hcflow.HCFlow`'s keys; unknown keys are kept as they are, so a
    strict load names them."""
    out = {}
    for key, value in state_dict.items():
        trunk = trunk_key_to_ours(key, fcn)
        level = level_key_to_ours(key)
        if trunk is not None:
            key = "trunk." + trunk
        elif level is not None:
            key = f"levels.{level[0]}.{level[1]}"
        out[key] = value
    return out


_FCN_BACK = {v: k for k, v in _FCN.items()}
_LEVEL_PARTS_BACK = [
    (re.compile(r"^features\.conv_first\."), "conv_first."),
    (re.compile(r"^features\.trunk([01])\.(\d+)\.rdb(\d)\."), r"RRDB_trunk\1.\2.RDB\3."),
    (re.compile(r"^features\.trunk_conv\."), "trunk_conv1."),
    (re.compile(r"^prior\."), "f."),
]


def _step_to_original(rest: str, fcn: bool) -> str:
    if rest.startswith("affine.net."):
        conv, _, tail = rest.removeprefix("affine.net.").partition(".")
        rest = f"affine.f.{_FCN_BACK[conv] if fcn else conv}.{tail}"
    return rest


def to_original_key(key: str, fcn: bool) -> str:
    """Inverse of :func:`to_ours` for one key."""
    m = re.match(r"^trunk\.layers\.(\d+)\.(.*)$", key)
    if m:
        return f"flow.layers.{m.group(1)}.{_step_to_original(m.group(2), fcn)}"
    m = re.match(r"^levels\.(\d+)\.(.*)$", key)
    if not m:
        return key
    prefix, rest = f"flow.level{m.group(1)}_condFlow.", m.group(2)
    step = re.match(r"^steps\.(\d+)\.(.*)$", rest)
    if step:
        inner = _step_to_original(step.group(2), fcn=True)
        return f"{prefix}additional_flow_steps.{step.group(1)}.{inner}"
    for pattern, repl in _LEVEL_PARTS_BACK:
        if pattern.match(rest):
            return prefix + pattern.sub(repl, rest, count=1)
    return prefix + rest
