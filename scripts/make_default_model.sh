#!/usr/bin/env bash
# Rebuild the embedded default model from scratch (docs/model-card.md): prepare the photos,
# train (about 1.5 h on a 2-core CPU; resumes if runs/default_x4 holds a run), export the
# weights into the package, benchmark it on the held-out photos and update the model card.
# Needs the Debian packages named in scripts/photos_manifest.yaml and pip install -e '.[eval]'.
set -euo pipefail
cd "$(dirname "$0")/.."
python scripts/prepare_photos.py --out data/photos
run=runs/default_x4
if [ -f "$run/config.yaml" ]; then resume=(--resume); else resume=(); fi
srflow train train_default_x4 --out "$run" "${resume[@]}" \
  --set data.train_hr=data/photos/train --set data.val_hr=data/photos/eval/hr
srflow export "$run" src/srflow/weights/default_x4.safetensors
bash scripts/benchmark_report.sh --model src/srflow/weights/default_x4.safetensors
python scripts/model_card_results.py outputs/benchmark_photos_x4/results.json "$run"
