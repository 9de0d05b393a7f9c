#!/usr/bin/env bash
# GPU check: the GPU-marked tests and the CUDA benchmarks, in one go, printing JSON.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]      (OUT_DIR defaults to $OUT, else a new temp dir)
#
# Installs nothing (the GPU machine may have no internet): it uses the first Python that
# imports torch with CUDA ($PYTHON, .venv/bin/python, python3, python). If gridformer is not
# installed in it, a shim folder maps the repository's layout (gridformer/, solvers/ ->
# gridformer.solvers, datasets/ -> gridformer.datasets) onto PYTHONPATH. Runs in well under
# 5 minutes on one H100. Writes OUT_DIR/gpu_check.json (also printed at the end): the GPU, the
# test summary, and the benchmark report (solver as a fraction of HBM bandwidth, measured against
# a device copy in the same run; training step TFLOP/s with and without return_attention).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${1:-${OUT:-$(mktemp -d)}}"
mkdir -p "$OUT_DIR"
cd "$REPO"

PY=""
for candidate in "${PYTHON:-}" .venv/bin/python python3 python; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)' \
        >/dev/null 2>&1; then
        PY="$candidate"
        break
    fi
done
if [ -z "$PY" ]; then
    echo '{"error": "no Python here imports torch with a CUDA GPU"}' | tee "$OUT_DIR/gpu_check.json"
    exit 2
fi

if ! "$PY" -c 'import gridformer.solvers' >/dev/null 2>&1; then
    SHIM="$(mktemp -d)"
    mkdir -p "$SHIM/gridformer"
    for entry in "$REPO"/gridformer/*; do ln -s "$entry" "$SHIM/gridformer/$(basename "$entry")"; done
    ln -s "$REPO/solvers" "$SHIM/gridformer/solvers"
    ln -s "$REPO/datasets" "$SHIM/gridformer/datasets"
    export PYTHONPATH="$SHIM:$REPO${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
fi

MISSING="$("$PY" - <<'EOF'
import importlib
names = ["numpy", "scipy", "xarray", "numba", "dask", "cf_xarray", "netCDF4", "h5py", "pytest",
         "hypothesis", "gridformer.solvers", "gridformer.tokenize"]
missing = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:  # report every missing piece at once
        missing.append(f"{name}: {error}")
print("; ".join(missing))
EOF
)"
if [ -n "$MISSING" ]; then
    "$PY" -c 'import json, sys; print(json.dumps({"error": "missing modules", "details": sys.argv[1]}))' \
        "$MISSING" | tee "$OUT_DIR/gpu_check.json"
    exit 2
fi

START=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    > "$OUT_DIR/nvidia_smi.txt" 2>&1 || true

# 1. GPU-marked tests (solvers on CUDA vs the CPU path, tokens from CUDA tensors, ...)
timeout 240 "$PY" -m pytest -m gpu -q -p no:cacheprovider -o addopts="" \
    --continue-on-collection-errors --junitxml="$OUT_DIR/gpu_tests.xml" tests > "$OUT_DIR/gpu_tests.txt" 2>&1
TESTS_RC=$?

# 2. benchmarks on CUDA: solver vs a device copy (HBM bound), training step TFLOP/s
timeout 240 "$PY" -m benchmarks --device cuda --only bench_solvers bench_training \
    --json "$OUT_DIR/bench_cuda.json" > "$OUT_DIR/bench_cuda.txt" 2>&1
BENCH_RC=$?

"$PY" - "$OUT_DIR" "$TESTS_RC" "$BENCH_RC" "$(( $(date +%s) - START ))" <<'EOF'
import json, sys
from pathlib import Path

out, tests_rc, bench_rc, seconds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tail = (out / "gpu_tests.txt").read_text().strip().splitlines()[-3:]
report = {"gpu": (out / "nvidia_smi.txt").read_text().strip(), "seconds": int(seconds),
          "tests": {"returncode": tests_rc, "summary": tail}, "bench_returncode": bench_rc}
bench = out / "bench_cuda.json"
if bench.exists():
    full = json.loads(bench.read_text())
    report["environment"] = full["environment"]
    report["benchmarks"] = full["benchmarks"]
    rows = [r for b in full["benchmarks"] for r in b.get("results", [])]
    report["headline"] = {
        "solver_fraction_of_HBM_copy_bound": [
            {"case": r["case"], "ratio": r["ratio"], "M_cell_updates_per_s": r["gridformer"],
             "copy_GB_per_s": r.get("copy_GB_per_s")}
            for r in rows if "bandwidth bound" in r["case"]],
        "training_TFLOP_per_s": [
            {"case": r["case"], "TFLOP_per_s": r.get("achieved_TFLOP_per_s"),
             "ms_per_step": r["gridformer"], "ratio": r["ratio"]}
            for r in rows if "training step" in r["case"]],
    }
else:
    report["bench_output"] = (out / "bench_cuda.txt").read_text()[-4000:]
text = json.dumps(report, indent=2)
(out / "gpu_check.json").write_text(text + "\n")
print(text)
EOF
