"""The one model contract: what every family's model offers everything above ``models/``.

A model of any family is a conditional normalizing flow ``p(HR | LR)``. It prepares what
depends on the LR alone once per image (:meth:`FlowSR.prepare`), tells the shapes of its
latents and the flow level of each (:meth:`FlowSR.latent_shapes`, :meth:`FlowSR.latent_levels`),
maps an HR image to its latents and likelihood (:meth:`FlowSR.encode`, one :class:`Encoding`
type for every family) and latents back to an HR image (:meth:`FlowSR.decode`). Drawing latents
at a temperature and sampling are implemented once, here, on top of those
(:mod:`srflow.models.sampling`). What a family cannot do is declared in its
:class:`Capabilities` and refused in one line (:meth:`FlowSR.require`), never discovered by
type checks above ``models/``.

Inference, tiling, memory planning, the latent tools, evaluation, training, the app and the
CLI use this contract only.
"""

from __future__ import annotations

import abc
import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from srflow.data.resize import imresize
from srflow.data.transforms import pad_to_multiple, quantize_8bit
from srflow.models import sampling
from srflow.models.temperature import Temperature, latent_temperatures

if TYPE_CHECKING:
    from srflow.models.twin import SamplingTwin

LN2 = math.log(2.0)


class ModelConfig(Protocol):
    """What every family's configuration tells its users."""

    @property
    def scale(self) -> int:
        """The super-resolution factor."""
        ...

    @property
    def size_multiple_lr(self) -> int:
        """LR sides must be multiples of this (inputs are padded to it)."""
        ...


class CapabilityError(ValueError):
    """A model lacks what a caller asked of it; the message says why in one line."""


@dataclass(frozen=True)
class Capabilities:
    """What a family's model can do beyond the contract's core.

    Attributes:
        local_receptive_field: a change of the latents at some positions changes the decoded
            image only near them (:meth:`FlowSR.receptive_region`): region resampling can
            promise the rest of the image stays bit for bit.
        downscale: the flow maps an HR image to an LR image (:meth:`FlowSR.downscale`).
        rescaling: trained for invertible rescaling: its LR is its own 8-bit downscale, which
            it decodes back to the HR (validation and evaluation sample from that LR).
        encoder_pretraining: an encoder with its own SR output, pre-trained with an L1 loss
            and frozen for a while (``train.l1_pretrain_steps``, ``encoder_freeze_fraction``).
        noise_level: conditioned on a noise level (NCSR): ``prepare(lr, noise_level=sigma)``
            conditions its samples on a constant noise map ``sigma``.
        reasons: for each capability the model lacks, why (the end of a refusal's line).
    """

    local_receptive_field: bool = False
    downscale: bool = False
    rescaling: bool = False
    encoder_pretraining: bool = False
    noise_level: bool = False
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Encoding:
    """An HR image's latents and likelihood, the same type for every family (each family
    returns a subclass that also holds its own terms, e.g. SRFlow's split log-densities).

    Attributes:
        latents: the latent tensors in encode order (:meth:`FlowSR.latent_levels` gives the
            flow level of each).
        lr: the LR the latents decode with (the given LR; HCFlow's own LR ``y``).
        pixels: ``H * W`` of the HR image.
    """

    latents: list[Tensor]
    lr: Tensor
    pixels: int

    @property
    def log_prob(self) -> Tensor:
        """Continuous ``log p(hr | lr)`` in nats, ``(B,)`` (no dequantization term)."""
        raise NotImplementedError

    @property
    def original_nll(self) -> Tensor:
        """The figure the original implementation reports, ``(B,)`` (bits per HR *pixel*,
        dequantization included where the original adds it)."""
        raise NotImplementedError

    @property
    def bits_per_dim(self) -> Tensor:
        """Negative log-likelihood in bits per dimension (``3 * H * W`` dimensions)."""
        return -self.log_prob / (LN2 * 3 * self.pixels)


class Conditioning:
    """What decoding needs from an LR image alone, computed once per image
    (:meth:`FlowSR.prepare`): decode as many batches, temperatures and calls from it as you like.

    Attributes:
        lr: the (padded) LR images ``(B, 3, h, w)``, each once.
        features: the family's per-level tensors computed from ``lr`` (each image once).
        keep: whether a model's sampling twin may keep its conditioning-only terms in
            :attr:`cache` between decodes (``False`` for a single decode: nothing to reuse).
        noise_level: the noise level a noise-conditioned family (NCSR) conditions on: a
            number (a constant map; 0 is the original's test-time zero map), a tensor map, or
            ``None`` (no noise-conditioned part); ``None`` for the other families.
        cache: terms a sampling twin computed from :attr:`features` (see
            :mod:`srflow.sampling.terms`); empty for the reference decode.
    """

    def __init__(
        self, lr: Tensor, features: list[Tensor], keep: bool = True,
        noise_level: float | Tensor | None = None,
    ) -> None:  # fmt: skip
        self.lr = lr
        self.features = features
        self.keep = keep
        self.noise_level = noise_level
        self.cache: dict[tuple[int, str], object] = {}

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> Tensor:
        return self.features[index]


