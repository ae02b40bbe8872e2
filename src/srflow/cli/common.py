"""Helpers shared by the command-line tools: one-line errors, inputs, output folders, model."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from srflow.data.image_io import ImageReadError, write_image
from srflow.files import remove_stale_temporaries
from srflow.flows.distributions import check_seed
from srflow.inference.api import default_model_path, missing_default_model_message
from srflow.inference.pipeline import InputTooSmallError

if TYPE_CHECKING:
    from srflow.models.contract import FlowSR

logger = logging.getLogger(__name__)


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default (unless it is empty or already stated)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        empty = default is None or default is False or default in ([], argparse.SUPPRESS)
        if not text or "default" in text or empty or not action.option_strings:
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        return f"{text} (default: {shown})".replace("%", "%%") if "%(" not in text else text


class Parser(argparse.ArgumentParser):
    """The parser class of every srflow command: :class:`HelpFormatter` by default."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class CliError(Exception):
    """A fatal problem (bad option, model, output folder) to report on one line; status 2."""


class InputError(ValueError):
    """One input cannot be processed (the other inputs still are)."""


class OutputError(Exception):
    """An output file could not be written; the message names it."""


#: Inside a torchrun job: ``worker R/N: `` before each message, and whether this worker
#: draws progress bars (:func:`as_worker`).
_WORKER = {"label": "", "progress": True}


def as_worker(label: str, progress: bool) -> None:
    """Messages of this process start with ``label: `` (``worker 1/4``); ``progress``: it
    draws progress bars (one worker per node does)."""
    _WORKER.update(label=f"{label}: " if label else "", progress=progress)


def progress_shown() -> bool:
    """Whether this process draws progress bars."""
    return bool(_WORKER["progress"])


def fail(message: str) -> None:
    """Print ``error: message`` on its own line of stderr (above any progress bar)."""
    tqdm.write(f"{_WORKER['label']}error: {message}", file=sys.stderr)


def one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int,
    file: object = None, line: str | None = None,
) -> None:  # fmt: skip
    """``warnings.showwarning`` for the commands: ``warning: message`` (its first line) on
    stderr, above any progress bar, without Python's file, line number and source line."""
    text = str(message).strip().splitlines()
    first = text[0] if text else category.__name__
    tqdm.write(f"{_WORKER['label']}warning: {first}", file=sys.stderr)


def note(message: str) -> None:
    """Print ``note: message`` on stderr: something left out on purpose, not a failure."""
    tqdm.write(f"{_WORKER['label']}note: {message}", file=sys.stderr)


def temperature_arg(text: str) -> float:
    """argparse type of every temperature option: finite, non-negative, not absurdly large
    (the same rule as the API, :func:`srflow.flows.distributions.check_temperature`)."""
    from srflow.flows.distributions import check_temperature

    try:
        return check_temperature(float(text))
    except ValueError as exc:
        message = str(exc) if "temperature" in str(exc) else f"not a number: {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def seed_arg(text: str) -> int:
    """argparse type of every ``--seed``: an integer from 0 to 2**63 - 1."""
    if not text.strip().lstrip("+-").isdigit():
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    try:
        return check_seed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_tile_option(tile: int | None) -> None:
    """``--tile`` at least :data:`~srflow.inference.pipeline.MIN_TILE` (the API's rule)."""
    from srflow.inference.pipeline import check_tile

    try:
        check_tile(tile)
    except ValueError as exc:
        raise CliError(f"--{exc}") from None


