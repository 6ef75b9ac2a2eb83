#!/usr/bin/env bash
# One run on a second machine (the device tool's GPU machine, or any other): do the shipped numbers hold on another
# CPU, thread count and torch build, and do the CUDA paths agree with the CPU ones?
#
#   bash bench/device_check.sh            # writes its log to ${OUT:-.bench_out}/device_check.log
#
# 1. the tests marked `numeric` (shipped tables re-verified, reference values, float64 paths), all threads;
# 2. bench/numeric_spread.py at 1 thread and all threads: the spread verify's tolerances are derived from;
# 3. the CUDA tests (`pytest -m cuda`), when a GPU is visible.
# Packages missing there (spandrel, piq) can travel as wheels in .whl/ (installed into /tmp/site first).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
out=${OUT:-.bench_out}
mkdir -p "$out"
log="$out/device_check.log"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
{
    echo "== machine"
    lscpu | grep -E "Model name|^CPU\(s\)" || true
    python3 -c 'import torch, platform; print("python", platform.python_version(), "torch", torch.__version__, "threads", torch.get_num_threads(), "cuda", torch.cuda.is_available())'
    echo "== numeric tests, all threads"
    python3 -m pytest -m numeric tests -q -p no:cacheprovider -p no:randomly -o addopts="" --timeout 600 -k "not smoke" --continue-on-collection-errors
    echo "== numeric tests: exit $?"
    echo "== spread of the shipped scores over thread counts and mkldnn"
    python3 bench/numeric_spread.py --threads 1 "$(nproc)"
    echo "== CUDA tests"
    python3 -m pytest -m cuda tests -q -p no:cacheprovider -p no:randomly -o addopts="" --timeout 300 --continue-on-collection-errors
    echo "== CUDA tests: exit $?"
} 2>&1 | tee "$log"
