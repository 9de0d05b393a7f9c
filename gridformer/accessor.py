"""The ``.gridformer`` accessor: gridformer's common steps as methods of xarray objects.

``import gridformer`` registers it on ``xr.DataArray`` and ``xr.Dataset`` (as xbatcher's
``.batch``), importing xarray but not torch; every method is a thin call into a public function,
imported when the method is called::

    import gridformer  # registers .gridformer

    tokens, layout = t2m.gridformer.tokenize(patch_size=4)   # PatchTokenizer(4).encode(t2m)
    weights = t2m.gridformer.lat_weights()                   # datasets.lat_weights(t2m)
    r = sst.gridformer.correlation_map(nino34, lag=2)        # analysis.correlation_map(...)
    fig = r.gridformer.plot_map()                            # plot.field_map(r)
    traj = u0.gridformer.solve("heat", steps=100, diffusivity=0.5)   # solvers.solve(...)
    scores = pred.gridformer.pdebench_metrics(target)        # analysis.pdebench_metrics(...)
    traj.gridformer.to_the_well("well/train/heat.hdf5")      # datasets.write_the_well(...)
    traj.gridformer.to_pdebench("heat.h5")                   # datasets.write_pdebench(...)

``correlation_map`` and ``plot_map`` are DataArray methods; the rest exist on both. A call on
data without the dims it needs raises ``ValueError`` naming the method and the dim.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr

__all__ = ["DataArrayAccessor", "DatasetAccessor"]


class _Accessor:
    """The methods ``DataArray.gridformer`` and ``Dataset.gridformer`` share."""

    def __init__(self, xarray_obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = xarray_obj

    # ------------------------------------------------------------------ checks
    def _where(self, method: str) -> str:
        return f"{type(self._obj).__name__}.gridformer.{method}()"

    def _require_dims(self, method: str, dims: Sequence[str], why: str) -> None:
        missing = [d for d in dims if d not in self._obj.dims]
        if missing:
            names = " and ".join(repr(d) for d in missing)
            msg = (f"{self._where(method)} needs the dim{'s' if len(missing) > 1 else ''} "
                   f"{names} ({why}); the data has dims {tuple(self._obj.dims)}")
            raise ValueError(msg)

    # ------------------------------------------------------------------ verbs
    def tokenize(self, patch_size: int | Sequence[int] = 1, *, channel_dim: str | None = None,
                 periodic: Any = None, **options: Any) -> tuple[Any, Any]:
        """Cut the data into patch tokens: ``PatchTokenizer(patch_size, **options).encode``.

        Parameters
        ----------
        patch_size
            Cells per patch along each spatial dim (one int for all).
        channel_dim, periodic
            As in :meth:`gridformer.PatchTokenizer.encode`.
        **options
            :class:`gridformer.PatchTokenizer` options (``time_patch``, ``fill_value``,
            ``spatial_dims``, ``time_dim``, ``pad``, ``dtype``).

        Returns
        -------
        tokens : torch.Tensor
            ``(B, N, D)``.
        layout : gridformer.TokenLayout
            The geometry; ``PatchTokenizer.decode(tokens, layout)`` gives the data back.

        Examples
        --------
        >>> tokens, layout = t2m.gridformer.tokenize(patch_size=4)  # doctest: +SKIP
        """
        from gridformer.tokenize import PatchTokenizer

        tokenizer = PatchTokenizer(patch_size, **options)
        return tokenizer.encode(self._obj, channel_dim=channel_dim, periodic=periodic)

    def lat_weights(self, *, normalize: bool = True) -> xr.DataArray:
        """Area weights ``cos(lat)`` over ``lat`` (mean 1): :func:`gridformer.datasets.lat_weights`.

        Needs a ``lat`` coordinate in degrees (``datasets.open_dataset`` names latitude so).

        Examples
        --------
        >>> t2m.weighted(t2m.gridformer.lat_weights()).mean(("lat", "lon"))  # doctest: +SKIP
        """
        from gridformer.datasets import lat_weights

        if "lat" not in self._obj.coords:
            msg = (f"{self._where('lat_weights')} needs a 'lat' coordinate (latitude in degrees); "
                   f"the data has dims {tuple(self._obj.dims)} and coordinates "
                   f"{sorted(map(str, self._obj.coords))}; open files with "
                   f"gridformer.datasets.open_dataset or rename, e.g. .rename(latitude='lat')")
            raise ValueError(msg)
        return lat_weights(self._obj, normalize=normalize)

    def solve(self, equation: str, *, steps: int, **options: Any) -> xr.Dataset:
        """Solve ``equation`` from this state: ``gridformer.solvers.solve(equation, data, ...)``.

        Parameters
        ----------
        equation
            A name from ``gridformer.solvers.EQUATIONS`` (``"heat"``, ``"advection"``, ...).
        steps
            Number of time steps.
        **options
            ``solvers.solve``'s keywords: ``dt``, ``bc``, ``save_every``, ``device``, and the
            equation's parameters (``diffusivity=``, ``velocity=``, ...; no defaults).

        Returns
        -------
        xr.Dataset
            The trajectory, dims ``("time", [sample,] [y,] x)``.

        Examples
        --------
        >>> u0 = datasets.random_field((32, 32), n_samples=4, seed=0)  # doctest: +SKIP
        >>> u0.gridformer.solve("heat", steps=100, diffusivity=0.5)  # doctest: +SKIP
        """
        from gridformer.solvers import solve

        if "time" in self._obj.dims:
            msg = (f"{self._where('solve')} starts from one state, but the data has a 'time' dim "
                   f"of size {self._obj.sizes['time']}; select the state first, e.g. "
                   f".isel(time=-1).gridformer.solve(...)")
            raise ValueError(msg)
        return solve(equation, self._obj, steps=steps, **options)

    def pdebench_metrics(self, target: xr.DataArray | xr.Dataset, *, per_step: bool = False,
                         **options: Any) -> xr.Dataset:
        """PDEBench's metrics of this prediction against ``target``:
        :func:`gridformer.analysis.pdebench_metrics` (``per_step=True``:
        :func:`~gridformer.analysis.pdebench_metrics_per_step`).

        ``options``: ``initial_step`` (default 1), ``channel_dim``, ``lengths``, ``bands``.

        Examples
        --------
        >>> prediction.gridformer.pdebench_metrics(target, initial_step=0)  # doctest: +SKIP
        """
        from gridformer.analysis import pdebench_metrics, pdebench_metrics_per_step

        self._require_dims("pdebench_metrics", ["time"], "metrics are taken per time step")
        metric = pdebench_metrics_per_step if per_step else pdebench_metrics
        return metric(self._obj, target, **options)

    def to_the_well(self, path: str | os.PathLike[str], **options: Any) -> Path:
        """Write The Well's HDF5 layout: :func:`gridformer.datasets.write_the_well`.

        Examples
        --------
        >>> traj.gridformer.to_the_well("well/train/heat.hdf5")  # doctest: +SKIP
        """
        from gridformer.datasets import write_the_well

        return write_the_well(self._obj, path, **options)

    def to_pdebench(self, path: str | os.PathLike[str], **options: Any) -> Path:
        """Write a PDEBench HDF5 layout (``.h5``: a group per sample; ``.hdf5``: arrays):
        :func:`gridformer.datasets.write_pdebench`.

        Examples
        --------
        >>> traj.gridformer.to_pdebench("heat.h5")  # doctest: +SKIP
        """
        from gridformer.datasets import write_pdebench

        return write_pdebench(self._obj, path, **options)


class DataArrayAccessor(_Accessor):
    """``DataArray.gridformer``: tokenize, lat_weights, correlation_map, plot_map, solve,
    pdebench_metrics, to_the_well, to_pdebench (see :mod:`gridformer.accessor`)."""

    def correlation_map(self, index: xr.DataArray, *, dim: str = "time",
                        lag: int = 0) -> xr.DataArray:
        """Correlation of every cell with ``index``: :func:`gridformer.analysis.correlation_map`.

        Examples
        --------
        >>> r = sst.gridformer.correlation_map(nino34, lag=2)  # doctest: +SKIP
        >>> r.sel(lat=0, lon=200, method="nearest")  # nino34 leading by 2 steps  # doctest: +SKIP
        """
        from gridformer.analysis.climate_stats import correlation_map

        self._require_dims("correlation_map", [dim], f"the dim to correlate along, dim={dim!r}")
        return correlation_map(self._obj, index, dim=dim, lag=lag)

    def plot_map(self, **options: Any) -> Any:
        """Draw a ``(lat, lon)`` map with a colour bar: :func:`gridformer.plot.field_map`.

        Returns the ``matplotlib.figure.Figure``; ``options`` are ``field_map``'s (``query``,
        ``coastlines``, ``cmap``, ``center``, ``title``, ``ax``).

        Examples
        --------
        >>> sst.gridformer.correlation_map(nino34).gridformer.plot_map()  # doctest: +SKIP
        """
        from gridformer.plot import field_map

        self._require_dims("plot_map", ["lat", "lon"], "a map is drawn on latitude/longitude")
        return field_map(self._obj, **options)


class DatasetAccessor(_Accessor):
    """``Dataset.gridformer``: tokenize (variables as channels), lat_weights, solve (Gray-Scott
    from ``u`` and ``v``), pdebench_metrics (variables as channels), to_the_well, to_pdebench
    (see :mod:`gridformer.accessor`)."""


xr.register_dataarray_accessor("gridformer")(DataArrayAccessor)
xr.register_dataset_accessor("gridformer")(DatasetAccessor)
