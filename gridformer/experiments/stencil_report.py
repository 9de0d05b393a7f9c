"""Tables, figures and a Markdown report of a stencil experiment.

The stencil and rollout figures are drawn by :mod:`gridformer.plot` (``stencils``,
``rollout_curves``) on ``matplotlib.figure.Figure`` objects saved through an explicit Agg
canvas, so no global backend is chosen; every file is written atomically
(``gridformer._io.atomic_path``). The report sets PDEBench's metrics (RMSE, nRMSE, cRMSE, max
error, bRMSE, fRMSE by band) beside the stencil numbers, in the layout of PDEBench's tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gridformer._io import atomic_path
from gridformer.experiments.stencil_result import StencilResult

__all__ = ["pdebench_table", "stencil_figure", "stencil_table", "summary_lines",
           "write_stencil_report"]


def _fmt(value: Any, spec: str = ".3g") -> str:
    return "n/a" if value is None else format(value, spec)


def stencil_table(result: StencilResult, *, markdown: bool = False) -> str:
    """Learned vs FD weight per offset (the FD support plus any learned weight >= 1e-4)."""
    learned = result.shown_stencil("learned")
    if learned is None:
        learned = result.shown_stencil("effective")
    fd = result.fd_stencil
    rows = []
    stacked = learned.stack(o=learned.dims)
    for offset, w in zip(stacked.o.values, stacked.values, strict=True):
        key = dict(zip(learned.dims, np.atleast_1d(offset), strict=True))
        ref = float(fd.sel(key)) if fd is not None and all(
            int(v) in fd[d].values for d, v in key.items()) else 0.0
        if abs(ref) > 0 or abs(w) >= 1e-4:
            label = "(" + ", ".join(f"{int(v):+d}" for v in key.values()) + ")"
            rows.append((label, float(w), ref if fd is not None else None))
    header = ("offset (" + ", ".join(learned.dims) + ")", "learned", "FD", "learned - FD")
    body = [(o, f"{w:.6f}", _fmt(r, ".6f"), _fmt(None if r is None else w - r, "+.2e"))
            for o, w, r in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *body, strict=True)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))]
                     + [fmt.format(*row) for row in body])


def summary_lines(result: StencilResult) -> list[str]:
    """The headline numbers, one per line."""
    m = result.metrics()
    lines = [
        f"equation {result.equation} {result.params}, grid {result.grid}, dt {result.dt}, "
        f"spacing {result.spacing}, model {result.model} ({result.optimizer})",
        f"max |learned - FD|        {_fmt(m['max_abs_error'])}",
        f"mass in FD support        {_fmt(m['mass_in_support'], '.6f')}",
        f"effective stencil error   {_fmt(m['effective_max_abs_error'])}",
        f"rollout rel. L2 at {m['rollout_steps']:<4d}  {_fmt(m['rollout_rel_l2'])}",
    ]
    final = (m["pdebench"] or {}).get("final")
    if final is not None:
        bands = "/".join(_fmt(final["frmse"][band]) for band in ("low", "mid", "high"))
        lines.append(f"PDEBench RMSE at {final['step']:<4d}     {_fmt(final['rmse'])} (cRMSE "
                     f"{_fmt(final['crmse'])}, fRMSE low/mid/high {bands})")
    if m["upwind_consistency"] is not None:
        lines.append(f"upwind consistency        {m['upwind_consistency']:.3f}")
    for name, b in m.get("baselines", {}).items():
        value = b["rollout_rel_l2"]
        shown = "diverged (non-finite)" if value is None else _fmt(value)
        lines.append(f"baseline {name:<4s} rollout L2  {shown}")
    lines.append(f"training {m['train_seconds']:.1f} s ({m['train_evaluations']} evaluations), "
                 f"total {m['seconds']:.1f} s")
    return lines


_PDEBENCH_COLUMNS = (("rmse", "RMSE"), ("nrmse", "nRMSE"), ("crmse", "cRMSE"),
                     ("max_error", "max error"), ("brmse", "bRMSE"))


def pdebench_table(result: StencilResult) -> str:
    """PDEBench's metrics as a Markdown table: one row per model and step (step 1, the last
    step, the mean over steps ``1..N``), one column per metric, as in PDEBench's tables."""
    m = result.metrics()
    models = {result.model: m["pdebench"]}
    models.update({name: b["pdebench"] for name, b in m.get("baselines", {}).items()})
    header = ["model", "step", *(label for _, label in _PDEBENCH_COLUMNS),
              "fRMSE low", "fRMSE mid", "fRMSE high"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, summary in models.items():
        if summary is None:
            continue
        for key in ("one_step", "final", "rollout_mean"):
            row = summary[key]
            step = (f"mean {row['steps'][0]}-{row['steps'][1]}" if key == "rollout_mean"
                    else str(row["step"]))
            cells = [model, step, *(_fmt(row[name]) for name, _ in _PDEBENCH_COLUMNS),
                     *(_fmt(row["frmse"][band]) for band in ("low", "mid", "high"))]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _save(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def stencil_figure(result: StencilResult) -> Any:
    """Learned | FD | learned - FD with the weights in the cells (``gridformer.plot``)."""
    from gridformer import plot

    learned = result.shown_stencil("learned")
    title = "learned (attention)"
    if learned is None:
        learned, title = result.shown_stencil("effective"), "learned (effective)"
    if result.fd_stencil is not None:
        return plot.stencils(learned, result.fd_stencil,
                             titles=(title, "finite difference", "learned - FD"))
    return plot.stencils(learned, result.shown_stencil("effective"), difference=False,
                         titles=(title, "effective (Jacobian)"))


def _rollout_figure(result: StencilResult) -> Any:
    """Rollout error per model, PDEBench's fRMSE by band, and the error by wavenumber."""
    from gridformer import plot
    from gridformer.plot._axes import PlotFigure

    fig = PlotFigure(figsize=(15, 3.8), layout="constrained")
    ax_l2, ax_bands, ax_k = (fig.add_subplot(1, 3, i + 1) for i in range(3))
    curves = {f"{result.model} (attention)": result.rollout}
    curves.update({name: b["rollout"] for name, b in result.baselines.items()})
    shown = {}
    for name, errors in curves.items():
        values = errors.rel_l2.values[1:]
        blown = not np.all(np.isfinite(values)) or np.nanmax(values) > 10
        shown[name + (" (diverges)" if blown else "")] = errors
    plot.rollout_curves(shown, variables="rel_l2", x="step", ax=ax_l2,
                        title="rollout error vs FD")
    bottom, top = ax_l2.get_ylim()
    ax_l2.set_ylim(bottom, min(top, 10.0))  # a diverging baseline must not squash the others
    if "pdebench_frmse" in result.rollout:
        plot.rollout_curves(result.rollout, variables="pdebench_frmse", x="step", ax=ax_bands,
                            title=f"{result.model}: PDEBench fRMSE by band")
    spec = result.spectral.isel(wavenumber=slice(1, None))
    plot.rollout_curves(spec, variables="relative_error", x="wavenumber", ax=ax_k,
                        title=f"error by wavenumber at step {result.rollout_steps}")
    return fig


def _fields_figure(result: StencilResult) -> Any:
    from matplotlib.figure import Figure

    n = result.rollout_steps
    steps = sorted({0, n // 10, n // 2, n})
    fig = Figure(figsize=(3.0 * len(steps), 5.6), layout="constrained")
    ref = result.reference.isel(sample=0).values  # (time, *grid)
    pred = result.prediction[:, 0]
    lim = float(np.abs(ref[0]).max())
    for i, s in enumerate(steps):
        for row, (name, data) in enumerate((("FD", ref), ("model", pred))):
            ax = fig.add_subplot(2, len(steps), row * len(steps) + i + 1)
            if data.ndim == 3:
                ax.imshow(data[s], origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                ax.plot(ref[s], "k-", lw=1)
                ax.plot(data[s], "r--", lw=1)
            ax.set_title(f"{name}, step {s}", fontsize=9)
    return fig


def write_stencil_report(result: StencilResult, out_dir: str | Path) -> list[Path]:
    """Write ``stencil.png``, ``rollout.png``, ``fields.png`` and ``report.md`` to ``out_dir``.

    Returns the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [_save(stencil_figure(result), out / "stencil.png"),
             _save(_rollout_figure(result), out / "rollout.png"),
             _save(_fields_figure(result), out / "fields.png")]
    report = "\n".join([
        f"# Learned stencil: {result.equation}", "",
        *(f"- {line.strip()}" for line in summary_lines(result)), "",
        "## Learned vs finite-difference weights", "",
        stencil_table(result, markdown=True), "",
        "![stencils](stencil.png)", "", "## Rollout against the FD solver", "",
        "![rollout error](rollout.png)", "", "![fields](fields.png)", "",
        "## PDEBench metrics", "",
        "PDEBench's definitions (Takamoto et al. 2022; `gridformer.analysis.pdebench_metrics`): "
        "nRMSE is RMSE / RMS of the target (our relative L2), cRMSE the error of the conserved "
        "total, bRMSE on the boundary cells, fRMSE in Fourier bands [0, 4), [4, 12), [12, end) "
        "of the wavenumber index; domain length 1 per dim. `n/a`: not finite (a diverged "
        "rollout) or an empty band (a grid too coarse for it).", "",
        pdebench_table(result), "",
    ])
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(report)
    return [*paths, out / "report.md"]
