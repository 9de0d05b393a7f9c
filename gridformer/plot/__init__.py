"""Figures for what people look at rather than read.

Every function takes xarray objects, draws on a plain ``matplotlib.figure.Figure`` (no pyplot
state; pass ``ax=`` to draw into your own axes) and returns the figure::

    from gridformer import plot

    plot.stencils(learned, fd)                       # learned | FD | difference, weights in cells
    plot.rollout_curves({"gridformer": errs, "unet": errs_unet})   # error against time
    plot.field_map(tele, query=(40.0, 200.0))        # lat/lon map, colour bar with units
    plot.token_grid(field, layout)                   # patch boundaries over a field
    plot.teleconnection(tele, correlation=corr)      # attention map | correlation map

    fig = plot.stencils(learned, fd)
    fig.savefig("stencils.png", dpi=120)             # or leave fig as a Jupyter cell's value

Maps draw coastlines only when cartopy and its Natural Earth data are already installed
(``pip install 'gridformer[maps]'``); nothing is downloaded.
"""

from gridformer.plot._curves import rollout_curves
from gridformer.plot._maps import coastline_file, field_map
from gridformer.plot._stencils import stencils
from gridformer.plot._teleconnection import teleconnection
from gridformer.plot._tokens import patch_edges, token_grid

__all__ = [
    "coastline_file",
    "field_map",
    "patch_edges",
    "rollout_curves",
    "stencils",
    "teleconnection",
    "token_grid",
]