@contextlib.contextmanager
def seeded_init(generator: torch.Generator | None) -> Iterator[None]:
    """Within this context, layers that initialise their weights from the global random
    generator (PyTorch's default initialisers) draw from a stream seeded by ``generator``
    instead; the global generator is left as it was. ``None``: the global generator as is.

    Example:
        >>> make = lambda: nn.Linear(2, 2).weight.detach().clone()
        >>> with seeded_init(torch.Generator().manual_seed(1)):
        ...     a = make()
        >>> with seeded_init(torch.Generator().manual_seed(1)):
        ...     b = make()
        >>> torch.equal(a, b)
        True
    """
    if generator is None:
        yield
        return
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class FlowSR(nn.Module, abc.ABC):
    """A conditional flow that super-resolves: ``p(HR | LR)`` sampled through latents.

    Images are float tensors in ``[0, 1]``: LR ``(B, 3, h, w)`` with sides a multiple of
    ``config.size_multiple_lr``, HR ``(B, 3, scale*h, scale*w)``. The temperature is the
    standard deviation of the latents (SRFlow's "heat").
    """

    config: Any
    #: What this family's models can do (a subclass may make it a property of its config).
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: The temperature its training decoded samples at, when the run had such a loss term
    #: (kept in the model file): ``srflow rescale up`` decodes at it by default.
    trained_temperature: float | None = None
    #: A name the model file gives it (``srflow export --name``), shown by every command
    #: in place of "custom configuration".
    name: str | None = None

    # --- structure -------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def flow_levels(self) -> int:
        """The number of flow levels ``L``."""

    @abc.abstractmethod
    def latent_levels(self) -> list[int]:
        """Flow level (1-based) of each latent tensor, in encode order."""

    @abc.abstractmethod
    def latent_shapes(self, lr: Tensor, n: int = 1) -> list[tuple[int, ...]]:
        """Shapes of the latents (encode order) of ``n`` samples of each image in ``lr``."""

    def latent_draw_order(self) -> list[int]:
        """The order in which the original draws the latent tensors (indices in encode
        order); seeded sampling draws in this order."""
        return list(range(len(self.latent_levels())))

    def latent_temperatures(self, temperature: Temperature) -> list[float]:
        """One temperature per latent tensor from one number, one per flow level or one per
        latent tensor (:func:`~srflow.models.temperature.latent_temperatures`)."""
        return latent_temperatures(self.latent_levels(), self.flow_levels, temperature)

    # --- the flow ---------------------------------------------------------------------------

    @abc.abstractmethod
    def prepare(
        self, lr: Tensor, keep: bool = True, *, noise_level: float | None = None
    ) -> Conditioning:
        """What depends on ``lr`` alone, for many decodes (``keep=False``: for one);
        ``noise_level`` needs :attr:`Capabilities.noise_level` (:meth:`check_noise_level`)."""

    @abc.abstractmethod
    def encode(self, hr: Tensor, lr: Tensor) -> Encoding:
        """The latents and likelihood of ``hr`` given ``lr``."""

    @abc.abstractmethod
    def decode(
        self, conditioning: Conditioning | Tensor, latents: list[Tensor], *, logdet: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """``(hr, logdet)`` from latents (encode order) and a :class:`Conditioning` (or an LR,
        prepared for this one decode); the latents may hold ``k`` samples per image
        (batch ``k * B``, sample-major). The log-det is the original's reverse log-det;
        ``logdet=False`` gives ``None`` in its place. ``hr`` is not clamped."""

    def log_prob(self, hr: Tensor, lr: Tensor) -> Tensor:
        """Continuous ``log p(hr | lr)`` in nats, ``(B,)``."""
        return self.encode(hr, lr).log_prob

    # --- sampling, once for every family ----------------------------------------------------

    def sample_latents(
        self, shapes: list[tuple[int, ...]], temperature: Temperature,
        generator: torch.Generator | None = None, *, dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> list[Tensor]:  # fmt: skip
        """Latents ``N(0, T^2)`` of the given shapes, drawn in :meth:`latent_draw_order`;
        ``temperature`` as :meth:`latent_temperatures` takes it."""
        return sampling.sample_latents(
            shapes, self.latent_temperatures(temperature), self.latent_draw_order(),
            generator, dtype=dtype, device=device,
        )  # fmt: skip

    def sampling_twin(self) -> FlowSR | SamplingTwin:
        """The model to sample with: a :class:`SamplingTwin` that shares this model's weights
        and decodes the same images faster without gradients (folded and packed weights, kept
        conditioning-only terms), or the model itself where the family has no faster path.
        Either offers :meth:`prepare`, :meth:`decode`, :meth:`latent_shapes` and
        :meth:`sample_latents` (what :mod:`srflow.models.sampling` draws and decodes with)."""
        return self

    @torch.no_grad()
    def sample(
        self, lr: Tensor, temperature: Temperature = 0.8, n: int = 1,
        generator: torch.Generator | None = None, *, batch_size: int | None = None,
        noise_level: float | None = None,
    ) -> Tensor:  # fmt: skip
        """``n`` samples of each LR image, ``(n, B, 3, H, W)`` clamped to ``[0, 1]``.

        The conditioning is prepared once; latents are drawn sample by sample (so the result
        for a ``generator`` state does not depend on ``batch_size``) and decoded ``batch_size``
        samples at a time (default: all). Diverged values issue a
        :class:`~srflow.divergence.DivergenceWarning`. ``noise_level`` as :meth:`prepare`.
        """
        return sampling.sample(self.sampling_twin(), lr, temperature, n, generator, batch_size,
                               noise_level)  # fmt: skip

    # --- what a checkpoint holds besides the weights -----------------------------------------

    def checkpoint_metadata(self) -> dict[str, str]:
        """Text a checkpoint stores besides the weights and the config (e.g. SRFlow's
        calibrated inverse bounds); none by default."""
        return {}

    def load_checkpoint_metadata(self, metadata: Mapping[str, str]) -> None:
        """Take back what :meth:`checkpoint_metadata` stored.

        Raises:
            ValueError: malformed metadata (the loader names the file).
        """

    # --- capabilities -----------------------------------------------------------------------

    def require(self, capability: str, what: str) -> None:
        """Raise :class:`CapabilityError` (``what: reason``) unless the model can."""
        if not getattr(self.capabilities, capability):
            reason = self.capabilities.reasons.get(capability, f"the model has no {capability}")
            raise CapabilityError(f"{what}: {reason}")

    def check_noise_level(self, noise_level: float | None) -> None:
        """Refuse a noise level (one line) unless the model is conditioned on one; it must be a
        finite number from 0 to 1 (the image range)."""
        if noise_level is None:
            return
        self.require("noise_level", "a noise level")
        if not 0.0 <= float(noise_level) <= 1.0:
            raise ValueError(f"noise level must lie in [0, 1], got {noise_level}")

    def receptive_region(self, changed: list[Tensor]) -> Tensor:
        """HR pixels the decoded image may differ in when only the ``changed`` latent
        positions (one boolean ``(B, 1, h_i, w_i)`` per latent tensor) do: ``(B, 1, H, W)``.
        Needs :attr:`Capabilities.local_receptive_field`."""
        self.require("local_receptive_field", "region of a latent change")
        raise NotImplementedError

    def downscale(self, hr: Tensor) -> Tensor:
        """The flow's own LR of ``hr`` (unquantized). Needs :attr:`Capabilities.downscale`."""
        self.require("downscale", "downscaling")
        raise NotImplementedError

    def consistency_lr(self, hr: Tensor) -> Tensor:
        """The LR that an output ``hr`` ``(B, 3, H, W)`` of this model must give back (the LR
        check, :mod:`srflow.metrics.lr_check`): the MATLAB bicubic by ``1 / scale`` of the
        clamped output; a rescaling model (:attr:`Capabilities.rescaling`) its own HR -> LR
        flow, rounded to 8 bits as its LR files are."""
        s = self.config.scale
        x = hr.detach().float().clamp(0, 1)
        if not self.capabilities.rescaling:
            down = imresize(x, scale=1.0 / s)
            assert isinstance(down, Tensor)
            return down
        h, w = hr.shape[2:]
        weight = next(self.parameters())
        with torch.no_grad():
            padded = pad_to_multiple(x, s * self.config.size_multiple_lr).to(weight)
            y = quantize_8bit(self.downscale(padded).float()).to(hr.device)
        return y[:, :, : -(-h // s), : -(-w // s)]

    # --- deprecated spellings ---------------------------------------------------------------

    def condition(self, lr: Tensor, keep: bool = True) -> Conditioning:
        """Deprecated: :meth:`prepare`."""
        warnings.warn("model.condition(lr) is now model.prepare(lr)", DeprecationWarning, 2)
        return self.prepare(lr, keep)

    def conditioning(self, lr: Tensor) -> list[Tensor]:
        """Deprecated: ``prepare(lr).features``."""
        warnings.warn("model.conditioning(lr) is now model.prepare(lr).features",
                      DeprecationWarning, 2)  # fmt: skip
        return self.prepare(lr, keep=False).features


def as_conditioning(
    model: FlowSR, conditioning: Conditioning | Tensor, conds: Sequence[object] | None
) -> Conditioning:
    """What :meth:`FlowSR.decode` decodes from: a :class:`Conditioning` as it is, an LR
    prepared for one decode; ``conds`` is the deprecated keyword of earlier versions."""
    if conds is not None:
        warnings.warn("decode(lr, latents, conds=c) is now decode(c, latents)",
                      DeprecationWarning, 3)  # fmt: skip
        if isinstance(conds, Conditioning):
            return conds
        lr = conditioning.lr if isinstance(conditioning, Conditioning) else conditioning
        return Conditioning(lr, list(conds), keep=False)  # type: ignore[arg-type]
    if isinstance(conditioning, Conditioning):
        return conditioning
    return model.prepare(conditioning, keep=False)
