"""Classical climate statistics to set beside attention maps.

- :func:`correlation_map`: Pearson correlation of every grid cell with an index series, lagged,
  NaN-aware (land stays NaN) and lazy on dask arrays; built on :func:`xarray.corr`.
- :func:`pattern_correlation`: centred, area-weighted (cos latitude) correlation of two maps.
- :func:`leading_eofs`: the leading empirical orthogonal functions of a field, computed by
  ``xeofs`` (the optional extra ``gridformer[climate]``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from importlib.metadata import version

import numpy as np
import xarray as xr

from gridformer.datasets import lat_weights

__all__ = ["correlation_map", "leading_eofs", "pattern_correlation"]


def _check_dataarray(obj: object, name: str) -> None:
    if not isinstance(obj, xr.DataArray):
        msg = f"{name} must be an xarray.DataArray, got {type(obj).__name__}"
        raise TypeError(msg)


def _check_dim(obj: xr.DataArray, dim: str, name: str) -> None:
    if dim not in obj.dims:
        msg = f"{name} has no dim {dim!r}; its dims are {list(obj.dims)} (pass dim=...)"
        raise ValueError(msg)


def _align_index(field: xr.DataArray, index: xr.DataArray, dim: str) -> xr.DataArray:
    """``index`` with ``field``'s coordinate on ``dim``, after checking that they match."""
    n_field, n_index = field.sizes[dim], index.sizes[dim]
    if n_field != n_index:
        msg = f"field has {n_field} steps along {dim!r} but index has {n_index}; they must match"
        raise ValueError(msg)
    if dim in field.coords and dim in index.coords:
        a, b = field.indexes[dim], index.indexes[dim]
        if not a.equals(b):
            msg = (
                f"field and index have different {dim!r} coordinates (field {a[0]}..{a[-1]}, "
                f"index {b[0]}..{b[-1]}); select the common period first"
            )
            raise ValueError(msg)
    if dim in field.coords:
        index = index.assign_coords({dim: field[dim]})
    return index


def correlation_map(
    field: xr.DataArray, index: xr.DataArray, *, dim: str = "time", lag: int = 0
) -> xr.DataArray:
    """Pearson correlation of every grid cell of ``field`` with the series ``index``.

    ``r(cell) = corr_t(field[t, cell], index[t - lag])``: with ``lag > 0`` the index leads the
    field by ``lag`` steps, with ``lag < 0`` it lags. Only time steps where both are present
    enter (pairwise deletion), so cells that are NaN at every step (land in an ocean field)
    stay NaN. Computed by :func:`xarray.corr`; dask-backed input gives a lazy result.

    Parameters
    ----------
    field
        ``(time, lat, lon)`` (any dims that include ``dim``).
    index
        ``(time,)`` series with the same length (and coordinate, if both have one) along ``dim``.
    dim
        The dim to correlate along.
    lag
        Steps by which ``index`` leads ``field``; ``|lag|`` must leave at least 2 steps.

    Returns
    -------
    xr.DataArray
        ``field``'s dims without ``dim``, e.g. ``(lat, lon)``; dimensionless, in ``[-1, 1]``.
    """
    _check_dataarray(field, "field")
    _check_dataarray(index, "index")
    _check_dim(field, dim, "field")
    _check_dim(index, dim, "index")
    if isinstance(lag, bool) or not isinstance(lag, int | np.integer):
        msg = f"lag={lag!r} must be an integer number of steps along {dim!r}"
        raise TypeError(msg)
    n = field.sizes[dim]
    if abs(int(lag)) > n - 2:
        msg = f"lag={lag} leaves fewer than 2 overlapping steps of the {n} along {dim!r}"
        raise ValueError(msg)
    index = _align_index(field, index, dim)
    shifted = index.shift({dim: int(lag)})  # shifted[t] = index[t - lag]
    with warnings.catch_warnings():  # all-NaN (land) cells: NaN is the answer, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        result = xr.corr(field, shifted, dim=dim)
    return result.rename("correlation").assign_attrs(
        long_name=f"correlation with {index.name or 'index'} (index leads by {int(lag)} steps)",
        units="1",
        lag=int(lag),
    )


def pattern_correlation(
    a: xr.DataArray, b: xr.DataArray, *, dims: Sequence[str] = ("lat", "lon")
) -> float | xr.DataArray:
    """Centred pattern correlation of two maps, area-weighted by ``cos(latitude)``.

    The weighted Pearson correlation over ``dims``: both maps have their weighted spatial mean
    removed, and each cell counts with ``cos(lat)``. Cells that are NaN in either map are left
    out of every sum.

    Parameters
    ----------
    a, b
        Maps with dims ``dims`` (and the same coordinates); other dims are kept.
    dims
        Spatial dims to correlate over. Weights need a ``lat`` dim among them; without one the
        cells are weighted equally.

    Returns
    -------
    float or xr.DataArray
        A float for plain maps, a DataArray over any other dims.
    """
    _check_dataarray(a, "a")
    _check_dataarray(b, "b")
    dims = [dims] if isinstance(dims, str) else list(dims)
    for obj, name in ((a, "a"), (b, "b")):
        for dim in dims:
            _check_dim(obj, dim, name)
    try:
        a, b = xr.align(a, b, join="exact")
    except ValueError as err:
        msg = f"a and b must share their coordinates on {dims}: {err}"
        raise ValueError(msg) from err
    weights = lat_weights(a["lat"], normalize=False) if "lat" in dims else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = xr.corr(a, b, dim=dims, weights=weights)
    return float(result) if result.ndim == 0 else result.rename("pattern_correlation")


