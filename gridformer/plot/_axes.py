"""Figures without pyplot: new ``Figure`` objects or the caller's ``ax``, labels with units."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import xarray as xr
from matplotlib.axes import Axes
from matplotlib.colorbar import Colorbar
from matplotlib.figure import Figure

__all__ = ["PlotFigure", "axes_for", "colorbar", "label", "units_text"]


class PlotFigure(Figure):
    """A ``Figure`` that shows itself in Jupyter as PNG, also when pyplot was never imported.

    Jupyter's matplotlib display hook is installed by pyplot; without it a plain ``Figure``
    shows only its text repr.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def axes_for(ax: Axes | Sequence[Axes] | None, n: int, *, names: Sequence[str],
             panel_size: tuple[float, float] = (4.4, 3.6), **subplot_kw: Any
             ) -> tuple[Figure, list[Axes]]:
    """``n`` Axes: the caller's (one Axes, or a sequence of ``n``) or a new row of panels.

    A new figure is a :class:`PlotFigure` (a ``matplotlib.figure.Figure``: no pyplot state, no
    backend chosen); Jupyter shows it when it is the cell's value, ``fig.savefig`` writes it.
    """
    if ax is None:
        fig = PlotFigure(figsize=(panel_size[0] * n, panel_size[1]), layout="constrained")
        return fig, [fig.add_subplot(1, n, i + 1, **subplot_kw) for i in range(n)]
    axes = [ax] if isinstance(ax, Axes) else list(ax)
    if len(axes) != n or not all(isinstance(a, Axes) for a in axes):
        msg = (f"ax must be {'an Axes' if n == 1 else f'a sequence of {n} Axes'} "
               f"({', '.join(names)}), got {ax!r}")
        raise ValueError(msg)
    return axes[0].get_figure(root=True), axes


def units_text(attrs: dict) -> str | None:
    """``attrs["units"]`` for a label; ``"1"`` reads as dimensionless."""
    units = attrs.get("units")
    if units is None or str(units).strip() == "":
        return None
    return "dimensionless" if str(units).strip() == "1" else str(units)


def label(obj: xr.DataArray | None, fallback: str, *, units: str | None = None) -> str:
    """``"long name (units)"`` from an array or coordinate's attrs (``fallback`` as the name)."""
    attrs = {} if obj is None else obj.attrs
    name = attrs.get("long_name") or (obj.name if obj is not None and obj.name is not None
                                      else None) or fallback
    shown = units if units is not None else units_text(attrs)
    return f"{name} ({shown})" if shown else str(name)


def colorbar(fig: Figure, mappable: Any, ax: Axes, text: str) -> Colorbar:
    """A colour bar beside ``ax`` labelled ``text``."""
    bar = fig.colorbar(mappable, ax=ax, shrink=0.85)
    bar.set_label(text)
    return bar
