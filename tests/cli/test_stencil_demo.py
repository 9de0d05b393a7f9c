"""The ``gridformer stencil`` and ``gridformer demo`` commands, end to end."""

import json
import re

import pytest

from gridformer.cli.main import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_stencil_command_json_figures_and_report(tmp_path, capsys):
    out_json, out_dir = tmp_path / "out.json", tmp_path / "figs"
    rc = main(["stencil", "--equation", "heat", "--diffusivity", "0.6,0.3", "--dt", "0.4",
               "--spacing", "1", "--grid", "16,16", "--seed", "0", "--rollout-steps", "30",
               "--json", str(out_json), "--out", str(out_dir)])
    assert rc == 0
    record = json.loads(out_json.read_text())
    assert record["command"] == "stencil"
    assert record["config"]["grid"] == [16, 16]
    m = record["metrics"]
    for key in ("learned_stencil", "fd_stencil", "max_abs_error", "mass_in_support",
                "effective_max_abs_error", "rollout_steps", "rollout_rel_l2",
                "rollout_rel_l2_curve"):
        assert key in m
    fd = dict(zip(map(tuple, m["fd_stencil"]["offsets"]), m["fd_stencil"]["weights"],
                  strict=True))
    assert fd[(0, 0)] == pytest.approx(0.28)
    assert fd[(-1, 0)] == pytest.approx(0.24)
    learned = dict(zip(map(tuple, m["learned_stencil"]["offsets"]),
                       m["learned_stencil"]["weights"], strict=True))
    assert all(abs(learned[o] - w) <= 1e-3 for o, w in fd.items())
    assert m["max_abs_error"] <= 1e-3
    assert m["mass_in_support"] >= 0.999
    assert m["rollout_steps"] == 30
    assert m["rollout_rel_l2"] <= 1e-3
    assert len(m["rollout_rel_l2_curve"]) == 31
    for name in ("stencil.png", "rollout.png", "fields.png"):
        assert (out_dir / name).read_bytes()[:8] == PNG
    report = (out_dir / "report.md").read_text()
    assert "| offset (dy, dx) |" in report
    assert not list(out_dir.glob(".*"))  # no temporary files left behind
    printed = capsys.readouterr().out
    assert "mass in FD support" in printed


def test_stencil_command_bad_input(capsys):
    assert main(["stencil", "--dt", "2.0", "--grid", "8,8", "--rollout-steps", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gridformer stencil: error: dt=2.0 is unstable for heat")
    assert "use dt <= 0.555556" in err
    assert main(["stencil", "--grid", "4,4"]) == 2
    assert capsys.readouterr().err.startswith(
        "gridformer stencil: error: grid=(4, 4) is too small for the heat stencil")


@pytest.mark.slow
def test_stencil_negative_velocity_without_equals_and_json_on_stdout(capsys):
    """``--velocity -0.25,0.5`` is read as a value; the upwind stencil it implies is learned."""
    rc = main(["stencil", "--equation", "advection", "--velocity", "-0.25,0.5", "--dt", "0.4",
               "--grid", "8,8", "--steps", "10", "--rollout-steps", "3", "--json", "-"])
    assert rc == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)  # stdout carries only the record
    assert record["config"]["velocity"] == [-0.25, 0.5]
    # corner transport upwind, c_y = -0.1, c_x = 0.2: information comes from y + 1 and x - 1
    cy, cx = 0.1, 0.2
    expected = {(0, 0): (1 - cy) * (1 - cx), (1, 0): cy * (1 - cx), (0, -1): (1 - cy) * cx,
                (1, -1): cy * cx}
    m = record["metrics"]
    fd = dict(zip(map(tuple, m["fd_stencil"]["offsets"]), m["fd_stencil"]["weights"],
                  strict=True))
    assert {o: w for o, w in fd.items() if abs(w) > 0} == pytest.approx(expected)
    learned = dict(zip(map(tuple, m["learned_stencil"]["offsets"]),
                       m["learned_stencil"]["weights"], strict=True))
    assert all(abs(learned[o] - w) <= 1e-3 for o, w in expected.items())
    assert "mass in FD support" in captured.err  # the human-readable summary moved to stderr


@pytest.mark.slow
def test_demo_prints_the_table_and_writes_figures(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path / "demo"), "--json", "-"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "learned - FD" in captured.err
    assert "(+0, +0)" in captured.err
    assert str((tmp_path / "demo").resolve()) in captured.err
    record = json.loads(captured.out)
    assert record["command"] == "demo"
    m = record["metrics"]
    assert m["max_abs_error"] <= 1e-3
    assert m["mass_in_support"] >= 0.999
    assert m["rollout_rel_l2"] <= 1e-3
    assert (tmp_path / "demo" / "stencil.png").read_bytes()[:8] == PNG
    # the planted teleconnection, read back from the NetCDF file the demo wrote
    tele = m["teleconnection"]
    lat0, lat1, lon0, lon1 = tele["source_box"]
    assert re.search(rf"attention peaks at the token centred at \({tele['peak_lat']:g}, "
                     rf"{tele['peak_lon']:g}\), which covers planted source cells; "
                     rf"source box lat {lat0:g}\.\.{lat1:g}, lon {lon0:g}\.\.{lon1:g} "
                     rf"\(cell centres; 10,\d\d\d km from the target region\); pattern correlation "
                     rf"{tele['pattern_correlation']:.2f}", captured.err)
    assert tele["peak_in_source"]
    assert tele["attention_mass_in_source"] >= 0.5 > 0.05 > tele["uniform_mass_in_source"]
    assert tele["pattern_correlation"] >= 0.8
    assert tele["file"] == str(tmp_path / "demo" / "planted_teleconnection.nc")
    assert (tmp_path / "demo" / "teleconnection" / "teleconnection.png").read_bytes()[:8] == PNG
