"""What ``benchmarks/gpu_check.sh`` imports works from an uninstalled checkout without the
packages a GPU machine lacks (netCDF4, cftime, dask, distributed, cf_xarray, zarr, flox, xeofs,
py-pde, xbatcher)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _hidden import HIDE_MISSING

REPO = Path(__file__).resolve().parents[2]
MISSING = ["netCDF4", "cftime", "dask", "distributed", "cf_xarray", "zarr", "flox", "xeofs",
           "pde", "xbatcher"]

# Runs in a fresh interpreter: drop the editable install's import hook, hide the missing
# packages, then import what the GPU check imports through benchmarks._uninstalled.
SCRIPT = HIDE_MISSING + """
for name in [m for m in sys.modules if m.split(".")[0] == "gridformer"]:
    del sys.modules[name]
try:
    import gridformer.solvers
    without_shim = "imported"
except ModuleNotFoundError as error:
    without_shim = str(error)
import benchmarks._uninstalled  # noqa: the shim under test
import gridformer.model, gridformer.solvers, gridformer.tokenize
from benchmarks import bench_solvers, bench_tokenizer, bench_training
from benchmarks.__main__ import _run_module
print(json.dumps({"without_shim": without_shim,
    "solvers": gridformer.solvers.__file__, "tokenize": gridformer.tokenize.__file__,
    "bench_solvers": bench_solvers.__file__,
    "data": _run_module("bench_data", quick=True, device="cpu"),
    "loaded_missing": sorted(m for m in sys.modules if m.split(".")[0] in MISSING),
}))
"""


def test_gpu_check_imports_work_uninstalled_without_the_data_packages(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # as gpu_check.sh sets it
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(MISSING)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["without_shim"] == "No module named 'gridformer.solvers'"
    assert Path(found["solvers"]) == REPO / "solvers" / "__init__.py"
    assert Path(found["tokenize"]) == REPO / "gridformer" / "tokenize" / "__init__.py"
    assert Path(found["bench_solvers"]) == REPO / "benchmarks" / "bench_solvers.py"
    assert found["loaded_missing"] == []
    # bench_data needs the data packages: the runner reports it skipped instead of failing
    assert found["data"]["name"] == "bench_data"
    assert found["data"]["skipped"].startswith("cannot import benchmarks.bench_data: ")
