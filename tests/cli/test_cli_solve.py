"""``gridformer solve``: NetCDF output, JSON record, errors, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
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
    final = ds_final(out)
    assert metrics["final_min"] == pytest.approx(float(final.min()))
    assert metrics["final_max"] == pytest.approx(float(final.max()))
    assert metrics["path"] == str(out)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def ds_final(path):
    with xr.open_dataset(path) as ds:
        return ds.u.isel(time=-1).load()


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
        assert ds.v.dims == ds.u.dims == ("time", "sample", "y", "x")
        assert ds.v.attrs["long_name"] == "solution field v"


@pytest.mark.parametrize("velocity", [["--velocity", "-1,1"], ["--velocity=-1,1"]])
def test_negative_velocity_vector_without_equals_reaches_the_solver(tmp_path, velocity):
    """``--velocity -1,1`` (argparse used to read it as an option) reaches the solver: upwind
    at Courant number 1 in both dims moves u exactly one cell per step along v."""
    out = tmp_path / "adv.nc"
    assert main(["solve", "advection", "--grid", "8,8", *velocity, "--dt", "1",
                 "--scheme", "upwind", "--steps", "3", "--out", str(out)]) == 0
    with xr.open_dataset(out) as ds:
        assert list(ds.attrs["velocity"]) == [-1.0, 1.0]
        u = ds.u.isel(sample=0).values  # (time, y, x)
    # u(y, x, t) = u0(y - v_y t, x - v_x t) = u0(y + t, x - t)
    np.testing.assert_allclose(u[3], np.roll(u[0], (-3, 3), axis=(0, 1)), atol=1e-13)


def test_json_dash_writes_only_the_record_to_stdout(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "h.nc"
    assert main(["solve", "heat", "--grid", "8", "--steps", "4", "--out", str(out),
                 "--json", "-"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)  # nothing but the JSON on stdout
    assert record["command"] == "solve"
    assert record["metrics"]["path"] == str(out)
    assert record["metrics"]["steps"] == 4
    assert "json" not in record["config"]
    assert "solved heat on (8,) for 4 steps" in captured.err
    assert not (tmp_path / "-").exists()  # the reported bug: a file named "-"


def test_without_out_writes_the_default_path_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["solve", "heat", "--grid", "8", "--steps", "2"]) == 0
    path = tmp_path / "gridformer-out" / "solve" / "heat.nc"
    with xr.open_dataset(path) as ds:
        assert ds.u.shape == (3, 1, 8)
    assert capsys.readouterr().out.rstrip().endswith("-> gridformer-out/solve/heat.nc")


def test_help_names_the_default_output(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no line breaks inside the path
    with pytest.raises(SystemExit) as exit_info:
        main(["solve", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: gridformer-out/solve/EQUATION.nc)" in text


def test_unwritable_out_is_refused_before_solving(tmp_path, capsys, monkeypatch):
    import gridformer.solvers

    def must_not_run(*args, **kwargs):
        raise AssertionError("solve ran although the output path is unusable")

    monkeypatch.setattr(gridformer.solvers, "solve", must_not_run)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["solve", "heat", "--grid", "8", "--out", str(blocker / "x.nc")]) == 2
    assert capsys.readouterr().err == (
        f"gridformer solve: error: --out={str(blocker / 'x.nc')!r} cannot be written: "
        f"{str(blocker)!r} is a file, not a folder\n")
    (tmp_path / "dir.nc").mkdir()
    assert main(["solve", "heat", "--grid", "8", "--out", str(tmp_path / "dir.nc")]) == 2
    assert "is a folder named like a file" in capsys.readouterr().err


def test_errors_exit_2_with_the_message(tmp_path, capsys):
    out = str(tmp_path / "x.nc")
    assert main(["solve", "heat", "--grid", "8", "--dt", "0.8", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "gridformer solve: error: dt=0.8 is unstable for heat" in err
    assert "use dt <= 0.5" in err
    assert not (tmp_path / "x.nc").exists()
    assert "Traceback" not in err
    assert err.count("\n") == 1  # one line
    assert main(["solve", "heat", "--grid", "8", "--velocity", "1"]) == 2
    assert "unknown parameter(s) 'velocity' for heat" in capsys.readouterr().err
    assert main(["solve", "heat", "--grid", "8,8,8"]) == 2
    assert capsys.readouterr().err == (
        "gridformer solve: error: --grid=8,8,8 must be X or Y,X with at least 2 points each\n")


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
