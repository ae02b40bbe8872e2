"""Key layout of the original HCFlow checkpoints (``flow.layers.<i>.*`` trunk part).

Trunk steps are ``flow.layers.<i>.{actnorm, permute, affine.f}``; ``affine.f`` is an FCN
(``conv1``/``conv2`` with ActNorm, ``conv3`` zero-initialized: our ``net.0/2/4``) in the SR
models and a dense block (``conv1`` ... ``conv5``, the same names here) in the rescaling
model, whose Haar squeezes store their filters (``haar_weights``). The conditional flows
(``flow.level<l>_condFlow.*``) follow with the HCFlow model.
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
