"""Key layout of the original SRFlow checkpoints and detection of their configuration."""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from srflow.config.schema import EncoderConfig, FlowConfig, ModelConfig

#: Original key pattern -> our key (applied in order, first match wins).
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^RRDB\.RRDB_trunk\.(\d+)\.RDB(\d)\."), r"encoder.trunk.\1.rdb\2."),
    (re.compile(r"^RRDB\.HRconv\."), "encoder.hr_conv."),
    (re.compile(r"^RRDB\."), "encoder."),
    (
        re.compile(r"^flowUpsamplerNet\.layers\.(\d+)\.affine\.fFeatures\."),
        r"flow.layers.\1.injector.net.",
    ),
    (
        re.compile(r"^flowUpsamplerNet\.layers\.(\d+)\.affine\.fAffine\."),
        r"flow.layers.\1.coupling.net.",
    ),
    (re.compile(r"^flowUpsamplerNet\.layers\.(\d+)\.conv\."), r"flow.layers.\1.prior."),
    (re.compile(r"^flowUpsamplerNet\."), "flow."),
]  # fmt: skip
_UPCONV = re.compile(r"^encoder\.upconv(\d+)\.")
#: The original builds one convolution that its forward never calls.
UNUSED_PREFIX = "flowUpsamplerNet.f."
#: Stacked RRDB blocks of the published configurations, keyed by (blocks, stacked count).
KNOWN_STACKS = {(23, 4): (1, 8, 15, 22), (8, 4): (1, 3, 5, 7)}


def strip_wrappers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop a ``module.`` (DataParallel) prefix and the unused ``flowUpsamplerNet.f`` conv."""
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if not key.startswith(UNUSED_PREFIX):
            out[key] = value
    return out


def rename_official_key(key: str) -> str:
    """Map one original key to ours (unknown keys are returned unchanged)."""
    for pattern, repl in _RULES:
        if pattern.match(key):
            key = pattern.sub(repl, key, count=1)
            break
    up = _UPCONV.match(key)
    if up:
        key = f"encoder.upconvs.{int(up.group(1)) - 1}." + key[up.end() :]
    return key


def is_official_layout(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether the keys look like an original SRFlow checkpoint."""
    keys = [k.removeprefix("module.") for k in state_dict]
    return any(k.startswith("RRDB.") for k in keys) and any(
        k.startswith("flowUpsamplerNet.") for k in keys
    )


def _classify_layers(keys: list[str]) -> dict[int, str]:
    """Layer index -> squeeze / transition / step / split, from which sub-modules have keys."""
    parts: dict[int, set[str]] = {}
    for key in keys:
        m = re.match(r"^flowUpsamplerNet\.layers\.(\d+)\.(\w+)", key)
        if m:
            parts.setdefault(int(m.group(1)), set()).add(m.group(2))
    kinds = {}
    for index in range(max(parts, default=-1) + 1):
        found = parts.get(index, set())
        kinds[index] = (
            "step" if "affine" in found
            else "split" if "conv" in found
            else "transition" if "actnorm" in found
            else "squeeze"
        )  # fmt: skip
    return kinds


def detect_official_config(
    state_dict: Mapping[str, Tensor], stacked_blocks: tuple[int, ...] | None = None
) -> ModelConfig:
    """Infer the model configuration of an original checkpoint from its keys and shapes.

    Args:
        state_dict: the original state dict (``module.`` prefix allowed).
        stacked_blocks: the stacked RRDB block indices, needed only when the keys cannot tell
            them (any configuration other than the published ones or all-blocks stacking).

    Raises:
        ValueError: if the layout is not an SRFlow layout or is ambiguous.
    """
    sd = strip_wrappers(state_dict)
    if not is_official_layout(sd):
        raise ValueError("not an original SRFlow state dict (no RRDB.* / flowUpsamplerNet.* keys)")
    nf = sd["RRDB.conv_first.weight"].shape[0]
    gc = sd["RRDB.RRDB_trunk.0.RDB1.conv1.weight"].shape[0]
    nb = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("RRDB.RRDB_trunk."))
    scale = 2 ** sum(1 for k in sd if re.match(r"^RRDB\.upconv\d+\.weight$", k))
    kinds = _classify_layers(list(sd))
    levels, splits, steps, transitions = 0, [], [], []
    for index in sorted(kinds):
        kind = kinds[index]
        if kind == "squeeze":
            levels += 1
            steps.append(0)
            transitions.append(0)
        elif kind == "split":
            splits.append(levels)
        elif kind == "step":
            steps[-1] += 1
        else:
            transitions[-1] += 1
    if not steps or len(set(steps)) != 1 or len(set(transitions)) != 1:
        raise ValueError(f"irregular flow layout: steps {steps}, transitional {transitions}")
    first_step = next(i for i, k in kinds.items() if k == "step")
    injector_in = sd[f"flowUpsamplerNet.layers.{first_step}.affine.fFeatures.0.weight"]
    hidden = injector_in.shape[0]
    n_stacked = injector_in.shape[1] // nf - 1
    if stacked_blocks is None:
        stacked_blocks = KNOWN_STACKS.get((nb, n_stacked))
        if stacked_blocks is None and n_stacked == nb:
            stacked_blocks = tuple(range(nb))
        if stacked_blocks is None:
            raise ValueError(
                f"cannot tell which {n_stacked} of {nb} RRDB blocks are stacked; "
                "pass stacked_blocks explicitly"
            )
    return ModelConfig(
        scale=scale,
        encoder=EncoderConfig(nf, gc, nb, tuple(stacked_blocks)),
        flow=FlowConfig(levels, steps[0], transitions[0], tuple(splits), hidden),
    )
