"""How super-resolution outputs are named, the one rule the CLI and the app share."""

from __future__ import annotations


def output_name(stem: str, suffix: str, temperature: float, index: int, fmt: str) -> str:
    """``photo_sr_t0.80_s00.png``: the input's stem, the suffix, the temperature and the sample
    index.

    Example:
        >>> output_name("photo", "_sr", 0.8, 0, "png")
        'photo_sr_t0.80_s00.png'
    """
    return f"{stem}{suffix}_t{temperature:.2f}_s{index:02d}.{fmt}"
