#!/usr/bin/env bash
# Rebuild the embedded default model from scratch (docs/model-card.md): prepare the photos,
# train in two stages (about 2.5 h on a 2-core CPU; a killed run continues where it stopped),
# export the weights into the package, benchmark it on the held-out photos and update the card.
# Needs the Debian packages named in scripts/photos_manifest.yaml and pip install -e '.[eval]'.
set -euo pipefail
cd "$(dirname "$0")/.."
python scripts/prepare_photos.py --out data/photos
run=runs/default_x4
# Stage 1 (preset train_default_x4): 3000 L1 steps, 3000 NLL steps. It ends by writing
# model.safetensors into the run; until then a rerun resumes it.
if [ ! -f "$run/model.safetensors" ]; then
  if [ -f "$run/config.yaml" ]; then resume=(--resume); else resume=(); fi
  srflow train train_default_x4 --out "$run" "${resume[@]}" \
    --set data.train_hr=data/photos/train --set data.val_hr=data/photos/eval/hr
fi
# Stage 2: 3000 more NLL steps with random RGB channel permutations (the NLL schedule now
# spans 6000 steps, so the learning rate restarts at 2.5e-4 and is halved at 75/90/95 %).
srflow train --resume --out "$run" \
  --set data.channel_shuffle=true --set train.steps=6000 --set train.val_every=1000
srflow export "$run" src/srflow/weights/default_x4.safetensors --name "default_x4, srflow's embedded model"
# Per-layer inverse bounds calibrated on the training photos (docs/robustness.md): stored in
# the model file's metadata, they stop an exploding inverse and leave photo outputs unchanged.
python scripts/calibrate_inverse_bounds.py src/srflow/weights/default_x4.safetensors \
  data/photos/train
bash scripts/benchmark_report.sh --model src/srflow/weights/default_x4.safetensors
python scripts/model_card_results.py outputs/benchmark_photos_x4/results.json "$run"
