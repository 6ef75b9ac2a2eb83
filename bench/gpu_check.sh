#!/usr/bin/env bash
# GPU check for the fused Triton GV loss: the CUDA tests, then one benchmark table.
#
#   bash bench/gpu_check.sh [bench_gpu.py options]      # e.g. --repeats 10 --no-compile
#
# Python: $PYTHON if set, else .venv/bin/python when its torch sees CUDA, else python3.
# Exits 2 without a CUDA device; otherwise with the tests' status (the benchmark runs either way).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1

cuda_ok() { "$1" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x .venv/bin/python ] && cuda_ok .venv/bin/python; then
    PY=.venv/bin/python
else
    PY=python3
fi
if ! cuda_ok "$PY"; then
    echo "gpu_check.sh: no CUDA device visible to $PY (torch.cuda.is_available() is False); nothing to check." >&2
    exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PY" -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'

echo "== CUDA tests (pytest -m cuda)"
start=$(date +%s)
"$PY" -m pytest -m cuda tests -q -p no:cacheprovider -o addopts="" --timeout 300
tests_rc=$?
echo "== CUDA tests: exit $tests_rc in $(( $(date +%s) - start )) s"

echo "== benchmark (bench/bench_gpu.py)"
start=$(date +%s)
"$PY" bench/bench_gpu.py "$@"
bench_rc=$?
echo "== benchmark: exit $bench_rc in $(( $(date +%s) - start )) s"
[ "$tests_rc" -ne 0 ] && exit "$tests_rc"
exit "$bench_rc"
