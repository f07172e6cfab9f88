#!/bin/sh
# gpu_check.sh OUTDIR: everything the GPU backend needs checked on a real GPU, in one run of a few minutes.
#
#   tools/gpu_check.sh /tmp/gpu_out        (from anywhere; it works in the repository it belongs to)
#
# Prints the GPU (nvidia-smi) and the build's tools first, then builds `make CUDA=1`, runs the GPU suite
# (`make CUDA=1 test-gpu`: every op against the CPU, the models and 20-step runs of each stage on both
# devices, checkpoints across devices, determinism), the GPU benchmark (the BAIR stage-1 iteration at batch
# 10, the cINN step at batch 50, the demo's steps; then the stage-1 iteration with TF32), the memory
# estimate and a refused run, the path without a usable GPU, and last the demo. Every step runs under
# `timeout`, so nothing can hang past its limit, and a failing step does not stop the next: one run reports
# everything. Logs go to OUTDIR, one per step, with OUTDIR/summary.txt listing each step's exit status and
# time. Budget: about 7 minutes on an H100 before the demo, which may take 3 more (the limits add up to 17).
# Expected exit statuses: 0 everywhere but `refuse` and `no-gpu` (1, with one line saying why).
# CUDA_ARCH defaults to the GPU's own compute capability.
set -u
out=${1:?"usage: tools/gpu_check.sh OUTDIR"}
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 2
summary="$out/summary.txt"
: > "$summary"
jobs=$(nproc 2>/dev/null || echo 8)

note() { echo "$*" | tee -a "$summary"; }

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit, its output to OUTDIR/NAME.log (and the last
# lines on the terminal), and notes the exit status (124: the limit was hit) and the time taken.
step() {
    name=$1 limit=$2
    shift 2
    note "== $name (limit ${limit} s): $*"
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
    rc=$?
    t1=$(date +%s)
    tail -n 25 "$out/$name.log"
    note "== $name: exit $rc after $((t1 - t0)) s"
    return 0
}

note "gpu_check $(date -u '+%Y-%m-%d %H:%M:%S UTC') in $(pwd), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi 2>&1 | tee "$out/nvidia-smi.txt" | head -n 20
cuda_home=${CUDA_HOME:-/usr/local/cuda}
export CUDA_HOME="$cuda_home"
"$cuda_home/bin/nvcc" --version 2>&1 | tail -n 2 | tee -a "$summary"
cc --version 2>&1 | head -n 1 | tee -a "$summary"

# cuDNN and cuBLAS: in the toolkit, or else from the Python wheels (nvidia-cudnn-cu13, nvidia-cublas), whose
# headers and versioned libraries are linked into build/gpu_libs under the names the build looks for.
wheel_dir() { python3 -c "import nvidia.$1 as m; print(list(m.__path__)[0])" 2>/dev/null; }
if [ -z "${CUDNN_HOME:-}" ] && [ ! -f "$cuda_home/include/cudnn.h" ]; then
    libs=$(pwd)/build/gpu_libs
    mkdir -p "$libs/include" "$libs/lib"
    for pkg in cudnn cublas; do
        d=$(wheel_dir $pkg)
        [ -n "$d" ] || continue
        ln -sf "$d"/include/*.h "$libs/include/" 2>/dev/null
        for f in "$d"/lib/lib*.so.*; do
            [ -e "$f" ] || continue
            ln -sf "$f" "$libs/lib/"
            base=$(basename "$f"); ln -sf "$f" "$libs/lib/${base%%.so.*}.so"
        done
    done
    export CUDNN_HOME="$libs"
fi
note "CUDA_HOME=$CUDA_HOME CUDNN_HOME=${CUDNN_HOME:-$CUDA_HOME}"
if [ -z "${CUDA_ARCH:-}" ]; then   # the GPU's own compute capability, e.g. 90 on an H100
    CUDA_ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
    [ -n "$CUDA_ARCH" ] || CUDA_ARCH="80 90"
fi
note "CUDA_ARCH=$CUDA_ARCH, $jobs jobs"

# 1. the build: the program and every test program of both precisions
step build 300 make CUDA=1 "CUDA_ARCH=$CUDA_ARCH" -j"$jobs" i2v
# 2. the GPU suite (builds its programs first)
step test-gpu 360 make CUDA=1 "CUDA_ARCH=$CUDA_ARCH" -j"$jobs" test-gpu
# 3. the benchmark: time, TFLOP/s against the FP32 peak, the cuBLAS + cuDNN share, peak memory, the top kernels
step bench-gpu 240 ./i2v --device cuda bench gpu reps=3 top=15
step bench-gpu-tf32 120 ./i2v --device cuda bench gpu stage1 reps=2 tf32=1 top=8
# 4. the memory a BAIR stage-1 step needs at batch 10 (a dry run) and a run too large for the GPU, refused
step memory 120 ./i2v bench memory bair batch=10
step refuse 120 ./i2v --device cuda train-stage1 --config bair --out "$out/too_big" Training.bs=400 Training.w_percep=0 --steps 1
# 5. no usable GPU: one line, exit 1, and the CPU path of the same binary still works
step no-gpu 30 env CUDA_VISIBLE_DEVICES= ./i2v --device cuda inspect "$out/none.safetensors"
step cpu-path 60 ./i2v --device cpu bench gemm m=64 n=64 k=64 reps=1
# 6. last, as time allows: the demo on the GPU (its own report; the issue asks for under 2 minutes)
step demo 170 ./i2v --device cuda demo --minutes 2 --out "$out/demo"

note "== done: logs in $out"
if grep -q "skipped: no GPU" "$out/test-gpu.log" 2>/dev/null; then
    note "!! the GPU suite SKIPPED itself: it found no usable GPU (see test-gpu.log for the reason)"
fi
grep -h "passed, .* failed" "$out/test-gpu.log" 2>/dev/null | tail -n 1 | tee -a "$summary"
grep -h "^gpu step=\|^memory " "$out"/bench-gpu*.log "$out/memory.log" 2>/dev/null | tee -a "$summary"
