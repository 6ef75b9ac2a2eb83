#!/usr/bin/env bash
# One prepared GPU session (the full-size tier and the CUDA checks): train the full-size tier, then the CUDA
# tests and the GPU benchmark. Results land in $OUT (the device tool) or ./gpu-out.
#
#   bash bench/gpu_session.sh [budget seconds per run, default 140]
#
# Needs the bundled train images copied to .gpu_data/train (the device's scikit-image may ship other files).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
budget=${1:-140}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'

echo "== full tier: EDSR-baseline and VDSR, L1 vs L1+GV, x2 and x4 (budget ${budget} s per run)"
start=$(date +%s)
python3 - "$budget" <<'PY' 2>&1 | tee "$OUT/full_tier.log"
import dataclasses, sys
from gvcore.reproduce.full import FULL_PLAN, train_full
plan = dataclasses.replace(FULL_PLAN, budget_s=float(sys.argv[1]))
meta = train_full(out="gpu-assets", work="runs/full", device="cuda", jobs=4, plan=plan, data=".gpu_data/train")
print(meta["steps"], meta["wall_time_s"])
PY
echo "== full tier: $(( $(date +%s) - start )) s"
tar -cf "$OUT/edsr.tar" gpu-assets/checkpoints/full/edsr-*.safetensors
tar -cf "$OUT/vdsr.tar" gpu-assets/checkpoints/full/vdsr-*.safetensors gpu-assets/results/full_meta.json \
    runs/full/*/log.csv runs/full/*/config.json

echo "== CUDA tests"
start=$(date +%s)
timeout 150 python3 -m pytest -m cuda tests -q -p no:cacheprovider -o addopts="" --timeout 120 --continue-on-collection-errors 2>&1 | tail -25 \
    | tee "$OUT/cuda_tests.log"
echo "== CUDA tests: $(( $(date +%s) - start )) s"

echo "== GPU benchmark"
start=$(date +%s)
timeout 100 python3 bench/bench_gpu.py --repeats 8 --no-compile 2>&1 | tee "$OUT/bench_gpu.log"
echo "== GPU benchmark: $(( $(date +%s) - start )) s"

echo "== evaluation throughput: tiles per forward call, CPU vs CUDA"
start=$(date +%s)
timeout 240 python3 bench/bench_eval_throughput.py --arch edsr vdsr --images 2 --size 1020x678 --tile 96 \
    --batches 1 4 16 --repeats 3 --devices cpu cuda --json "$OUT/bench_eval_throughput.json" 2>&1 \
    | tee "$OUT/bench_eval_throughput.log"
echo "== evaluation throughput: $(( $(date +%s) - start )) s"
