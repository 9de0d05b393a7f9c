#!/usr/bin/env bash
# Issue 15 on a lent GPU, one short run (under 2 minutes, each step under `timeout`):
#   1. the chunked and the compiled FlexAttention kernels against the dense reference on CUDA
#      (geodesic and relative bias, 2,048 tokens; largest |difference| of the predictions);
#   2. the benchmark table on the device: 2k / 8k / 16,200 / 32k tokens, positions none /
#      geodesic / relative, chunked kernel: first forward, forward, 100-query maps, peak
#      memory (torch.cuda.max_memory_allocated) and the attention step's TFLOP/s;
#   3. the compiled FlexAttention kernel at 16,200 tokens (compiling takes ~10-20 s a shape).
#
#   PYTHON=python bash benchmarks/gpu_attention_check.sh [OUT_DIR]
#
# Needs a CUDA build of torch and the project's runtime dependencies (run from a checkout;
# PYTHONPATH is set to it). Writes OUT_DIR/attention_cuda_{chunked,flex}.json and a plot, and
# prints Markdown tables for benchmarks/RESULTS.md. Configurations run in one process
# (--in-process: peak statistics reset for each) to save the start-up of a process each.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${1:-benchmarks/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, torch.cuda.get_device_name())"
timeout 75 "$PYTHON" benchmarks/bench_attention_memory.py --device cuda --in-process --check \
    --kernels chunked --repeats 3 --json "$OUT/attention_cuda_chunked.json" \
    --plot "$OUT/attention_cuda.png" | sed -n '/^| tokens/,$p'
timeout 40 "$PYTHON" benchmarks/bench_attention_memory.py --device cuda --in-process \
    --kernels flex --tokens 16200 --positions geodesic,relative --repeats 3 \
    --json "$OUT/attention_cuda_flex.json" | sed -n '/^| tokens/,$p'
