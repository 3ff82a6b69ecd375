#!/usr/bin/env bash
# Issue 16's GPU checks in one call, for a lent GPU machine whose python3 already has a CUDA build
# of torch (nothing can be downloaded there):
#
#     bash benchmarks/gpu_check.sh [OUTDIR]        # OUTDIR: default $OUT, else /tmp/gpu-check
#
# Installs this checkout without its dependencies (the GPU image has torch, numpy, Pillow,
# OpenCV, safetensors, imageio; without PySide6 and pytest-qt the window's render-thread test is
# left out and said so), then writes to OUTDIR: gpu.txt (the card and torch), tests.txt (every
# test marked cuda), bench_render.txt (full renders, re-renders after an edit at each block and
# the fast mode, on the GPU) and bench_projection.txt (a projection step's cost, per-sample weights
# against the shared weight and bfloat16). Each step has its own time limit, so one hang cannot eat the lease.
# PYTHON overrides the interpreter.
set -u -o pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/gpu-check}}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

{
    nvidia-smi -L 2>&1 || echo "nvidia-smi: not found"
    "$python" -c "import torch; print('torch', torch.__version__, '| CUDA:', torch.cuda.is_available() and torch.cuda.get_device_name())"
} | tee "$out/gpu.txt"

if ! "$python" -c "import ganinterface" 2>/dev/null; then
    "$python" -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -3
fi

without_qt=()
if ! "$python" -c "import pytestqt, PySide6" 2>/dev/null; then
    echo "PySide6 or pytest-qt missing: the window's render-thread test is left out" | tee "$out/tests.txt"
    without_qt=(-p no:pytestqt --deselect tests/test_cuda.py::test_the_windows_render_thread_renders_on_the_gpu)
fi
timeout 300 "$python" -m pytest -q -m cuda tests/test_cuda.py "${without_qt[@]}" 2>&1 | tee -a "$out/tests.txt"
tests=$?

timeout 240 "$python" benchmarks/bench_render.py --device cuda 2>&1 | tee "$out/bench_render.txt"
bench=$?

timeout 90 "$python" benchmarks/bench_projection.py --device cuda --repeats 10 --pictures 2 2>&1 | tee "$out/bench_projection.txt"
projection=$?

echo "tests exit $tests, bench_render exit $bench, bench_projection exit $projection" | tee -a "$out/gpu.txt"
exit $(( tests != 0 || bench != 0 || projection != 0 ))
