"""The ``gridformer stencil`` and ``gridformer demo`` commands, end to end."""

import json

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


def test_stencil_command_bad_input(tmp_path, capsys):
    assert main(["stencil", "--dt", "2.0", "--grid", "8,8", "--rollout-steps", "2"]) == 2
    assert "dt" in capsys.readouterr().err
    assert main(["stencil", "--grid", "4,4"]) == 2
    assert "too small" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_demo_prints_the_table_and_writes_figures(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path / "demo"), "--json", str(tmp_path / "d.json")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "learned - FD" in printed
    assert "(+0, +0)" in printed
    assert str((tmp_path / "demo").resolve()) in printed
    m = json.loads((tmp_path / "d.json").read_text())["metrics"]
    assert m["max_abs_error"] <= 1e-3
    assert m["mass_in_support"] >= 0.999
    assert m["rollout_rel_l2"] <= 1e-3
    assert (tmp_path / "demo" / "stencil.png").exists()
