"""Stencils side by side: learned, finite difference and their difference, numbers in cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gridformer.plot._axes import axes_for, colorbar, units_text

__all__ = ["stencils"]

_MAX_ANNOTATED = 121  # up to 11 x 11 offsets every cell gets its number


def stencils(
    learned: xr.DataArray,
    reference: xr.DataArray | None = None,
    *,
    difference: bool = True,
    titles: Sequence[str] = ("learned", "finite difference", "learned - FD"),
    fmt: str = ".3g",
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Draw stencils (weights by offset) side by side, each cell labelled with its weight.

    Parameters
    ----------
    learned
        Weights over ``("dy", "dx")`` or ``("dx",)`` with integer offset coordinates (e.g.
        ``analysis.attention_stencil``).
    reference
        The finite-difference stencil (``solvers.update_stencil``) on the same dims; both are
        shown on the union of their offsets (missing offsets weigh 0) and on one colour scale.
    difference
        Add a third panel, ``learned - reference`` (on its own symmetric scale).
    titles
        Panel titles, in order.
    fmt
        Format of the numbers (``format(value, fmt)``). Stencils with more than 121 offsets
        label only weights of at least 1 % of the largest.
    ax
        One Axes per panel (1, 2 or 3); default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        2-D stencils as coloured cells (offset ``dx`` across, ``dy`` up) with a colour bar;
        1-D stencils as bars.
    """
    panels = _panels(learned, reference, difference, titles)
    fig, axes = axes_for(ax, len(panels), names=[p[0] for p in panels])
    shared = max(float(np.nanmax(np.abs(s.values))) for name, s, diff in panels if not diff)
    for target, (title, stencil, is_diff) in zip(axes, panels, strict=True):
        scale = float(np.nanmax(np.abs(stencil.values))) if is_diff else shared
        scale = scale if scale > 0 else 1.0
        if stencil.ndim == 2:
            _cells(fig, target, stencil, scale, fmt)
        else:
            _bars(target, stencil, scale, fmt)
        target.set_title(title)
    return fig


def _panels(learned: Any, reference: Any, difference: bool, titles: Sequence[str]
            ) -> list[tuple[str, xr.DataArray, bool]]:
    for name, s in (("learned", learned), ("reference", reference)):
        if s is None and name == "reference":
            continue
        if not isinstance(s, xr.DataArray) or s.ndim not in (1, 2):
            msg = (f"{name} must be a 1-D or 2-D xr.DataArray over offsets such as "
                   f"('dy', 'dx'), got {type(s).__name__} {getattr(s, 'dims', '')}")
            raise ValueError(msg)
    if reference is None:
        return [(titles[0], _full_grid(learned, learned), False)]
    if set(reference.dims) != set(learned.dims):
        msg = f"reference dims {reference.dims} differ from learned dims {learned.dims}"
        raise ValueError(msg)
    reference = reference.transpose(*learned.dims)
    a, b = _full_grid(learned, reference), _full_grid(reference, learned)
    out = [(titles[0], a, False), (titles[1], b, False)]
    if difference:
        out.append((titles[2], a - b, True))
    return out


def _full_grid(s: xr.DataArray, other: xr.DataArray) -> xr.DataArray:
    """``s`` on every integer offset from the smallest to the largest of both (0 elsewhere)."""
    full = {}
    for dim in s.dims:
        values = np.concatenate([np.asarray(s[dim].values), np.asarray(other[dim].values)])
        if not np.all(values == np.round(values)):
            msg = f"stencil offsets along {dim!r} must be integers, got {s[dim].values}"
            raise ValueError(msg)
        full[dim] = np.arange(int(values.min()), int(values.max()) + 1)
    return s.reindex(full, fill_value=0.0)


def _cells(fig: Figure, ax: Axes, s: xr.DataArray, scale: float, fmt: str) -> None:
    rows, cols = s.dims
    ry, cx = s[rows].values, s[cols].values
    image = ax.pcolormesh(_edges(cx), _edges(ry), s.values, cmap="RdBu_r", vmin=-scale,
                          vmax=scale, shading="flat")
    values = s.values
    show = np.isfinite(values)
    if values.size > _MAX_ANNOTATED:
        show &= np.abs(values) >= 0.01 * scale
    for (j, k), v in np.ndenumerate(values):
        if show[j, k]:
            ax.text(cx[k], ry[j], format(v, fmt), ha="center", va="center", fontsize=8,
                    color="w" if abs(v) > 0.6 * scale else "k")
    ax.set_xlabel(f"{cols} (cells)")
    ax.set_ylabel(f"{rows} (cells)")
    ax.set_aspect("equal")
    colorbar(fig, image, ax, f"weight ({units_text(s.attrs) or 'per cell'})")


def _bars(ax: Axes, s: xr.DataArray, scale: float, fmt: str) -> None:
    dim = s.dims[0]
    bars = ax.bar(s[dim].values, s.values, color="tab:blue")
    ax.bar_label(bars, labels=[format(v, fmt) for v in s.values], fontsize=8)
    ax.set_ylim(-1.15 * scale if np.nanmin(s.values) < 0 else 0, 1.15 * scale)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel(f"{dim} (cells)")
    ax.set_ylabel(f"weight ({units_text(s.attrs) or 'per cell'})")


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around integer offsets."""
    c = np.asarray(centres, dtype=float)
    return np.concatenate([c - 0.5, c[-1:] + 0.5])
