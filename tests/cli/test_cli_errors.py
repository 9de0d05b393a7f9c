"""Exit statuses: a user's mistake (2, one line), a failed run (1), a bug (1, "this is a bug")."""

from __future__ import annotations

import re

import numpy as np
import pytest

import gridformer.cli.solve
from gridformer import datasets, solvers
from gridformer.cli.errors import classify
from gridformer.cli.main import main

SOLVE = ["solve", "heat", "--grid", "8", "--steps", "2"]


def _numpy_value_error(*args, **kwargs):
    return np.arange(3).reshape(2, 2)  # ValueError raised inside numpy


def _key_error(*args, **kwargs):
    return {}["cfl"]


def test_value_error_inside_numpy_is_an_internal_error_not_a_usage_error(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(solvers, "solve", _numpy_value_error)
    assert main([*SOLVE, "--out", str(tmp_path / "x.nc")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gridformer solve: internal error: ValueError: cannot reshape array")
    assert "This is a bug in gridformer, not a problem with your input." in err
    assert "gridformer --debug solve ..." in err
    assert "gridformer solve: error:" not in err


def test_key_error_names_where_it_happened(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gridformer.cli.solve, "_metrics", _key_error)
    assert main([*SOLVE, "--out", str(tmp_path / "x.nc")]) == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("gridformer solve: internal error: KeyError: 'cfl' (at ")
    assert re.search(r"test_cli_errors\.py:\d+ in _key_error\)$", first), first


def test_wrong_call_inside_gridformer_is_an_internal_error(tmp_path, capsys, monkeypatch):
    """Python raises this TypeError in gridformer's own frame, but it is no ``raise``: a bug."""

    def needs_more(equation, grid, spacing, samples, seed, *, modes):
        raise AssertionError("not reached")

    monkeypatch.setattr(gridformer.cli.solve, "random_initial_state", needs_more)
    assert main([*SOLVE, "--out", str(tmp_path / "x.nc")]) == 1
    err = capsys.readouterr().err
    assert "internal error: TypeError:" in err
    assert "missing 1 required keyword-only argument: 'modes'" in err


def test_validation_error_from_the_library_stays_a_one_line_usage_error(tmp_path, capsys):
    assert main([*SOLVE, "--dt", "0.8", "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert err == ("gridformer solve: error: dt=0.8 is unstable for heat with diffusivity=1.0, "
                   "dx=1.0 (diffusion number D dt/dx^2 = 0.8 > 0.5); use dt <= 0.5\n")


def test_os_error_is_a_failed_run_not_a_bug(tmp_path, capsys, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(datasets, "write_netcdf", disk_full)
    assert main([*SOLVE, "--out", str(tmp_path / "x.nc")]) == 1
    assert capsys.readouterr().err == (
        "gridformer solve: error: [Errno 28] No space left on device\n")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_raises_with_the_traceback(tmp_path, monkeypatch, where):
    monkeypatch.setattr(gridformer.cli.solve, "_metrics", _key_error)
    argv = [*SOLVE, "--out", str(tmp_path / "x.nc")]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    with pytest.raises(KeyError, match="cfl"):
        main(argv)


def test_debug_also_raises_usage_errors(tmp_path):
    with pytest.raises(ValueError, match=r"dt=0.8 is unstable for heat"):
        main(["--debug", *SOLVE, "--dt", "0.8", "--out", str(tmp_path / "x.nc")])


def test_interrupt_is_exit_130_without_a_traceback(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(solvers, "solve", interrupted)
    assert main([*SOLVE, "--out", str(tmp_path / "x.nc")]) == 130
    assert capsys.readouterr().err == "gridformer solve: interrupted\n"


def _raised(function, *args, **kwargs):
    try:
        function(*args, **kwargs)
    except Exception as error:
        return error
    raise AssertionError(f"{function} raised nothing")


def test_classify():
    library = _raised(solvers.update_stencil, "heat", dt=-1.0, spacing=1.0)
    assert isinstance(library, ValueError)
    assert classify(library) == "usage"
    assert classify(_raised(np.zeros(3).reshape, 2, 2)) == "internal"
    assert classify(_raised(open, "/nonexistent/gridformer/file")) == "usage"
    assert classify(FloatingPointError("non-finite at step 3")) == "runtime"
    assert classify(ValueError("raised outside any traceback")) == "internal"
    assert classify(RuntimeError("anything else")) == "internal"
