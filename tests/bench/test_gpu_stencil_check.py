"""``benchmarks/gpu_stencil_check``: refuses without CUDA, runs the recipe from an uninstalled
checkout without cf_xarray / dask / h5py (plumbing on the CPU), stand-ins leave no trace."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _hidden import HIDE_MISSING

REPO = Path(__file__).resolve().parents[2]
MISSING = ["cf_xarray", "dask", "h5py", "distributed", "zarr", "netCDF4", "cftime", "flox",
           "matplotlib"]

# A fresh interpreter without the editable install's hook and blind to MISSING (as the GPU
# machine's image: torch, numpy, scipy, xarray, numba), then the check at 8 x 8, 2 Adam steps.
SCRIPT = HIDE_MISSING + """
from benchmarks.gpu_stencil_check import main
code = main(["--device", "cpu", "--grid", "8", "--steps", "2", "--rollout-steps", "2",
             "--out", sys.argv[2]])
print(json.dumps({"code": code, "solvers": sys.modules["gridformer.solvers"].__file__,
                  "left": sorted(m for m in sys.modules if m.split(".")[0] in MISSING),
                  "dask_spec": importlib.util.find_spec("dask") is not None}))
"""


@pytest.mark.slow
def test_runs_uninstalled_without_the_data_packages_and_writes_the_record(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(MISSING), str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["code"] == 0
    assert found["solvers"] == str(REPO / "solvers" / "__init__.py")
    assert found["left"] == []  # the stand-ins are gone once gridformer is imported
    assert found["dask_spec"] is False  # ... so xarray still sees dask as absent
    assert "['cf_xarray', 'dask', 'h5py'] not installed; empty stand-ins" in out.stdout
    record = json.loads((tmp_path / "transformer_stencil_8x8_seed4.json").read_text())
    assert record["config"]["seeds"] == [4]
    assert record["config"]["device"] == "cpu"
    assert record["config"]["settings"]["grid"] == [8, 8]
    assert record["config"]["settings"]["steps"] == 2
    assert record["config"]["settings"]["ablation"] == []
    assert record["stand_ins"] == ["cf_xarray", "dask", "h5py"]
    for equation in ("heat", "advection"):
        row = record["per_equation"][equation]
        rollout = row["rollout_rel_l2"]
        assert rollout["value"] == record["metrics"][f"{equation}_rollout_rel_l2"]["mean"]
        assert rollout["met"] is (rollout["value"] <= 1e-2)  # 2 Adam steps: far from it
        mass = row["last_layer_mass_in_support"]
        assert mass["met"] is (mass["value"] >= 0.99)


def test_refuses_cuda_when_there_is_none(monkeypatch, capsys, tmp_path):
    import torch

    from benchmarks.gpu_stencil_check import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--device cuda but torch" in err
    assert "sees no CUDA device here" in err
    assert "pass --device cpu for a plumbing check" in err
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing written


def test_bad_arguments_name_the_argument(capsys):
    from benchmarks.gpu_stencil_check import main

    with pytest.raises(SystemExit):
        main(["--grid", "2"])
    assert "--grid=2 must be >= 4" in capsys.readouterr().err


def test_stand_ins_only_for_missing_packages_and_only_inside_the_block():
    from benchmarks._uninstalled import stand_ins_for_missing

    absent = "gridformer_no_such_package_xyz"
    with stand_ins_for_missing([absent, "numpy"]) as missing:
        assert missing == [absent]  # numpy is installed: not stood in for
        module = importlib.import_module(f"{absent}.sub")
        assert module.__name__ == f"{absent}.sub"
    assert importlib.util.find_spec(absent) is None
    assert not any(m.split(".")[0] == absent for m in sys.modules)
