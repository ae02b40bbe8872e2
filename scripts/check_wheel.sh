#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment (no editable install, no source
# tree on the path) and check what a user of `pip install .` gets: every non-Python file of
# src/srflow is inside the installed package, and the README's first command works.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m pip wheel --quiet --no-deps --no-build-isolation -w "$work/dist" "$root" 2>/dev/null \
  || python -m pip wheel --quiet --no-deps -w "$work/dist" "$root"
python -m venv "$work/venv"
venv="$work/venv/bin"
"$venv/python" -m pip install --quiet torch==2.13.0
"$venv/python" -m pip install --quiet "$work"/dist/srflow-*.whl
cd "$work"
"$venv/python" - "$root" <<'PY'
import sys
from pathlib import Path

import srflow

root, installed = Path(sys.argv[1]) / "src" / "srflow", Path(srflow.__file__).parent
assert root.resolve() != installed.resolve(), f"srflow imported from the source tree: {installed}"
wanted = sorted(
    p.relative_to(root).as_posix() for p in root.rglob("*")
    if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
)
missing = [f for f in wanted if not (installed / f).is_file()]
assert not missing, f"not in the installed wheel: {missing}"
print(f"installed wheel: {len(wanted)} data files present in {installed}")
PY
"$venv/srflow" sr "$root/examples/astronaut_lr.png" -o "$work/sr_out" -n 1 >/dev/null
test -f "$work/sr_out/astronaut_lr_sr_t0.80_s00.png"
echo "installed wheel: srflow sr works"
