"""Detecting a diverged inverse flow ("exploding inverse"), the same way on every decoding path.

Dividing by affine scales near their lower bound can overflow at high temperatures, or on
inputs far from the training images: the decoded values then run far outside the image range.
Every function that decodes latents into an image (super-resolution, the latent tools,
rescaling) passes its raw output through :func:`check_decoded`, which issues one
:class:`DivergenceWarning` carrying the count per image. The CLI turns it into one line per
output file and exit status 3; library users can turn it into an error with
``warnings.simplefilter("error", srflow.DivergenceWarning)``.
"""

from __future__ import annotations

import warnings

from torch import Tensor

#: ``|value - 0.5|`` beyond which a decoded value counts as diverged (not mere overshoot).
DIVERGED_BEYOND = 10.0


class DivergenceWarning(UserWarning):
    """Some decoded values diverged (they are clamped to 0 or 1 in the written image).

    Attributes:
        diverged: diverged values of each image of the batch.
        values_per_image: values of one image (``3 * H * W``).
        temperature: the temperature that was decoded, when one was.
    """

    def __init__(
        self, diverged: tuple[int, ...], values_per_image: int,
        temperature: object | None = None,
    ) -> None:  # fmt: skip
        self.diverged = diverged
        self.values_per_image = values_per_image
        self.temperature = temperature
        super().__init__(self.describe())

    def fraction(self, index: int) -> float:
        """Share of the values of image ``index`` that diverged."""
        return self.diverged[index] / max(1, self.values_per_image)

    def describe(self, index: int | None = None) -> str:
        """One line: how much diverged (in image ``index``, or in the worst image)."""
        if index is None:
            index = max(range(len(self.diverged)), key=self.diverged.__getitem__)
        at = f" at temperature {self.temperature}" if self.temperature is not None else ""
        if self.temperature is None:
            hint = "a lower temperature, or an input closer to the training images, avoids it"
        elif _positive(self.temperature):
            hint = "a lower temperature avoids it"
        else:
            hint = "the input is far from the images the model was trained on"
        percent = 100 * self.fraction(index)
        if percent >= 0.005:
            share = f"{percent:.2f} % of the values"
        else:  # a handful of values: say how many rather than "0.00 %"
            count = self.diverged[index]
            share = f"{count} value{'s' if count != 1 else ''} (< 0.01 %)"
        return (
            f"{share} diverged{at} (the inverse flow overflowed; they are clamped to 0 or 1); "
            f"{hint}"
        )


def _positive(temperature: object | None) -> bool:
    if isinstance(temperature, int | float):
        return temperature > 0
    if isinstance(temperature, list | tuple):
        return any(_positive(t) for t in temperature)
    return False


def count_diverged(hr: Tensor) -> tuple[int, ...]:
    """Diverged values of each image of a batch ``(B, C, H, W)`` (NaN counts as diverged)."""
    far = ~(hr - 0.5).abs().le(DIVERGED_BEYOND)
    return tuple(int(n) for n in far.flatten(1).sum(dim=1))


def check_decoded(hr: Tensor, temperature: object | None = None) -> Tensor:
    """Warn (:class:`DivergenceWarning`) when values of ``hr`` diverged; returns ``hr``."""
    diverged = count_diverged(hr)
    if any(diverged):
        warn_diverged(diverged, hr[0].numel(), temperature)
    return hr


def warn_diverged(
    diverged: tuple[int, ...], values_per_image: int, temperature: object | None = None
) -> None:
    """Issue the :class:`DivergenceWarning` of counts gathered piecewise (tiled decoding)."""
    warnings.warn(DivergenceWarning(diverged, values_per_image, temperature), stacklevel=3)


class InconsistentOutputWarning(DivergenceWarning):
    """Some outputs do not downscale back to their input (LR-PSNR below the thresholds of
    :mod:`srflow.metrics.lr_check`): noise where the flow went wrong, although no value ran
    far out of range (calibrated inverse bounds clamp each layer, so the value check above
    does not see it). A :class:`DivergenceWarning`, so every caller that handles those (the
    CLI's exit status 3, the app's notes) handles these.

    Attributes:
        lines: per image of the batch, what is wrong with it (empty when it passed).
    """

    def __init__(self, lines: tuple[str, ...], temperature: object | None = None) -> None:
        self.lines = lines
        super().__init__(tuple(int(bool(line)) for line in lines), 1, temperature)

    def describe(self, index: int | None = None) -> str:
        """The line of image ``index`` (or of the first flagged image)."""
        if index is None:
            index = next(i for i, line in enumerate(self.lines) if line)
        at = f" at temperature {self.temperature}" if self.temperature is not None else ""
        return self.lines[index].replace("with its input:", f"with its input{at}:", 1)
