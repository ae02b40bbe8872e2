"""Key layout shared by the original SRFlow, SRFlow-DA and NCSR checkpoints (RRDB +
FlowUpsamplerNet).

All store ``RRDB.*`` (the encoder) and ``flowUpsamplerNet.layers.<i>.*`` (one flat layer list;
squeezes have no parameters but take an index). SRFlow-DA differs in the coupling sub-networks,
which it renames itself (:class:`SubnetNaming`); NCSR adds ``affine.fAffine_std.*`` to every
conditional step (our ``noise.net.*``). This module maps the keys both ways and reads the
flow's structure from them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import Tensor

#: (original key prefix, our key prefix); ``#`` stands for a number kept as it is. The first
#: matching pair wins; the sub-networks are renamed before (see :data:`SubnetNaming`).
_PREFIXES = [
    ("RRDB.RRDB_trunk.#.RDB#.", "encoder.trunk.#.rdb#."),
    ("RRDB.HRconv.", "encoder.hr_conv."),
    ("RRDB.", "encoder."),
    ("flowUpsamplerNet.layers.#.affine.fAffine_std.", "flow.layers.#.noise.net."),
    ("flowUpsamplerNet.layers.#.affine.fFeatures.", "flow.layers.#.injector.net."),
    ("flowUpsamplerNet.layers.#.affine.fAffine.", "flow.layers.#.coupling.net."),
    ("flowUpsamplerNet.layers.#.conv.", "flow.layers.#.prior."),
    ("flowUpsamplerNet.", "flow."),
]


def _rule(source: str, target: str) -> tuple[re.Pattern[str], str]:
    pattern = "^" + re.escape(source).replace(r"\#", r"(\d+)")
    first, *rest = target.split("#")
    return re.compile(pattern), first + "".join(
        rf"\g<{i}>{part}" for i, part in enumerate(rest, start=1)
    )


_TO_OURS = [_rule(original, ours) for original, ours in _PREFIXES]
_TO_ORIGINAL = [_rule(ours, original) for original, ours in _PREFIXES]
#: The original builds one convolution that its forward never calls.
UNUSED_PREFIX = "flowUpsamplerNet.f."
#: Matches the sub-network part of an original key: (prefix, module name, rest).
SUBNET_KEY = re.compile(
    r"^(flowUpsamplerNet\.layers\.\d+\.affine\.)(fAffine\d*|fFeatures\d*)\.(.*)$"
)
#: Matches the sub-network part of our key: (prefix, net, rest).
OUR_SUBNET_KEY = re.compile(r"^(flow\.layers\.\d+\.(?:injector|coupling)\.net\.)(.*)$")

SubnetNaming = Callable[[str, str], str]
"""Renames the part of a sub-network key after its module name (``fAffine*`` or
``fFeatures*`` and the rest, e.g. ``("fAffine1", "0.weight")``) to ours (``first.weight``)."""


def without_unused(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop the unused ``flowUpsamplerNet.f`` convolution (keys canonical)."""
    return {k: v for k, v in state_dict.items() if not k.startswith(UNUSED_PREFIX)}


def is_flow_layout(keys: list[str]) -> bool:
    """Whether the (canonical) keys look like an original SRFlow-layout checkpoint."""
    return any(k.startswith("RRDB.") for k in keys) and any(
        k.startswith("flowUpsamplerNet.") for k in keys
    )


def to_our_key(key: str, subnet: SubnetNaming | None = None) -> str:
    """Map one original key to ours (unknown keys are returned unchanged)."""
    m = SUBNET_KEY.match(key)
    if m and subnet is not None:
        module = "fFeatures" if m.group(2).startswith("fFeatures") else "fAffine"
        key = f"{m.group(1)}{module}.{subnet(m.group(2), m.group(3))}"
    for pattern, repl in _TO_OURS:
        if pattern.match(key):
            key = pattern.sub(repl, key, count=1)
            break
    up = re.match(r"^encoder\.upconv(\d+)\.", key)
    if up:
        key = f"encoder.upconvs.{int(up.group(1)) - 1}." + key[up.end() :]
    return key


