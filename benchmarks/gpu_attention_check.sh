#!/usr/bin/env bash
# Issue 15 on a lent GPU: one short run, under 3 minutes in all (the steps' timeouts add up
# to 165 s; each step's results survive a timeout).
#
#   bash benchmarks/gpu_attention_check.sh            # from the repository root, on the device
#
# Runs from a plain checkout: the project is NOT installed, PYTHONPATH points at the checkout
# (needs torch with CUDA, numpy, xarray, pandas; matplotlib for the plot: all in the device
# image with torch 2.11+cu130; PYTHON overrides the interpreter, default python3). That image
# has no cf_xarray, which gridformer.tokenize imports for CF datasets only: the script then
# puts an empty stand-in module on PYTHONPATH (the benchmark builds its layouts from grid
# shapes and never reads CF attributes) and says so. Results go to $OUT when it is set, else
# benchmarks/gpu_out:
#   attention_cuda_check.json  1. the chunked kernel vs the dense reference on CUDA (geodesic
#                                 and relative bias, 2,048 tokens; largest |difference| of the
#                                 predictions, and of the training gradients relative to the
#                                 largest gradient);
#   attention_cuda.json        2. the table on the device: 2k / 8k / 16,200 / 32k tokens,
#                                 positions none / geodesic / relative, chunked (and dense up to
#                                 8k): first forward, forward, 100-query maps, peak memory
#                                 (torch.cuda.max_memory_allocated), attention step TFLOP/s;
#                                 training steps at 16,200 tokens with and without
#                                 checkpoint_blocks;
#   attention_cuda_flex_check.json  3. the compiled FlexAttention kernel vs dense, as in 1.;
#   attention_cuda_flex.json   4. the compiled FlexAttention kernel at 16,200 tokens (each
#                                 shape compiles anew: ~10-20 s);
#   attention_cuda.md, attention_cuda.png, gpu_attention_check.log: tables, plot, full log.
# Each JSON is rewritten after every configuration, so a step cut short keeps its rows
# ("complete": false). Configurations run in one process per step (--in-process; peak
# statistics are reset for each), which saves a process start per configuration.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DIR=${OUT:-benchmarks/gpu_out}
mkdir -p "$DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOG="$DIR/gpu_attention_check.log"
BENCH=(benchmarks/bench_attention_memory.py --device cuda --in-process)
{
    if ! "$PYTHON" -c "import cf_xarray" 2>/dev/null; then
        STUB=$(mktemp -d)
        mkdir -p "$STUB/cf_xarray"
        echo "# empty stand-in: cf_xarray is not installed; CF datasets need the real one" \
            > "$STUB/cf_xarray/__init__.py"
        export PYTHONPATH="$PYTHONPATH:$STUB"
        echo "note: cf_xarray is not installed; an empty stand-in from $STUB is on PYTHONPATH"
    fi
    "$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1
    echo "== 1. chunked kernel vs dense (outputs and training gradients)"
    timeout 30 "$PYTHON" "${BENCH[@]}" --check-only --kernels chunked \
        --json "$DIR/attention_cuda_check.json" || echo "step 1 failed or timed out"
    echo "== 2. chunked and dense table"
    timeout 65 "$PYTHON" "${BENCH[@]}" --kernels chunked,dense --repeats 3 --train 16200 \
        --json "$DIR/attention_cuda.json" --plot "$DIR/attention_cuda.png" \
        > "$DIR/attention_cuda.md" || echo "step 2 failed or timed out"
    sed -n '/^| tokens/,$p' "$DIR/attention_cuda.md"
    echo "== 3. compiled FlexAttention vs dense (2,048 tokens)"
    timeout 35 "$PYTHON" "${BENCH[@]}" --check-only --kernels flex \
        --json "$DIR/attention_cuda_flex_check.json" || echo "step 3 failed or timed out"
    echo "== 4. compiled FlexAttention at 16,200 tokens"
    timeout 35 "$PYTHON" "${BENCH[@]}" --kernels flex --tokens 16200 \
        --positions geodesic,relative --repeats 3 --json "$DIR/attention_cuda_flex.json" \
        > "$DIR/attention_cuda_flex.md" || echo "step 4 failed or timed out"
    sed -n '/^| tokens/,$p' "$DIR/attention_cuda_flex.md"
    cat "$DIR/attention_cuda_check.json" "$DIR/attention_cuda_flex_check.json" 2>/dev/null
} 2>&1 | tee "$LOG"
