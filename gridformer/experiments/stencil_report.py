"""Tables, figures and a Markdown report of a stencil experiment.

Figures are drawn on ``matplotlib.figure.Figure`` objects with an explicit Agg canvas, so no
global backend is chosen; every file is written atomically (``gridformer._io.atomic_path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gridformer._io import atomic_path
from gridformer.experiments.stencil_result import StencilResult

__all__ = ["stencil_figure", "stencil_table", "summary_lines", "write_stencil_report"]


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
    if m["upwind_consistency"] is not None:
        lines.append(f"upwind consistency        {m['upwind_consistency']:.3f}")
    for name, b in m.get("baselines", {}).items():
        value = b["rollout_rel_l2"]
        shown = "diverged (non-finite)" if value is None else _fmt(value)
        lines.append(f"baseline {name:<4s} rollout L2  {shown}")
    lines.append(f"training {m['train_seconds']:.1f} s ({m['train_evaluations']} evaluations), "
                 f"total {m['seconds']:.1f} s")
    return lines


def _save(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def stencil_figure(result: StencilResult) -> Any:
    """Learned, FD and difference stencils side by side (a ``matplotlib.figure.Figure``)."""
    from matplotlib.figure import Figure

    learned = result.shown_stencil("learned")
    title = "learned (attention)"
    if learned is None:
        learned, title = result.shown_stencil("effective"), "learned (effective)"
    panels = [(title, learned)]
    if result.fd_stencil is not None:
        fd = result.fd_stencil.reindex_like(learned, fill_value=0.0)
        panels += [("finite difference", fd), ("learned - FD", learned - fd)]
    else:
        panels.append(("effective (Jacobian)", result.shown_stencil("effective")))
    fig = Figure(figsize=(4.2 * len(panels), 3.8), layout="constrained")
    for i, (name, s) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if s.ndim == 2:
            dy, dx = s[s.dims[0]].values, s[s.dims[1]].values
            lim = max(float(abs(s).max()), 1e-12)
            cmap, vmin = ("RdBu_r", -lim) if name.startswith("learned -") else ("viridis", 0)
            im = ax.imshow(s.values, origin="lower", cmap=cmap, vmin=vmin, vmax=lim,
                           extent=(dx[0] - 0.5, dx[-1] + 0.5, dy[0] - 0.5, dy[-1] + 0.5))
            fig.colorbar(im, ax=ax, shrink=0.8)
            for (j, k), v in np.ndenumerate(s.values):
                if abs(v) >= 5e-3 or (name.startswith("learned -") and abs(v) >= 0.1 * lim):
                    ax.text(dx[k], dy[j], f"{v:.2g}", ha="center", va="center", fontsize=7,
                            color="w" if cmap == "viridis" and v < 0.6 * lim else "k")
            ax.set_xlabel(s.dims[1])
            ax.set_ylabel(s.dims[0])
        else:
            ax.bar(s[s.dims[0]].values, s.values)
            ax.set_xlabel(s.dims[0])
        ax.set_title(name)
    return fig


def _rollout_figure(result: StencilResult) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    curves = {f"{result.model} (attention)": result.rollout}
    curves.update({name: b["rollout"] for name, b in result.baselines.items()})
    for name, errors in curves.items():
        values = errors.rel_l2.values[1:]
        blown = not np.all(np.isfinite(values)) or np.nanmax(values) > 10
        ax.semilogy(errors.step.values[1:], values, label=name + (" (diverges)" if blown else ""))
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, min(top, 10.0))  # a diverging baseline must not squash the others
    ax.set_xlabel("step")
    ax.set_ylabel("relative L2 error vs FD")
    ax.set_title("rollout error")
    ax.legend()
    spec = result.spectral.isel(wavenumber=slice(1, None))
    ax2.semilogy(spec.wavenumber.values, spec.relative_error.values, "o-")
    ax2.set_xlabel("wavenumber |k| (rad / length)")
    ax2.set_ylabel("relative error")
    ax2.set_title(f"error by wavenumber at step {result.rollout_steps}")
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
    ])
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(report)
    return [*paths, out / "report.md"]
