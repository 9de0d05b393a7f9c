"""Helpers shared by the solver tests (imported by name; kept out of conftest.py on purpose)."""

from __future__ import annotations

import numpy as np
import xarray as xr


def periodic_line(n: int, length: float = 2 * np.pi) -> xr.DataArray:
    """Cell-centre coordinates of a periodic 1-D grid of ``n`` points on ``[0, length)``."""
    x = np.arange(n) * (length / n)
    return xr.DataArray(x, dims="x", coords={"x": x})


def observed_order(errors: list[float], spacings: list[float]) -> float:
    """Convergence order from the two finest grids: log(e1 / e2) / log(h1 / h2)."""
    return float(np.log(errors[-2] / errors[-1]) / np.log(spacings[-2] / spacings[-1]))
