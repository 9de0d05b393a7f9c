"""CF bookkeeping shared by the datasets and the tokenizer, done by cf_xarray.

Which data variables of a Dataset are CF *auxiliary* variables (cell bounds, grid mappings,
auxiliary coordinates, cell measures, mesh topologies...) rather than data: they describe the
grid, so they are carried along as coordinates and never tokenized. Ancillary variables
(``ancillary_variables``: uncertainties, quality flags) are data on the grid and stay data,
as in ``xarray.open_dataset(..., decode_coords="all")``.
"""

from __future__ import annotations

import cf_xarray  # noqa: F401 - registers the ``.cf`` accessor
import xarray as xr

__all__ = ["AUXILIARY_KEYS", "auxiliary_variables"]

AUXILIARY_KEYS = (
    "bounds", "cell_measures", "coordinates", "geometry", "grid", "grid_mapping", "mesh"
)
"""Keys of ``Dataset.cf.get_associated_variable_names`` that name auxiliary variables."""

_COORD_ATTRS = ("bounds", "climatology")  # attrs of coordinates that name their cell bounds


def auxiliary_variables(ds: xr.Dataset) -> list[str]:
    """Data variables of ``ds`` that CF marks as auxiliary to another variable.

    A data variable is auxiliary when a data variable names it in its ``bounds``,
    ``grid_mapping``, ``coordinates``, ``cell_measures``, ``mesh``, ``grid`` or ``geometry``
    attribute, or a coordinate names it in ``bounds`` or ``climatology`` (attributes are read
    from ``attrs`` and, after xarray's CF decoding, from ``encoding``).

    Returns
    -------
    list of str
        Names, in the dataset's data-variable order.
    """
    named: set = set()
    for name in ds.data_vars:
        related = ds.cf.get_associated_variable_names(name, error=False)
        for key in AUXILIARY_KEYS:
            named.update(related.get(key, ()))
    for name in ds.coords:
        for attr in _COORD_ATTRS:
            value = ds[name].attrs.get(attr, ds[name].encoding.get(attr))
            if isinstance(value, str):
                named.add(value)
    return [str(v) for v in ds.data_vars if v in named]