def _missing_extra() -> ModuleNotFoundError:
    msg = (
        "leading_eofs needs the optional package 'xeofs', which is not installed; install the "
        "extra with: pip install 'gridformer[climate]'"
    )
    return ModuleNotFoundError(msg, name="xeofs")


def _eof_input(field: xr.DataArray, n: int, dim: str, coslat: bool) -> xr.DataArray:
    """Check the EOF arguments; give every dim a coordinate (xeofs needs one)."""
    _check_dataarray(field, "field")
    _check_dim(field, dim, "field")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        msg = f"n={n!r} must be a positive integer number of modes"
        raise ValueError(msg)
    if n > field.sizes[dim] - 1:
        msg = f"n={n} modes need at least {n + 1} steps along {dim!r}; field has {field.sizes[dim]}"
        raise ValueError(msg)
    if coslat and "lat" not in field.dims:
        msg = f"coslat=True needs a 'lat' dim; field has {list(field.dims)} (pass coslat=False)"
        raise ValueError(msg)
    present = field.notnull()
    partial = int((present.any(dim) & ~present.all(dim)).sum())
    if partial:
        msg = (
            f"field has {partial} cells that are missing at some steps along {dim!r} but not at "
            f"all; EOFs need each cell present at every step or at none (fill or mask them)"
        )
        raise ValueError(msg)
    missing = {d: np.arange(field.sizes[d]) for d in field.dims if d not in field.coords}
    return field.assign_coords(missing)


def leading_eofs(
    field: xr.DataArray, n: int = 3, *, dim: str = "time", coslat: bool = True
) -> xr.Dataset:
    """The ``n`` leading EOFs of ``field`` along ``dim``, computed by ``xeofs``.

    The field's time mean is removed and, with ``coslat``, each cell is weighted by
    ``sqrt(cos(lat))`` so that the covariance is area-weighted (the usual choice on lat/lon
    grids). The patterns are returned in the field's own space (the weight divided out again),
    so ``(eofs * pcs).sum("mode")`` rebuilds the anomalies from the leading modes and each
    pattern has ``sum(cos(lat) * eof**2) = 1``. Cells that are NaN at every step (land) are left
    out and come back NaN. Each EOF's sign is fixed so that its largest-magnitude loading is
    positive (EOF signs are arbitrary); the principal component carries the same sign.

    Parameters
    ----------
    field
        ``(time, lat, lon)`` data (anomalies or raw values; the time mean is removed).
    n
        Number of modes, ``>= 1``.
    dim
        The sample (time) dim.
    coslat
        Area-weight by ``sqrt(cos(lat))`` (needs a ``lat`` dim).

    Returns
    -------
    xr.Dataset
        ``eofs`` ``(mode, *spatial dims)`` (dimensionless patterns, unit norm as above),
        ``pcs`` ``(mode, dim)`` (in the field's units), ``explained_variance_ratio``
        ``(mode,)`` (fraction of the total weighted variance); ``mode`` counts from 1.

    Raises
    ------
    ModuleNotFoundError
        When ``xeofs`` is missing; install ``gridformer[climate]``.
    """
    field = _eof_input(field, n, dim, coslat)
    try:
        import xeofs
    except ImportError as err:
        raise _missing_extra() from err

    with warnings.catch_warnings():  # xeofs' own use of deprecated xarray MultiIndex calls
        warnings.simplefilter("ignore", FutureWarning)
        model = xeofs.single.EOF(n_modes=int(n), use_coslat=coslat, check_nans=True)
        model.fit(field, dim=dim)
        eofs = model.components()
        pcs = model.scores(normalized=False)
        ratio = model.explained_variance_ratio()
    if coslat:  # back from the sqrt(cos lat)-weighted space to the field's own space
        root = np.sqrt(lat_weights(eofs["lat"], normalize=False))
        eofs = eofs / root.where(root > 0)  # undefined (NaN) at a pole, where cos(lat) = 0
    spatial = [d for d in eofs.dims if d != "mode"]
    peak = abs(eofs).fillna(0.0).argmax(dim=spatial)  # {dim: (mode,) index}
    sign = np.sign(eofs.isel(peak)).drop_vars(spatial)  # (mode,)
    return xr.Dataset(
        {
            "eofs": (eofs * sign).assign_attrs(long_name="empirical orthogonal function",
                                                units="1"),
            "pcs": (pcs * sign).assign_attrs(long_name="principal component",
                                             units=field.attrs.get("units", "")),
            "explained_variance_ratio": ratio.assign_attrs(units="1"),
        },
        attrs={"method": f"xeofs {version('xeofs')} EOF", "coslat_weighted": int(coslat)},
    )