def describe_os_error(exc: OSError) -> str:
    """``PATH: reason`` for an operating-system error (one line)."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def unexpected(exc: Exception) -> str:
    """The one line for an error srflow did not foresee (the traceback is logged with -v)."""
    logger.info("traceback of the unexpected error", exc_info=exc)
    text = str(exc).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    return f"unexpected {type(exc).__name__}{detail} (srflow -v ... shows where)"


def resolve_model(path: str | None, option: str = "--model PATH") -> Path:
    """``--model`` or the embedded default; a clear error when neither exists.

    ``option`` is how the error message tells the user to name a model instead.
    """
    if path:
        return Path(path)
    default = default_model_path()
    if default is None:
        raise CliError(missing_default_model_message(option))
    return default


def announce_model(path: Path, model: torch.nn.Module) -> None:
    """Say (on stdout) which model a command detected in the file it loaded."""
    from srflow.checkpoints import describe_model

    tqdm.write(f"model: {describe_model(model)} from {path}", file=sys.stdout)


def load_flow_model(path: Path, device: str) -> FlowSR:
    """A super-resolution flow of any family from ``path`` on ``device``, announced on stdout;
    :class:`CliError` (one line) when the file, the device or the model is unusable."""
    from srflow.checkpoints import CheckpointError, describe_model, load_model
    from srflow.inference.pipeline import pick_device
    from srflow.models.contract import FlowSR

    try:
        model = load_model(path, device=pick_device(device))
    except (CheckpointError, RuntimeError, ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    if not isinstance(model, FlowSR):
        raise CliError(f"{path}: {describe_model(model)} is not a super-resolution flow")
    announce_model(path, model)
    return model


def prepare_output_dir(path: Path, clean: bool = True) -> Path:
    """Create ``path`` and check that it is writable; ``clean``: remove the unfinished files
    of writers that no longer run (a process id only says so on its own machine)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"{path}: cannot create output folder ({exc.strerror})") from None
    if not path.is_dir() or not os.access(path, os.W_OK):
        raise CliError(f"{path}: output folder is not writable")
    stale = remove_stale_temporaries(path, recursive=True) if clean else []
    if stale:
        note(f"{path}: removed {len(stale)} unfinished file(s) an interrupted run left")
    return path


@dataclass(frozen=True)
class InputFile:
    """An input image and the stem of its outputs relative to the output folder.

    Images found inside a named folder keep their sub-folder (``sub/photo``); inputs that would
    share an output stem keep their folders' names (``a/photo``, ``b/photo``) or, in one folder,
    get their suffix added (``photo_png``, ``photo_jpg``).
    """

    path: Path
    out_stem: Path

    def output(self, out_dir: Path, tail: str) -> Path:
        """``out_dir / out_stem + tail`` (the sub-folder may not exist yet)."""
        return out_dir / self.out_stem.parent / f"{self.out_stem.name}{tail}"


def collect_inputs(
    inputs: list[Path], suffixes: frozenset[str], exclude: Path | None = None,
    is_output: Callable[[Path], bool] | None = None,
) -> tuple[list[InputFile], list[str], list[str]]:  # fmt: skip
    """Image files from files and folders (recursive), plus one-line notes on what was skipped
    (non-image files inside folders) and what is missing (named paths that do not exist).

    A named file is always returned: reading it reports what is wrong with it. A file reached
    twice (named, and inside a named folder) is processed once. Hidden files are left out
    silently, and so are our outputs: inside a named folder, everything under ``exclude``
    (the output folder) when that is a sub-folder of it; when the output folder is the named
    folder itself, the files ``is_output`` recognises by their names.
    """
    excluded = exclude.resolve() if exclude is not None else None

    def ours(path: Path, folder: Path) -> bool:
        if excluded is None or not path.resolve().is_relative_to(excluded):
            return False
        if excluded == folder.resolve() or folder.resolve().is_relative_to(excluded):
            return is_output is not None and is_output(path)
        return True

    found: list[tuple[Path, Path, Path]] = []  # (file, its output stem, the stem's anchor)
    skipped: list[str] = []
    missing: list[str] = []
    for item in inputs:
        if item.is_file():
            found.append((item, Path(item.stem), item.parent))
        elif item.is_dir():
            before = len(found)
            for path in sorted(item.rglob("*")):
                if path.name.startswith("."):
                    continue
                if not path.is_file():
                    if path.is_symlink() and not path.is_dir():
                        skipped.append(f"{path}: skipped, {_broken_link(path)}")
                    continue
                if ours(path, item):
                    continue
                if path.suffix.lower() in suffixes:
                    found.append((path, path.relative_to(item).with_suffix(""), item))
                else:
                    skipped.append(f"{path}: skipped, not an image file")
            if len(found) == before:
                missing.append(f"{item}: no image files in this folder")
        else:
            missing.append(f"{item}: no such file or folder")
    seen: set[Path] = set()
    unique = []
    for path, stem, anchor in found:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append((path, stem, anchor))
    return [InputFile(p, s) for p, s in _unique_stems(unique)], skipped, missing


