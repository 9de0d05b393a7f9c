"""Stencil panels and rollout curves hold the numbers, labels and colour bars they should."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

from gridformer import plot, solvers


def cell_texts(ax) -> dict[tuple[float, float], str]:
    return {tuple(np.round(t.get_position(), 6)): t.get_text() for t in ax.texts}


@pytest.fixture
def fd() -> xr.DataArray:
    """FTCS heat stencil, r = 0.2 per axis: centre 0.2, four neighbours 0.2."""
    return solvers.update_stencil("heat", dt=0.2, spacing=1.0, diffusivity=(1.0, 1.0))


@pytest.fixture
def learned(fd) -> xr.DataArray:
    """The FD weights, slightly off, plus a weight at (dy, dx) = (2, 0) outside FD's support."""
    rng = np.random.default_rng(0)
    noisy = fd + 0.01 * rng.standard_normal(fd.shape)
    extra = xr.DataArray([[0.03]], dims=("dy", "dx"), coords={"dy": [2], "dx": [0]})
    return noisy.combine_first(extra).fillna(0.0)


def test_stencil_panels_show_every_weight_in_its_cell(learned, fd):
    fig = plot.stencils(learned, fd)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in panels] == ["learned", "finite difference", "learned - FD"]
    full = learned.reindex(dy=np.arange(-1, 3), dx=np.arange(-1, 2), fill_value=0.0)
    fd_full = fd.reindex_like(full, fill_value=0.0)
    for ax, values in zip(panels, (full, fd_full, full - fd_full), strict=True):
        expected = {(float(dx), float(dy)): format(float(values.sel(dy=dy, dx=dx)), ".3g")
                    for dy in full.dy.values for dx in full.dx.values}
        assert cell_texts(ax) == expected
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("dx (cells)", "dy (cells)")
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 3
    assert bars[0].get_ylabel() == "weight (dimensionless)"
    # learned and FD share one colour scale so equal colours mean equal weights
    assert panels[0].collections[0].get_clim() == panels[1].collections[0].get_clim()


def test_1d_stencils_are_bars_labelled_with_their_weights(tmp_path):
    fd = solvers.update_stencil("advection", dt=0.5, spacing=1.0, velocity=1.0)
    fig = plot.stencils(fd, fd, difference=False)
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, fd.values)
    assert [t.get_text() for t in ax.texts] == [format(float(v), ".3g") for v in fd.values]
    assert ax.get_xlabel() == "dx (cells)"
    fig.savefig(tmp_path / "bars.png")
    assert (tmp_path / "bars.png").read_bytes()[:4] == b"\x89PNG"


def test_stencils_draw_into_given_axes(learned, fd):
    fig = Figure()
    axes = [fig.add_subplot(1, 2, i + 1) for i in range(2)]
    assert plot.stencils(learned, fd, difference=False, ax=axes) is fig
    assert axes[1].get_title() == "finite difference"
    with pytest.raises(ValueError, match=r"ax must be a sequence of 3 Axes \(learned, finite "
                                         r"difference, learned - FD\)"):
        plot.stencils(learned, fd, ax=axes)
    with pytest.raises(ValueError, match=r"reference dims \('dx',\) differ from learned dims"):
        plot.stencils(learned, fd.isel(dy=0))


@pytest.fixture
def errors() -> xr.Dataset:
    time = xr.DataArray(np.arange(1, 6) * 0.5, dims="time", attrs={"units": "s"})
    ds = xr.Dataset({"rel_l2": ("time", [0.01, 0.02, 0.04, 0.08, 0.16]),
                     "nrmse": ("time", [0.02, 0.03, 0.05, 0.09, 0.2])},
                    coords={"time": time, "step": ("time", np.arange(1, 6))})
    ds["rel_l2"].attrs = {"long_name": "relative L2 error", "units": "1"}
    ds["nrmse"].attrs = {"long_name": "RMSE / std of reference", "units": "1"}
    return ds


def test_rollout_curves_one_line_per_model_and_metric(errors):
    blown = errors.copy(deep=True)
    blown["rel_l2"][-1] = np.inf  # a diverged step is left out, not drawn off the scale
    fig = plot.rollout_curves({"gridformer": errors, "unet": blown})
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["gridformer: relative L2 error", "gridformer: RMSE / std of reference",
                      "unet: relative L2 error", "unet: RMSE / std of reference"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0.5, 1.0, 1.5, 2.0, 2.5])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), errors["nrmse"].values)
    assert np.isnan(ax.lines[2].get_ydata()[-1])
    assert ax.get_xlabel() == "time (s)"
    assert ax.get_ylabel() == "error (dimensionless)"
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels


def test_rollout_curves_by_step_and_per_band():
    from gridformer.analysis import pdebench_metrics_per_step

    rng = np.random.default_rng(0)
    target = xr.DataArray(rng.standard_normal((4, 2, 64)), dims=("time", "sample", "x"))
    steps = pdebench_metrics_per_step(target + 0.1, target)
    fig = plot.rollout_curves(steps, variables=["rmse", "frmse"], x="step", logy=False)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == [
        "root-mean-square error", "frmse low", "frmse mid", "frmse high"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 0.1)
    assert ax.get_xlabel() == "step"


def test_rollout_curves_errors_name_what_is_missing(errors):
    with pytest.raises(ValueError, match=r"variables \['mae'\] of 'a' are not data variables "
                                         r"over 'time'"):
        plot.rollout_curves({"a": errors}, variables="mae")
    with pytest.raises(ValueError, match="x='epoch' is neither a dim nor a coordinate"):
        plot.rollout_curves(errors, x="epoch")
    with pytest.raises(TypeError, match=r"errors\['a'\] must be an xr.Dataset or xr.DataArray"):
        plot.rollout_curves({"a": [1, 2]})
