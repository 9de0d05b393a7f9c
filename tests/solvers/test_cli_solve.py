"""``gridformer solve``: NetCDF output, JSON record, errors, determinism."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from gridformer.cli.main import main


def test_solve_heat_writes_cf_netcdf_and_json(tmp_path):
    out, record = tmp_path / "heat.nc", tmp_path / "m.json"
    code = main(["solve", "heat", "--grid", "16,16", "--steps", "20", "--diffusivity", "0.6,0.3",
                 "--samples", "2", "--out", str(out), "--json", str(record)])
    assert code == 0
    with xr.open_dataset(out) as ds:
        assert ds.u.dims == ("time", "sample", "y", "x")
        assert ds.u.shape == (21, 2, 16, 16)
        assert ds.attrs["equation"] == "heat"
        assert list(ds.attrs["diffusivity"]) == [0.6, 0.3]
        assert ds.attrs["Conventions"].startswith("CF")
        assert ds.u.attrs["units"] == "1"
        assert "long_name" in ds.x.attrs
    result = json.loads(record.read_text())
    assert result["command"] == "solve"
    metrics = result["metrics"]
    assert metrics["mass_drift"] < 1e-12
    assert 0 < metrics["cfl"] <= 0.25
    assert {"final_min", "final_max", "final_mean", "solve_seconds"} <= set(metrics)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_solve_is_deterministic_per_seed_and_accepts_a_folder(tmp_path):
    args = ["solve", "advection", "--grid", "32", "--steps", "8", "--velocity", "1",
            "--scheme", "lax_wendroff", "--seed", "3", "--dt", "0.5"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.nc")]) == 0
    with (xr.open_dataset(tmp_path / "a" / "advection.nc") as a,
          xr.open_dataset(tmp_path / "b.nc") as b):
        np.testing.assert_array_equal(a.u.values, b.u.values)
        assert a.attrs["scheme"] == "lax_wendroff"


def test_gray_scott_writes_two_fields(tmp_path):
    assert main(["solve", "gray_scott", "--grid", "12,12", "--steps", "4", "--out",
                 str(tmp_path / "gs.nc")]) == 0
    with xr.open_dataset(tmp_path / "gs.nc") as ds:
        assert set(ds.data_vars) == {"u", "v"}


def test_errors_exit_2_with_the_message(tmp_path, capsys):
    out = str(tmp_path / "x.nc")
    assert main(["solve", "heat", "--grid", "8", "--dt", "0.8", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "gridformer solve: error: dt=0.8 is unstable for heat" in err
    assert "use dt <= 0.5" in err
    assert not (tmp_path / "x.nc").exists()
    assert main(["solve", "heat", "--grid", "8", "--velocity", "1"]) == 2
    assert "unknown parameter(s) 'velocity' for heat" in capsys.readouterr().err


def test_blow_up_is_exit_1_with_the_message_on_stderr(tmp_path, capsys, monkeypatch):
    import gridformer.solvers
    from gridformer.solvers import BlowUpError

    def blow_up(*args, **kwargs):
        raise BlowUpError("heat solve blew up: non-finite values (NaN/inf) found at step 7")

    monkeypatch.setattr(gridformer.solvers, "solve", blow_up)  # the command imports it lazily
    out = tmp_path / "x.nc"
    assert main(["solve", "heat", "--grid", "8", "--steps", "10", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "gridformer solve: error: heat solve blew up" in captured.err
    assert "at step 7" in captured.err
    assert captured.out == ""
    assert not out.exists()
