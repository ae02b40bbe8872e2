"""One browser tab's state: the input image, its samples and their latent codes, the
region-exploration history (for undo), and a cancel flag for long work.

A :class:`Session` lives in a ``gr.State``, so two tabs never see each other's results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from torch import Tensor

from srflow.data.image_io import LoadedImage
from srflow.latent.code import LatentCode
from srflow.models.contract import Conditioning


class AppError(ValueError):
    """A problem the user can fix (bad upload, bad option): shown as one line in the page."""


class Cancelled(Exception):
    """The user pressed Cancel while work was running."""


@dataclass
class Explored:
    """A sample being explored: its codes and images, the last being the current one.

    Attributes:
        index: which sample of the gallery it started from.
        codes: latent codes after each step (the first is the sample's own).
        images: decoded images ``(3, H, W)`` of ``codes``.
    """

    index: int
    codes: list[LatentCode]
    images: list[Tensor]

    @property
    def current(self) -> Tensor:
        """The image shown now."""
        return self.images[-1]


@dataclass
class Session:
    """What one tab has made so far.

    Attributes:
        model_path: the checkpoint this tab uses (``None``: the server's model).
        image: the uploaded LR image.
        name: the upload's file stem (for download names).
        samples: the gallery, ``(N, 3, H, W)`` in ``[0, 1]``.
        codes: the latent code of each sample.
        temperature: the sampling temperature (one value, or one per latent tensor).
        explored: the region-exploration history, if one was started.
        steps: region redraws so far (each takes the next seed).
        cancel: set by the Cancel button; long work stops at its next progress report.
        busy: long work is running (only then does Cancel set ``cancel``).
        prepared: the last decoded LR and its prepared conditioning
            (:meth:`conditioning_for`).
        key: the page's session id (set by the server when the tab first does work).
        released: why the server let go of the results (idle, room for other tabs, closed),
            or ``None``.
    """

    model_path: str | None = None
    image: LoadedImage | None = None
    name: str = "image"
    samples: Tensor | None = None
    codes: list[LatentCode] = field(default_factory=list)
    temperature: float | list[float] = 0.8
    explored: Explored | None = None
    steps: int = 0
    cancel: bool = False
    busy: bool = False
    prepared: tuple[Tensor, Conditioning] | None = None
    key: str | None = None
    released: str | None = None

    def clear_results(self) -> None:
        """Forget the samples and the exploration (a new image or model)."""
        self.samples, self.codes, self.explored, self.steps = None, [], None, 0
        self.prepared = None

    def conditioning_for(
        self, lr: Tensor, prepare: Callable[[Tensor], Conditioning]
    ) -> Conditioning:
        """``prepare(lr)`` (the model's prepared conditioning), kept for the last LR tensor
        it was made for: the codes of one gallery share their LR, so it is made once."""
        if self.prepared is None or self.prepared[0] is not lr:
            self.prepared = (lr, prepare(lr))
        return self.prepared[1]

    def need_image(self) -> LoadedImage:
        """The uploaded image, or :class:`AppError` saying to upload one."""
        if self.image is None:
            raise AppError("upload an image (or pick the example) first")
        return self.image

    def need_samples(self) -> Tensor:
        """The gallery, or :class:`AppError` saying to sample first."""
        if self.samples is None or not self.codes:
            if self.released:
                raise AppError(f"this tab's samples were released ({self.released}): draw "
                               "them again in the Sample panel")  # fmt: skip
            raise AppError("draw samples in the Sample panel first")
        return self.samples

    def need_explored(self, what_first: str) -> Explored:
        """The sample being explored, or :class:`AppError` saying ``what_first`` (or that
        the results were released)."""
        if self.explored is None:
            self.need_samples()  # says so when they were released
            raise AppError(what_first)
        return self.explored

    def release(self, why: str) -> None:
        """Let go of the results (running work stops at its next progress report); the
        input image stays."""
        self.cancel = self.busy
        self.clear_results()
        self.released = why

    def request_cancel(self) -> bool:
        """Ask the running work to stop; ``False`` when nothing is running."""
        self.cancel = self.busy
        return self.busy

    @contextmanager
    def working(self) -> Iterator[None]:
        """Mark long work as running (Cancel applies to it, and only to it)."""
        self.busy, self.cancel = True, False
        try:
            yield
        finally:
            self.busy, self.cancel = False, False

    def progress_reporter(
        self, report: Callable[[float, str], None], total: float, what: str
    ) -> Callable[[float], None]:
        """A progress callback for the library that adds up what it is told, reports the
        fraction done, and raises :class:`Cancelled` once Cancel was pressed."""
        done = [0.0]

        def step(amount: float) -> None:
            if self.cancel:
                raise Cancelled
            done[0] += amount
            report(min(1.0, done[0] / total), what)

        return step
