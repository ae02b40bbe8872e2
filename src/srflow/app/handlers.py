"""The page's callbacks: page values in, :mod:`srflow.app.actions` called, page values out.

Each callback returns a dict of the components it updates. A problem is shown in the
panel's status line (and as a gradio warning toast), never as a stack trace: the
:func:`guarded` wrapper turns :class:`AppError` and unforeseen errors into that one line.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from srflow.app import actions
from srflow.app.images import (
    heat_map,
    paint_over,
    painted_mask,
    parse_noise_level,
    parse_temperature,
    pixels_changed,
    read_upload,
    region_picture,
    to_pil,
)
from srflow.app.models import DEFAULT_LABEL, ModelStore, model_info
from srflow.app.retention import Keeper
from srflow.app.session import AppError, Cancelled, Session
from srflow.flows.distributions import check_seed, check_temperature
from srflow.inference.allocator import give_back_freed_memory

logger = logging.getLogger(__name__)
Updates = dict[Any, Any]


def guarded(status: Any) -> Callable[[Callable[..., Updates]], Callable[..., Updates]]:
    """Wrap a callback: an error becomes ``{status: "error: ..."}`` and a warning toast; the
    memory the callback freed goes back to the system (a server's memory stays flat)."""

    def wrap(callback: Callable[..., Updates]) -> Callable[..., Updates]:
        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Updates:
            try:
                return callback(*args, **kwargs)
            except Cancelled:
                return {status: "cancelled"}
            except AppError as exc:
                message = str(exc)
            except Exception as exc:  # noqa: BLE001 - the page shows one line, never a trace
                logger.warning("unexpected error in %s", callback.__name__, exc_info=exc)
                text = str(exc).strip().splitlines()
                message = f"unexpected {type(exc).__name__}" + (f": {text[0]}" if text else "")
            finally:
                give_back_freed_memory()
            gr.Warning(message)
            return {status: f"**error:** {message}"}

        return run

    return wrap


def editor_value(image: torch.Tensor) -> dict[str, Any]:
    """An image editor showing ``image`` with nothing painted."""
    picture = to_pil(image)
    return {"background": picture, "layers": [], "composite": picture}




def seed_of(value: float | str | None) -> int:
    """A seed from a number field (empty: 0), checked as the CLI checks ``--seed``."""
    try:
        return check_seed(0 if value is None or value == "" else value)
    except ValueError as exc:
        raise AppError(str(exc)) from None


def temperature_of(value: float | str | None) -> float:
    """A temperature from a slider, checked as the CLI checks ``-t`` (the page's limits are
    not trusted: any client can send any value)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AppError(f"temperature: not a number: {value!r}") from None
    try:
        return check_temperature(number)
    except ValueError as exc:
        raise AppError(str(exc).split("; did you mean")[0]) from None


def count_of(value: float | str | None) -> int:
    """A number of samples from the slider: a whole number from 1 to the app's limit."""
    try:
        count = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        count = float("nan")
    if not (count.is_integer() and 1 <= count <= actions.MAX_SAMPLES):
        raise AppError(f"number of samples: a whole number from 1 to {actions.MAX_SAMPLES}, "
                       f"got {value!r}")  # fmt: skip
    return int(count)


class Handlers:
    """Callbacks bound to the server's models and limits (see :mod:`srflow.app.ui`).

    Args:
        store: the loaded models.
        max_pixels: the largest image (LR pixels) the app takes.
        c: the page's components by name (filled in by the layout).
        keeper: what the server keeps of each tab, and for how long.
    """

    def __init__(self, store: ModelStore, max_pixels: int, c: dict[str, Any],
                 keeper: Keeper) -> None:  # fmt: skip
        self.store, self.max_pixels, self.c, self.keeper = store, max_pixels, c, keeper

    def resolver(self, session: Session) -> Any:
        """The model of ``session``'s tab."""
        return self.store.get(session.model_path)

    def upload(self, path: str | None, session: Session) -> Updates:
        """A new input image (from the file field or the example button)."""
        c = self.c
        session.image = None
        session.clear_results()
        if not path:
            return {c["preview"]: None, c["sample_status"]: "", c["state"]: session}
        try:
            loaded = read_upload(path, self.max_pixels, self.resolver(session).min_lr_size)
        except AppError as exc:  # the field is emptied for the next try
            gr.Warning(str(exc))
            return {c["upload"]: None, c["preview"]: None, c["state"]: session,
                    c["sample_status"]: f"**error:** {exc}"}  # fmt: skip
        session.image, session.name = loaded, Path(path).stem
        h, w = loaded.rgb.shape[1:]
        note = f"input: {w}x{h}" + (" (its alpha is ignored)" if loaded.alpha is not None else "")
        if loaded.frames > 1:
            note += f" (the first of its {loaded.frames} frames)"
        return {c["upload"]: None, c["preview"]: to_pil(loaded.rgb), c["sample_status"]: note,
                c["state"]: session}  # fmt: skip

    def sample(self, text: str, count: float, seed: float | None, noise: str,
               session: Session, progress: gr.Progress = gr.Progress(),  # noqa: B008
               request: gr.Request | None = None) -> Updates:  # fmt: skip
        """Draw the gallery; show LR-PSNRs, the diversity map and the downloads."""
        c = self.c
        resolver = self.resolver(session)
        options = (parse_temperature(text), count_of(count), seed_of(seed))
        noise_level = parse_noise_level(noise)
        session.need_image()
        session.clear_results()  # before the new ones are made: never both in memory
        self.keeper.keep(session, request.session_hash if request else None)
        report = lambda done, what: progress(done, desc=what)  # noqa: E731
        result = actions.draw_samples(session, resolver, *options, report, noise_level)
        names = [f"s{i:02d}" for i in range(len(result.images))]
        gallery = [
            (to_pil(image), f"{name} · LR-PSNR {score:.2f} dB"
             + ("" if ok else " · ⚠ not consistent with the input"))
            for name, image, score, ok in zip(names, result.images, result.lr_psnr,
                                              result.consistent, strict=True)
        ]  # fmt: skip
        files = actions.write_samples(session, self.keeper.downloads_folder(session))
        actions.start_exploring(session, resolver, 0)  # shown when its tab is (show_explored)
        h, w = result.images.shape[2:]
        status = (f"{len(names)} samples of {w}x{h}; pixel-std diversity "
                  f"{result.diversity:.2f} (0-255)")  # fmt: skip
        bad = result.consistent.count(False)
        if bad:
            status += (f"; **{bad} of {len(names)} not consistent with the input** (noise where "
                       "the flow failed: lower the temperature)")  # fmt: skip
        elif result.note:
            status += f"; warning: {result.note}"
        return {
            c["gallery"]: gallery, c["diversity"]: heat_map(result.std_map),
            c["downloads"]: [str(p) for p in files], c["sample_status"]: status,
            c["choose"]: gr.Dropdown(choices=names, value=names[0]), c["state"]: session,
        }  # fmt: skip

    def cancel(self, session: Session) -> Updates:
        """Ask running work to stop at its next progress report (the page says "cancelled"
        then; the status line is left to the work, so the two replies cannot cross)."""
        gr.Info("cancelling..." if session.request_cancel() else "nothing to cancel")
        return {}

    def _shown(self, image: torch.Tensor, session: Session, status: str,
               picture: torch.Tensor | None = None) -> Updates:  # fmt: skip
        c = self.c
        # no picture (a new sample, an undo): nothing to show; never the same picture twice
        # in one reply (gradio rewrites a picture's cache file while it may be served)
        changed = None if picture is None else to_pil(picture)
        return {c["current"]: to_pil(image), c["changed"]: changed,
                c["explore_status"]: status, c["state"]: session}  # fmt: skip

    def show_explored(self, editors: list[str], images: list[str]) -> Callable[[Session], Updates]:
        """A callback putting the explored image into the named editors (nothing painted) and
        images: run when their tab is shown, as components filled while hidden may stay
        blank."""

        def show(session: Session) -> Updates:
            if session.explored is None:
                return {}
            image = session.explored.current
            return {**{self.c[name]: editor_value(image) for name in editors},
                    **{self.c[name]: to_pil(image) for name in images}}  # fmt: skip

        return show

    def choose(self, name: str | None, session: Session) -> Updates:
        """Start exploring the chosen sample."""
        if not name:
            return {}
        self.keeper.keep(session)
        image = actions.start_exploring(session, self.resolver(session), int(name[1:]))
        updates = self._shown(image, session, f"exploring {name}: paint a region, then redraw")
        return {**updates, self.c["editor"]: editor_value(image)}

    def redraw(self, editor: dict[str, Any] | None, temperature: float, seed: float | None,
               session: Session) -> Updates:  # fmt: skip
        """Redraw the painted region's latents."""
        explored = session.need_explored("draw samples in the Sample panel first")
        self.keeper.keep(session)
        mask = painted_mask(editor, tuple(explored.current.shape[1:]))
        image, region, note = actions.redraw_region(
            session, self.resolver(session), mask, temperature_of(temperature), seed_of(seed)
        )
        changed = pixels_changed(explored.images[-2], image)
        if region is None:  # no local receptive field: a change can reach the whole image
            region = torch.ones_like(changed)
        share, reach = (100 * m.float().mean().item() for m in (changed, region))
        where = f"{share:.1f} % of the pixels changed (white); the change could reach " + (
            "any pixel (grey)" if region.all() else f"{reach:.0f} % (grey), no other pixel")
        status = f"redraw {len(explored.codes) - 1} at temperature {temperature:g}: {where}"
        status += f"; warning: {note}" if note else ""
        return self._shown(image, session, status, region_picture(image, changed, region))

    def undo(self, session: Session) -> Updates:
        """Back to the image before the last redraw."""
        image = actions.undo(session)
        steps = len(session.explored.codes) - 1 if session.explored else 0
        return self._shown(image, session, f"undone: {steps} redraw(s) kept")

    def style(self, path: str | None, temperature: float, seed: float | None,
              session: Session) -> Updates:  # fmt: skip
        """Style transfer from an HR image onto the input."""
        if not path:
            raise AppError("upload the style source (an HR image, scale x the input's size)")
        source = read_upload(path, self.max_pixels * self.resolver(session).scale ** 2)
        out = actions.transfer_style(session, self.resolver(session), source,
                                     temperature_of(temperature), seed_of(seed))  # fmt: skip
        return {self.c["transfer_out"]: to_pil(out),
                self.c["transfer_status"]: "style transferred"}  # fmt: skip

    def content(self, editor: dict[str, Any] | None, temperature: float, seed: float | None,
                session: Session) -> Updates:  # fmt: skip
        """Content transfer: blend what was painted into the explored sample."""
        explored = session.need_explored(
            "choose a sample (Explore a region) and paint content on it first")
        self.keeper.keep(session)
        edited, mask = paint_over(explored.current, editor)
        out = actions.transfer_content(session, self.resolver(session), edited, mask,
                                       temperature_of(temperature), seed_of(seed))  # fmt: skip
        return {self.c["transfer_out"]: to_pil(out),
                self.c["transfer_status"]: "pasted content normalized (local)"}  # fmt: skip

    def restore(self, path: str | None, temperature: float, seed: float | None,
                session: Session) -> Updates:  # fmt: skip
        """Restore a noisy or JPEG image."""
        if not path:
            raise AppError("upload the noisy or JPEG-compressed image to restore")
        degraded = read_upload(path, self.max_pixels)
        out = actions.restore_image(self.resolver(session), degraded, temperature_of(temperature),
                                    seed_of(seed))  # fmt: skip
        return {self.c["transfer_out"]: to_pil(out), self.c["transfer_status"]: "restored"}

    def model(self, choice: str | None, upload: str | None, session: Session) -> Updates:
        """Show (and switch to) a model: one of the server's, or a file uploaded here; the
        tab's results are cleared on a switch."""
        c = self.c
        key = session.model_path
        if upload:
            key = self.store.add_upload(upload, Path(upload).name)
        elif choice:
            key = None if choice == DEFAULT_LABEL else choice
        resolver = self.store.get(key)
        if key != session.model_path:
            session.model_path = key
            session.clear_results()
        info = model_info(resolver, self.store.label(key)).markdown()
        return {c["model_info"]: info, c["model_status"]: "", c["model_upload"]: None,
                c["state"]: session}  # fmt: skip
