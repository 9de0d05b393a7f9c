#!/usr/bin/env bash
# Issue 14 at 32 x 32 on a lent GPU: the transformer-stencil recipe on heat and advection,
# seed 4 (held out), 2000 Adam steps each; see benchmarks/gpu_stencil_check.py.
#
#   bash benchmarks/gpu_stencil_check.sh                 # from anywhere in the checkout
#   bash benchmarks/gpu_stencil_check.sh --device cpu --grid 16 --steps 3   # plumbing, CPU
#
# Needs python3 with torch (CUDA), numpy, scipy, xarray, numba; the project need not be
# installed (PYTHONPATH points at the checkout; PYTHON overrides the interpreter). Results:
# $OUT (else benchmarks/gpu_out)/transformer_stencil_32x32_seed4.json and
# gpu_stencil_check.log. Exits 2 when no CUDA device is present (unless --device cpu).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
DIR=${OUT:-benchmarks/gpu_out}
mkdir -p "$DIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PYTHON" -m benchmarks.gpu_stencil_check --out "$DIR" "$@" 2>&1 | tee "$DIR/gpu_stencil_check.log"
exit "${PIPESTATUS[0]}"
