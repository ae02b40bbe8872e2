"""How super-resolution outputs are named, the one rule the CLI and the app share."""

from __future__ import annotations

import re
from pathlib import Path


def output_name(stem: str, suffix: str, temperature: float, index: int, fmt: str) -> str:
    """``photo_sr_t0.80_s00.png``: the input's stem, the suffix, the temperature and the sample
    index.

    Example:
        >>> output_name("photo", "_sr", 0.8, 0, "png")
        'photo_sr_t0.80_s00.png'
    """
    return f"{stem}{suffix}_t{temperature:.2f}_s{index:02d}.{fmt}"


#: ``NAME[SUFFIX]_t0.80_s00``: what :func:`output_name` appends to an input's stem.
_OUTPUT_TAIL = re.compile(r"^(?P<base>.+?)_t\d+\.\d{2}_s\d{2,}$")
#: A suffix such as ``_sr`` (``--suffix``) between the input's stem and the tail.
_SUFFIX = re.compile(r"^(?P<base>.+)_[A-Za-z]+$")


def source_stems(stem: Path) -> list[Path]:
    """The input stems an output stem may come from, most specific first: the stem itself,
    then without :func:`output_name`'s ``_t0.80_s00`` tail, then also without its suffix.

    Example:
        >>> [str(p) for p in source_stems(Path("a/photo_sr_t0.80_s01"))]
        ['a/photo_sr_t0.80_s01', 'a/photo_sr', 'a/photo']
    """
    found = [stem]
    tail = _OUTPUT_TAIL.match(stem.name)
    if tail:
        base = tail["base"]
        found.append(stem.with_name(base))
        suffix = _SUFFIX.match(base)
        if suffix:
            found.append(stem.with_name(suffix["base"]))
    return found


def is_output_name(stem: str) -> bool:
    """Whether a file stem ends as :func:`output_name`'s do (``_t0.80_s00``), whatever the
    suffix: ``srflow sr DIR -o DIR`` leaves such files out of its inputs.

    Example:
        >>> is_output_name("photo_up_t0.80_s00"), is_output_name("photo")
        (True, False)
    """
    return _OUTPUT_TAIL.match(stem) is not None