def to_original_key(key: str, subnet: Callable[[str], tuple[str, str]] | None = None) -> str:
    """Map one of our keys to the original's; ``subnet`` maps the part after ``net.`` to
    ``(module suffix, rest)``, e.g. ``"first.weight" -> ("1", "0.weight")``."""
    up = re.match(r"^encoder\.upconvs\.(\d+)\.", key)
    if up:
        key = f"encoder.upconv{int(up.group(1)) + 1}." + key[up.end() :]
    m = OUR_SUBNET_KEY.match(key)
    suffix = ""
    if m and subnet is not None:
        suffix, rest = subnet(m.group(2))
        key = m.group(1) + rest
    for pattern, repl in _TO_ORIGINAL:
        if pattern.match(key):
            key = pattern.sub(repl, key, count=1)
            break
    if suffix:
        key = re.sub(r"\.affine\.(fFeatures|fAffine)\.", rf".affine.\g<1>{suffix}.", key, count=1)
    return key


@dataclass(frozen=True)
class FlowLayout:
    """The flow structure read from original keys (see :func:`read_flow_layout`)."""

    levels: int
    steps_per_level: int
    transitional_steps: int
    split_levels: tuple[int, ...]
    split_after_steps: tuple[int, ...]
    squeeze_factor: int
    first_step: int


def _layer_kinds(keys: list[str]) -> list[str]:
    """Layer index -> squeeze / transition / step / split, from which sub-modules have keys."""
    parts: dict[int, set[str]] = {}
    for key in keys:
        m = re.match(r"^flowUpsamplerNet\.layers\.(\d+)\.(\w+)", key)
        if m:
            parts.setdefault(int(m.group(1)), set()).add(m.group(2))
    kinds = []
    for index in range(max(parts, default=-1) + 1):
        found = parts.get(index, set())
        kinds.append(
            "step" if "affine" in found
            else "split" if "conv" in found
            else "transition" if "actnorm" in found
            else "squeeze"
        )  # fmt: skip
    return kinds


def read_flow_layout(sd: Mapping[str, Tensor]) -> FlowLayout:
    """Levels, steps, splits and squeeze factor of an original flow (wrappers stripped).

    Raises:
        ValueError: if the layout is irregular (levels that differ in structure).
    """
    kinds = _layer_kinds(list(sd))
    per_level: list[dict[str, list[int]]] = []
    split_levels = []
    for kind in kinds:
        if kind == "squeeze":
            per_level.append({"steps": [0], "transitions": [0], "mid_splits": []})
            continue
        if not per_level:
            raise ValueError("the flow does not start with a squeeze")
        level = per_level[-1]
        if kind == "step":
            level["steps"][0] += 1
        elif kind == "transition":
            level["transitions"][0] += 1
        else:
            level["mid_splits"].append(level["steps"][0] - 1)
    for number, level in enumerate(per_level, start=1):
        if level["mid_splits"] and level["mid_splits"][-1] == level["steps"][0] - 1:
            level["mid_splits"].pop()
            split_levels.append(number)
    shapes = {(lv["steps"][0], lv["transitions"][0], tuple(lv["mid_splits"])) for lv in per_level}
    if len(shapes) != 1 or not per_level:
        raise ValueError(
            f"irregular flow layout: per level (steps, transitional, splits) {shapes}"
        )
    steps, transitions, mid = shapes.pop()
    if steps == 0:
        raise ValueError("the flow has no conditional steps")
    channels = sd["flowUpsamplerNet.layers.1.actnorm.bias"].shape[1]
    factor = round((channels / 3) ** 0.5)
    if 3 * factor * factor != channels:
        raise ValueError(f"first flow layer has {channels} channels: not 3 times a square")
    return FlowLayout(
        len(per_level), steps, transitions, tuple(split_levels), mid, factor,
        kinds.index("step"),
    )  # fmt: skip


def read_encoder_layout(sd: Mapping[str, Tensor]) -> tuple[int, int, int, int]:
    """``(features, growth, blocks, scale)`` of the original RRDB encoder."""
    nf = sd["RRDB.conv_first.weight"].shape[0]
    gc = sd["RRDB.RRDB_trunk.0.RDB1.conv1.weight"].shape[0]
    nb = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("RRDB.RRDB_trunk."))
    scale = 2 ** sum(1 for k in sd if re.match(r"^RRDB\.upconv\d+\.weight$", k))
    return nf, gc, nb, scale
