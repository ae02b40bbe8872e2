"""Write the measured results of the embedded default model into ``docs/model-card.md``.

Reads the evaluation of the photo benchmark (``results.json`` of ``scripts/benchmark_report.sh``)
and the training run's ``metrics.jsonl``, and replaces the part of the model card between the
``<!-- results:start -->`` and ``<!-- results:end -->`` markers. Usage::

    python scripts/model_card_results.py outputs/benchmark_photos_x4/results.json runs/default_x4

Without the run folder (a checkout has only the exported model), the card's current line on the
training run is kept.

The two acceptance criteria of the model are checked and printed: at temperature 0 it must beat
bicubic in PSNR, and its samples at temperature 0.8 must keep an LR-PSNR above 40 dB.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

CARD = Path(__file__).resolve().parents[1] / "docs" / "model-card.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
COLUMNS = [
    ("psnr", "PSNR (dB)", 2),
    ("ssim", "SSIM", 4),
    ("lr_psnr", "LR-PSNR (dB)", 2),
    ("lr_psnr_worst", "LR-PSNR worst (dB)", 2),
    ("pixel_std", "pixel std (0-255)", 2),
    ("div_mse", "diversity MSE (%)", 2),
    ("niqe", "NIQE", 2),
    ("brisque", "BRISQUE", 2),
    ("piqe", "PIQE", 2),
]


def _fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def _row_name(row: dict) -> str:
    if row["method"] == "bicubic":
        return "bicubic"
    return f"SRFlow τ={row['temperature']:g} ({row['samples']} sample{'s' * (row['samples'] > 1)})"


def results_table(results: dict) -> tuple[str, dict[str, dict]]:
    """The averaged rows as Markdown, and the rows by name (``bicubic``, ``0.0``, ``0.8``)."""
    lines = [
        "| method | " + " | ".join(label for _, label, _ in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    by_name = {}
    for row in results["summary"]:
        metrics = row["metrics"]
        cells = [_fmt(metrics.get(key), digits) for key, _, digits in COLUMNS]
        lines.append(f"| {_row_name(row)} | " + " | ".join(cells) + " |")
        key = "bicubic" if row["method"] == "bicubic" else f"{row['temperature']:.1f}"
        by_name[key] = metrics
    return "\n".join(lines), by_name


def training_summary(run_dir: Path) -> str:
    """Steps, time spent stepping (resumes and pauses left out) and the last validation."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    seconds = 0.0
    for before, after in zip(train, train[1:], strict=False):
        if after["step"] > before["step"] and 0 < after["time"] - before["time"] < 3600:
            seconds += after["time"] - before["time"]
    last_val = next((r for r in reversed(records) if r["kind"] == "val"), None)
    text = f"{train[-1]['step']} steps; {seconds / 3600:.1f} h of stepping"
    if last_val is not None:
        shown = {k: v for k, v in last_val.items() if k not in ("kind", "time")}
        text += "; last validation: " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()
        )
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("results", type=Path, help="results.json of the photo benchmark")
    parser.add_argument("run_dir", type=Path, nargs="?", help="the training run folder")
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    table, rows = results_table(results)
    beats_bicubic = rows["0.0"]["psnr"] > rows["bicubic"]["psnr"]
    consistent = rows["0.8"]["lr_psnr"] > 40.0
    checks = (
        f"- temperature 0 beats bicubic in PSNR: **{'yes' if beats_bicubic else 'NO'}** "
        f"({rows['0.0']['psnr']:.2f} dB vs {rows['bicubic']['psnr']:.2f} dB)\n"
        f"- LR-PSNR of the samples at temperature 0.8 above 40 dB: "
        f"**{'yes' if consistent else 'NO'}** ({rows['0.8']['lr_psnr']:.2f} dB)"
    )
    settings, images = results["config"], results["images"]
    card = CARD.read_text()
    head, rest = card.split(START, 1)
    if args.run_dir is not None:
        training = f"Training run: {training_summary(args.run_dir)}."
    else:  # the line the card has
        kept = rest.split(END, 1)[0].splitlines()
        training = next(line for line in kept if line.startswith("Training run:"))
    body = (
        f"{START}\n"
        f"Held-out photo benchmark ({len(images)} photos, HR {images[0]['size']} centre crops, "
        f"4x, {settings['samples']} samples per temperature, SR converted to 8 bit by "
        f"{settings['conventions']['uint8']}, seed {settings['seed']}), "
        f"{results['seconds'] / 60:.0f} min on {results['device']}:\n\n{table}\n\n{checks}\n\n"
        f"{training}\n{END}"
    )
    CARD.write_text(head + body + rest.split(END, 1)[1])
    print(checks)
    return 0 if beats_bicubic and consistent else 1


if __name__ == "__main__":
    raise SystemExit(main())