def _broken_link(path: Path) -> str:
    """Why a symbolic link leads to no file: a loop, or a target that does not exist."""
    try:
        path.resolve(strict=True)
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
            return "a symbolic link loop"
    return "a symbolic link to nothing"


def _unique_stems(found: list[tuple[Path, Path, Path]]) -> list[tuple[Path, Path]]:
    """Output stems that never collide: inputs that would share one keep as many of their
    anchor folder's names as tell them apart (``a/photo``, ``b/photo``); inputs that differ
    only in their suffix get it added (``photo_png``, ``photo_jpg``)."""
    levels = [0] * len(found)

    def stem(index: int) -> Path:
        path, own, anchor = found[index]
        parts = anchor.resolve().parts[1:]  # without the root
        kept = parts[len(parts) - levels[index] :] if levels[index] else ()
        return Path(*kept, own)

    while True:
        groups: dict[Path, list[int]] = {}
        for index in range(len(found)):
            groups.setdefault(stem(index), []).append(index)
        clashes = [members for members in groups.values() if len(members) > 1]
        grown = False
        for members in clashes:
            anchors = {found[i][2].resolve() for i in members}
            if len(anchors) > 1:  # different folders: one more folder name each
                for i in members:
                    if levels[i] < len(found[i][2].resolve().parts) - 1:
                        levels[i] += 1
                        grown = True
        if not grown:
            break
    counts = Counter(stem(i) for i in range(len(found)))
    out = []
    for index, (path, _, _) in enumerate(found):
        name = stem(index)
        if counts[name] > 1:
            name = name.with_name(f"{name.name}_{path.suffix.lstrip('.').lower()}")
        out.append((path, name))
    return out


def write_output(
    target: Path, rgb: torch.Tensor, alpha: torch.Tensor | None, *, bit_depth: int,
    grayscale: bool,
) -> None:  # fmt: skip
    """:func:`write_image` (atomic) into a folder created on demand; OutputError on failure."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_image(target, rgb, alpha, bit_depth=bit_depth, grayscale=grayscale)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from None
    except ValueError as exc:  # a format that cannot hold this image (16-bit TIFF, no tifffile)
        raise OutputError(f"{target}: cannot write ({exc})") from None


def for_each_input(files: list[InputFile], work: Callable[[InputFile], None]) -> int:
    """Run ``work`` on every input with a progress bar; report each failure on one line and
    go on. Returns the number of inputs that failed."""
    failures = 0
    for item in tqdm(files, desc="images", unit="img",
                     disable=len(files) < 2 or not progress_shown()):  # fmt: skip
        try:
            work(item)
        except OutputError as exc:
            fail(str(exc))
        except (ImageReadError, InputTooSmallError, InputError) as exc:
            fail(str(exc) if str(item.path) in str(exc) else f"{item.path}: {exc}")
        except RuntimeError as exc:  # torch.OutOfMemoryError, or the CPU allocator's error
            message = str(exc)
            if not isinstance(exc, torch.OutOfMemoryError) and not (
                "out of memory" in message or "allocate memory" in message
            ):
                raise
            fail(f"{item.path}: out of memory; use --tile (e.g. 128) or a smaller --batch-size")
        except OSError as exc:
            fail(f"{item.path}: {describe_os_error(exc)}")
        except Exception as exc:  # noqa: BLE001 - one line per input, and the batch goes on
            fail(f"{item.path}: {unexpected(exc)}")
        else:
            continue
        failures += 1
    return failures
