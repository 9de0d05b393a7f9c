"""The stencil report's PDEBench metrics and figures, on a hand-built result (no training).

The "learned" model is upwind advection with weights (0.21, 0.79) instead of FD's (0.2, 0.8):
both rows sum to 1, so both updates conserve the total exactly, and the one-step error is
``0.01 (u[x-1] - u[x])``, computable by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from gridformer import solvers
from gridformer.analysis import (
    compare_stencils,
    pdebench_metrics,
    rollout_errors,
    spectral_error,
)
from gridformer.experiments.stencil_report import (
    _rollout_figure,
    pdebench_table,
    stencil_figure,
    summary_lines,
    write_stencil_report,
)
from gridformer.experiments.stencil_result import StencilResult

PNG = b"\x89PNG\r\n\x1a\n"
STEPS = 5


def _roll(u0: np.ndarray, weights: dict[int, float], steps: int) -> np.ndarray:
    """``(steps + 1, *u0.shape)``: u_new[x] = sum_o w[o] u[x + o], periodic."""
    frames = [u0]
    for _ in range(steps):
        frames.append(sum(w * np.roll(frames[-1], -o, axis=-1) for o, w in weights.items()))
    return np.stack(frames)


def _stencil(weights: dict[int, float]) -> xr.DataArray:
    offsets = np.arange(-2, 3)
    return xr.DataArray([weights.get(int(o), 0.0) for o in offsets], dims="dx",
                        coords={"dx": offsets})


@pytest.fixture
def result() -> StencilResult:
    x = np.arange(32)
    u0 = np.stack([np.sin(2 * np.pi * x / 32), np.cos(2 * np.pi * 3 * x / 32) + 0.5])  # (S, X)
    fd = solvers.update_stencil("advection", dt=0.4, spacing=1.0, velocity=0.5)
    learned = {-1: 0.21, 0: 0.79}
    reference = xr.DataArray(_roll(u0, {-1: 0.2, 0: 0.8}, STEPS), dims=("time", "sample", "x"),
                             coords={"time": 0.4 * np.arange(STEPS + 1)})
    prediction = _roll(u0, learned, STEPS)
    diverged = prediction.copy()
    diverged[3:] = np.inf  # a baseline that blew up after two steps
    learned_da = _stencil(learned)
    return StencilResult(
        equation="advection", params={"velocity": 0.5}, grid=(32,), dt=0.4, spacing=(1.0,),
        seed=0, model="stencil", optimizer="lbfgs", radius=1, learned_stencil=learned_da,
        effective_stencil=learned_da, fd_stencil=fd.reset_coords(drop=True),
        comparison=compare_stencils(learned_da, fd), effective_comparison=None,
        rollout=rollout_errors(prediction, reference, pdebench=True),
        spectral=spectral_error(reference.copy(data=prediction).isel(time=-1),
                                reference.isel(time=-1)),
        prediction=prediction, reference=reference, upwind_consistency=None,
        baselines={"cnn": {"fit": {"loss": 1.0, "seconds": 0.5},
                           "rollout": rollout_errors(diverged, reference, pdebench=True)}},
        fit={"loss": 0.0, "evaluations": 3, "seconds": 0.1}, seconds=0.2,
    )


def test_metrics_report_pdebench_numbers_beside_the_old_keys(result):
    m = result.metrics()
    json.dumps(m, allow_nan=False)  # JSON-ready: a diverged baseline gives null, not Infinity
    u0 = result.prediction[0]
    # one step: error 0.01 (u[x-1] - u[x]), RMSE over x averaged over the two samples
    error = 0.01 * (np.roll(u0, 1, axis=-1) - u0)
    one = m["pdebench"]["one_step"]
    assert one["step"] == 1
    assert one["rmse"] == pytest.approx(np.sqrt((error**2).mean(axis=-1)).mean(), rel=1e-12)
    assert one["max_error"] == pytest.approx(np.abs(error).max(), rel=1e-12)
    # both stencils sum to 1: the total is conserved, so PDEBench's cRMSE is round-off only
    for row in ("one_step", "final", "rollout_mean"):
        assert abs(m["pdebench"][row]["crmse"]) < 1e-15
        assert m["pdebench"][row]["rmse"] > 1e-3
    # PDEBench's nRMSE is the relative L2 error the report already had (kept under its key)
    final = m["pdebench"]["final"]
    assert final["step"] == STEPS
    assert final["nrmse"] == pytest.approx(m["rollout_rel_l2"], rel=1e-12)
    assert m["rollout_rel_l2_curve"][1] == pytest.approx(one["nrmse"], rel=1e-12)
    # the rollout mean is what PDEBench's tables report: its metrics with initial_step=1
    table = pdebench_metrics(result.reference.copy(data=result.prediction), result.reference,
                             initial_step=1)
    mean = m["pdebench"]["rollout_mean"]
    assert mean["steps"] == [1, STEPS]
    for name in ("rmse", "nrmse", "max_error", "brmse"):
        assert mean[name] == pytest.approx(float(table[name]), rel=1e-12), name
    for band in ("low", "mid", "high"):
        assert mean["frmse"][band] == pytest.approx(float(table["frmse"].sel(band=band)),
                                                    rel=1e-12)
    cnn = m["baselines"]["cnn"]
    assert cnn["rollout_rel_l2"] is None
    assert cnn["pdebench"]["final"]["rmse"] is None
    assert cnn["pdebench"]["rollout_mean"]["rmse"] is None  # a diverged step spoils the mean
    assert cnn["pdebench"]["one_step"]["rmse"] == pytest.approx(one["rmse"])


def test_report_has_a_pdebench_table_and_plot_figures(result, tmp_path):
    table = pdebench_table(result).splitlines()
    assert table[0] == ("| model | step | RMSE | nRMSE | cRMSE | max error | bRMSE | fRMSE low "
                        "| fRMSE mid | fRMSE high |")
    assert [row.split(" | ")[:2] for row in table[2:]] == [
        ["| stencil", "1"], ["| stencil", "5"], ["| stencil", "mean 1-5"],
        ["| cnn", "1"], ["| cnn", "5"], ["| cnn", "mean 1-5"]]
    assert table[5].split(" | ")[2] == format(result.metrics()["pdebench"]["one_step"]["rmse"],
                                              ".3g")
    assert table[6].split(" | ")[2] == "n/a"  # the diverged baseline
    rmse = format(result.metrics()["pdebench"]["final"]["rmse"], ".3g")
    assert f"PDEBench RMSE at 5        {rmse} (cRMSE " in summary_lines(result)[5]
    paths = write_stencil_report(result, tmp_path)
    assert [p.name for p in paths] == ["stencil.png", "rollout.png", "fields.png", "report.md"]
    for path in paths[:3]:
        assert path.read_bytes()[:8] == PNG
    report = (tmp_path / "report.md").read_text()
    assert "## PDEBench metrics" in report
    assert "\n".join(table) in report


def test_figures_come_from_gridformer_plot(result):
    """Stencils side by side with each weight written on its bar; rollout curves per model,
    PDEBench's fRMSE per band, and the error by wavenumber."""
    fig = stencil_figure(result)
    assert [ax.get_title() for ax in fig.axes] == ["learned (attention)", "finite difference",
                                                   "learned - FD"]
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["0", "0.21", "0.79", "0", "0"]
    fig = _rollout_figure(result)
    l2, bands, spectral = fig.axes[:3]
    assert [line.get_label() for line in l2.lines] == [
        "stencil (attention): relative L2 error", "cnn (diverges): relative L2 error"]
    np.testing.assert_allclose(l2.lines[0].get_xdata(), np.arange(STEPS + 1))
    np.testing.assert_allclose(l2.lines[0].get_ydata()[1:], result.rollout.rel_l2.values[1:])
    assert [line.get_label() for line in bands.lines] == [
        "pdebench_frmse low", "pdebench_frmse mid", "pdebench_frmse high"]
    assert spectral.get_xlabel() == "wavenumber (rad / length unit)"
    assert [line.get_label() for line in spectral.lines] == ["relative error by wavenumber"]
