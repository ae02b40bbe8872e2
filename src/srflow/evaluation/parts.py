"""An evaluation in parts: each image's rows saved as soon as they are scored, and the parts
of several workers put back together.

Rows go to ``OUT/rows/NAME.json`` (written atomically; floats as Python writes them, which
read back bit for bit), so a rerun or a restarted worker takes finished images as they are
and scores only the rest. :func:`merge` orders the workers' rows as one process orders them
(image by image, in the run's image order), so the tables are the same to the last digit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from srflow.evaluation.images import EvalImage
from srflow.evaluation.results import EvalResult, MethodResult
from srflow.files import atomic_file

#: The sub-folder of an evaluation's output folder that holds the finished images' rows.
ROWS = "rows"


def _file(folder: Path, image: str) -> Path:
    return folder / ROWS / f"{image.replace('/', '__')}.json"


Entry = tuple[str, str, str]  # an image's name, "WxH" and LR source (EvalResult.images)


def result_entry(image: EvalImage) -> Entry:
    """An image's entry in :attr:`EvalResult.images`."""
    height, width = image.hr.shape[:2]
    return (image.name, f"{width}x{height}", image.lr_source)


def save_rows(folder: Path, entry: Entry, rows: Sequence[MethodResult], run: str) -> Path:
    """Write one image's rows (``run``: what makes them comparable, e.g. the command)."""
    path = _file(folder, entry[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"run": run, "image": list(entry), "rows": [asdict(r) for r in rows]})
    with atomic_file(path) as handle:
        handle.write(text.encode())
    return path


def load_rows(
    folder: Path, images: Sequence[str], run: str
) -> dict[str, tuple[Entry, list[MethodResult]]]:
    """The saved rows of those ``images`` that were scored by the same ``run`` (a file of
    another run, or one that cannot be read, counts as not done)."""
    done = {}
    for image in images:
        path = _file(folder, image)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("run") == run:
            entry = tuple(data["image"])
            done[image] = (entry, [MethodResult(**row) for row in data["rows"]])
    return done  # type: ignore[return-value]


def merge(
    own: EvalResult, others: Mapping[str, tuple[Entry, list[MethodResult]]], order: Sequence[str]
) -> EvalResult:
    """``own`` result completed with the ``others``' images (rows loaded from their files),
    images and rows in ``order``: as one process would have made them."""
    entries = {entry[0]: entry for entry in own.images}
    rows: dict[str, list[MethodResult]] = {}
    for row in own.rows:
        rows.setdefault(row.image, []).append(row)
    for name, (entry, image_rows) in others.items():
        entries.setdefault(name, entry)
        rows.setdefault(name, image_rows)
    return replace(
        own,
        images=[entries[name] for name in order if name in entries],
        rows=[row for name in order for row in rows.get(name, [])],
    )
