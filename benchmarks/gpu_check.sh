#!/usr/bin/env bash
# GPU check: the GPU-marked tests and the CUDA benchmarks in one go; JSON summary at the end.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]     (OUT_DIR: $1, else $OUT, else a new temp dir)
#
# From the repository root of a checkout on the GPU machine (the project need not be
# installed). Installs nothing and needs no internet: it uses the first Python that imports
# torch with CUDA ($PYTHON, .venv/bin/python, python3, python) and needs only torch, numpy,
# scipy, xarray, numba and pytest there; netCDF4, cftime, dask, distributed, cf_xarray, zarr,
# flox, xeofs, py-pde and xbatcher may be missing (the data benchmark and the peer rows that
# need them are reported as skipped). An uninstalled checkout is imported through
# benchmarks/_uninstalled.py (repository root on sys.path, solvers/ -> gridformer.solvers,
# datasets/ -> gridformer.datasets).
#
# Steps, each under its own time limit (283 s in all on one H100 on 2026-11-27 with
# GPU_CHECK_BUDGET=0; the limits of steps 1-2c, 240 + 180 + 60 + 120 s, add up to 10 minutes):
#   1. pytest -m gpu on the test files that hold GPU-marked tests (CUDA vs CPU solvers, tokens
#      from CUDA tensors, ...): OUT_DIR/gpu_tests.txt and gpu_tests.xml;
#   2. python -m benchmarks --device cuda --only bench_solvers bench_training: the solver as a
#      fraction of the HBM bound (a device copy timed in the same run) and the training step's
#      TFLOP/s with and without return_attention: OUT_DIR/bench_cuda.json and .txt;
#   2b. python benchmarks/gpu_bias_probe.py: one attention layer with a learned relative bias,
#      forward + backward, by every kernel torch has (SDPA backends, FlexAttention, explicit),
#      and split by part (presorted table gradient, bias without a table, frozen bias),
#      checked against a float32 reference: OUT_DIR/bias_probe.json (at most 60 s);
#   2c. python benchmarks/gpu_training_ab.py: the relative and bias-free training steps with
#      each CUDA-only choice switched off (maps beside the fused output; the unclipped gather),
#      in one run: OUT_DIR/training_ab.json (at most 120 s);
#   3. the CPU benchmarks (solvers, tokenizer) with --quick on the GPU machine's own cores, if
#      time is left: OUT_DIR/bench_cpu.json (a quiet many-core data point, not the 2-core one).
# OUT_DIR/gpu_check.json (also printed last) holds the GPU, the test summary and the reports.
#
# GPU_CHECK_DEVICE=cpu runs the same steps on a machine without a GPU (the GPU tests skip;
# the "cuda" benchmarks run on the CPU with --quick): a check of this script's plumbing.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${1:-${OUT:-$(mktemp -d)}}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
mkdir -p "$OUT_DIR"
cd "$REPO"
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }

if [ "$DEVICE" = cuda ]; then
    PROBE='import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)'
else
    PROBE='import torch'
fi
PY=""
for candidate in "${PYTHON:-}" .venv/bin/python python3 python; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c "$PROBE" >/dev/null 2>&1; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then
    echo '{"error": "no Python here imports torch with a CUDA GPU"}' | tee "$OUT_DIR/gpu_check.json"
    exit 2
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

MISSING="$("$PY" - <<'EOF'
import importlib
import benchmarks._uninstalled  # noqa: F401 - gridformer from this checkout if not installed
missing = []
for name in ["numpy", "scipy", "xarray", "numba", "pytest", "gridformer.solvers",
             "gridformer.tokenize", "gridformer.model"]:
    try:
        importlib.import_module(name)
    except Exception as error:  # report every missing piece at once
        missing.append(f"{name}: {error!r}")
print("; ".join(missing))
EOF
)"
if [ -n "$MISSING" ]; then
    "$PY" -c 'import json, sys; print(json.dumps({"error": "missing modules", "details": sys.argv[1]}))' \
        "$MISSING" | tee "$OUT_DIR/gpu_check.json"
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    > "$OUT_DIR/nvidia_smi.txt" 2>&1 || echo "no nvidia-smi" > "$OUT_DIR/nvidia_smi.txt"

# 1. the GPU-marked tests (only the files that hold them: nothing else needs collecting)
mapfile -t GPU_FILES < <(grep -rlE --include='test_*.py' 'pytest\.mark\.gpu' tests | sort)
if [ "${#GPU_FILES[@]}" -gt 0 ]; then
    timeout "${GPU_CHECK_TEST_SECONDS:-240}" "$PY" -m pytest -p benchmarks._uninstalled -m gpu -q -p no:cacheprovider \
        --junitxml="$OUT_DIR/gpu_tests.xml" "${GPU_FILES[@]}" > "$OUT_DIR/gpu_tests.txt" 2>&1
    TESTS_RC=$?
else
    echo "no test file holds a pytest.mark.gpu test" > "$OUT_DIR/gpu_tests.txt"
    TESTS_RC=5
fi

# 2. the benchmarks on the GPU
BENCH=(-c 'import sys, benchmarks._uninstalled; from benchmarks.__main__ import main; sys.exit(main(sys.argv[1:]))')
QUICK=(); [ "$DEVICE" = cuda ] || QUICK=(--quick)
timeout "${GPU_CHECK_BENCH_SECONDS:-180}" "$PY" "${BENCH[@]}" --device "$DEVICE" ${QUICK[@]+"${QUICK[@]}"} \
    --only bench_solvers bench_training --json "$OUT_DIR/bench_cuda.json" \
    > "$OUT_DIR/bench_cuda.txt" 2>&1
BENCH_RC=$?

# 2b. the attention kernels for a learned bias, one layer each
timeout "${GPU_CHECK_PROBE_SECONDS:-60}" "$PY" benchmarks/gpu_bias_probe.py --device "$DEVICE" \
    --repeats 20 --json "$OUT_DIR/bias_probe.json" > "$OUT_DIR/bias_probe.txt" 2>&1

# 2c. the training step with each CUDA-only choice switched off, same run
timeout "${GPU_CHECK_AB_SECONDS:-120}" "$PY" benchmarks/gpu_training_ab.py --device "$DEVICE" \
    ${QUICK[@]+--repeats 1} --json "$OUT_DIR/training_ab.json" > "$OUT_DIR/training_ab.txt" 2>&1

# 3. the CPU benchmarks on this machine's cores, within what is left of GPU_CHECK_BUDGET seconds
#    (default 330; 0 skips them)
LEFT=$(( ${GPU_CHECK_BUDGET:-330} - $(elapsed) ))
CPU_RC="not run: $(elapsed) s used"
if [ "$LEFT" -ge 30 ]; then
    timeout "$LEFT" "$PY" "${BENCH[@]}" --device cpu --quick --only bench_solvers bench_tokenizer \
        --json "$OUT_DIR/bench_cpu.json" > /dev/null 2>&1
    CPU_RC=$?
fi

"$PY" - "$OUT_DIR" "$TESTS_RC" "$BENCH_RC" "$CPU_RC" "$(elapsed)" "${GPU_FILES[*]:-}" <<'EOF'
import json, sys
from pathlib import Path

out, tests_rc, bench_rc, cpu_rc, seconds, files = sys.argv[1:7]
out = Path(out)
lines = (out / "gpu_tests.txt").read_text().strip().splitlines()
report = {"gpu": (out / "nvidia_smi.txt").read_text().strip(), "seconds": int(seconds),
          "tests": {"files": files.split(), "returncode": int(tests_rc),
                    "summary": lines[-1:], "failures": [l for l in lines if l.startswith("FAILED")]},
          "bench_returncode": int(bench_rc), "bench_cpu_returncode": cpu_rc}
bench = out / "bench_cuda.json"
if bench.exists():
    full = json.loads(bench.read_text())
    report["environment"] = full["environment"]
    rows = [r for b in full["benchmarks"] for r in b.get("results", [])]
    report["headline"] = {
        "solver_fraction_of_HBM_copy_bound": [
            {"case": r["case"], "ratio": r["ratio"], "M_cell_updates_per_s": r["gridformer"],
             "copy_GB_per_s": r.get("copy_GB_per_s")}
            for r in rows if "bandwidth bound" in r["case"]],
        "training": [
            {"case": r["case"], "ms_per_step": r["gridformer"], "peer_ms": r["peer_value"],
             "ratio": r["ratio"], "target": r["target"], "met": r["met"],
             "TFLOP_per_s": r.get("achieved_TFLOP_per_s")}
            for r in rows if "training step" in r["case"]],
    }
    report["benchmarks_cuda"] = full["benchmarks"]
else:
    report["bench_output"] = (out / "bench_cuda.txt").read_text()[-4000:]
probe = out / "bias_probe.json"
if probe.exists():
    report["bias_probe"] = json.loads(probe.read_text())
ab = out / "training_ab.json"
if ab.exists():
    report["training_ab"] = json.loads(ab.read_text())
elif (out / "training_ab.txt").exists():
    report["training_ab_output"] = (out / "training_ab.txt").read_text()[-2000:]
cpu = out / "bench_cpu.json"
if cpu.exists():
    full = json.loads(cpu.read_text())
    report["benchmarks_cpu"] = {"threads": full["environment"]["threads"],
                                "cpu": full["environment"]["cpu"],
                                "rows": [{k: r.get(k) for k in ("case", "gridformer", "peer",
                                          "peer_value", "ratio", "units", "target", "met")}
                                         for b in full["benchmarks"]
                                         for r in b.get("results", [])]}
text = json.dumps(report, indent=2)
(out / "gpu_check.json").write_text(text + "\n")
print(text)
EOF
