"""Forecast skill scores as climate and weather users define them (WeatherBench 2).

Field predictions (Rasp et al. 2024, WeatherBench 2):

- :func:`lat_weighted_rmse`: ``sqrt( mean_t  sum_ij w_i (f - o)^2 / sum_ij w_i )``, the
  latitude-weighted mean squared error averaged over time, then the square root (WeatherBench 2's
  recommended order);
- :func:`anomaly_correlation`: per time step ``sum w f' o' / sqrt(sum w f'^2 sum w o'^2)`` with
  ``f' = f - c``, ``o' = o - c`` the anomalies from a climatology ``c``, then averaged over time.

with ``w_i = cos(lat_i)``. Index predictions: :func:`index_skill` (Pearson correlation and RMSE
over time). Cells or steps that are NaN in either the prediction or the target are left out
(land in an ocean field, missing observations).
"""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from gridformer.datasets import lat_weights

__all__ = ["anomaly_correlation", "index_skill", "lat_weighted_rmse"]


def _pair(prediction: object, target: object, dims: Sequence[str]) -> tuple[xr.DataArray, ...]:
    """Check both are DataArrays with ``dims`` and identical coordinates; mask joint NaNs."""
    for obj, name in ((prediction, "prediction"), (target, "target")):
        if not isinstance(obj, xr.DataArray):
            msg = f"{name} must be an xarray.DataArray, got {type(obj).__name__}"
            raise TypeError(msg)
        missing = [d for d in dims if d not in obj.dims]
        if missing:
            msg = f"{name} lacks dims {missing}; its dims are {list(obj.dims)}"
            raise ValueError(msg)
    try:
        prediction, target = xr.align(prediction, target, join="exact")
    except ValueError as err:
        msg = f"prediction and target must share their coordinates: {err}"
        raise ValueError(msg) from err
    both = prediction.notnull() & target.notnull()
    return prediction.where(both), target.where(both)


def _spatial_mean(x: xr.DataArray, spatial_dims: Sequence[str]) -> xr.DataArray:
    """Mean over ``spatial_dims``, weighted by cos(lat) when ``lat`` is one of them; skips NaN."""
    if "lat" in spatial_dims:
        return x.weighted(lat_weights(x["lat"])).mean(list(spatial_dims), skipna=True)
    return x.mean(list(spatial_dims), skipna=True)


def _time_dims(dim: str | None) -> list[str]:
    return [] if dim is None else [dim]


def lat_weighted_rmse(
    prediction: xr.DataArray,
    target: xr.DataArray,
    *,
    dim: str | None = "time",
    spatial_dims: Sequence[str] = ("lat", "lon"),
) -> xr.DataArray:
    """Latitude-weighted RMSE (WeatherBench 2): time-mean of the weighted MSE, then the root.

    Parameters
    ----------
    prediction, target
        Fields with ``spatial_dims`` (and ``dim``), identical coordinates; other dims (lead time,
        variable) are kept.
    dim
        Time dim to average the MSE over (``None``: a single map).
    spatial_dims
        Dims averaged with ``cos(lat)`` weights (equal weights if ``lat`` is not among them).

    Returns
    -------
    xr.DataArray
        RMSE in the units of the target, over the remaining dims (0-d for plain fields).
    """
    prediction, target = _pair(prediction, target, [*spatial_dims, *_time_dims(dim)])
    mse = _spatial_mean((prediction - target) ** 2, spatial_dims)
    if dim is not None:
        mse = mse.mean(dim, skipna=True)
    return (mse**0.5).rename("rmse").assign_attrs(
        long_name="latitude-weighted root mean squared error",
        units=target.attrs.get("units", ""),
    )


def anomaly_correlation(
    prediction: xr.DataArray,
    target: xr.DataArray,
    *,
    climatology: xr.DataArray | float | None = None,
    dim: str | None = "time",
    spatial_dims: Sequence[str] = ("lat", "lon"),
    centered: bool = False,
) -> xr.DataArray:
    """Anomaly correlation coefficient (ACC) per time step, averaged over time (WeatherBench 2).

    ``ACC_t = sum w f' o' / sqrt(sum w f'^2 * sum w o'^2)`` over the spatial dims, with
    ``f' = prediction - climatology`` and ``o' = target - climatology``, then the mean over
    ``dim``.

    Parameters
    ----------
    prediction, target
        Fields with ``spatial_dims`` (and ``dim``) and identical coordinates.
    climatology
        Subtracted from both (broadcast by xarray, e.g. a ``(lat, lon)`` mean); ``None`` when the
        inputs already are anomalies.
    dim
        Time dim to average over (``None``: one ACC per map).
    spatial_dims
        Dims summed with ``cos(lat)`` weights.
    centered
        Also remove each anomaly map's weighted spatial mean (the centred ACC of e.g. ECMWF
        verification); WeatherBench 2 uses the uncentred form (False).

    Returns
    -------
    xr.DataArray
        Dimensionless ACC in ``[-1, 1]`` over the remaining dims.
    """
    prediction, target = _pair(prediction, target, [*spatial_dims, *_time_dims(dim)])
    if climatology is not None:
        prediction, target = prediction - climatology, target - climatology
    if centered:
        prediction = prediction - _spatial_mean(prediction, spatial_dims)
        target = target - _spatial_mean(target, spatial_dims)
    covariance = _spatial_mean(prediction * target, spatial_dims)
    scale = (_spatial_mean(prediction**2, spatial_dims) * _spatial_mean(target**2, spatial_dims))
    acc = covariance / scale**0.5
    if dim is not None:
        acc = acc.mean(dim, skipna=True)
    return acc.rename("acc").assign_attrs(long_name="anomaly correlation coefficient", units="1")


def index_skill(
    prediction: xr.DataArray, target: xr.DataArray, *, dim: str = "time"
) -> xr.Dataset:
    """Skill of an index prediction: Pearson correlation and RMSE along ``dim``.

    Parameters
    ----------
    prediction, target
        Series ``(time,)`` (other dims, such as lead time, are kept) with identical coordinates.
        Steps missing in either are left out.
    dim
        The time dim.

    Returns
    -------
    xr.Dataset
        ``correlation`` (dimensionless) and ``rmse`` (units of the target).
    """
    prediction, target = _pair(prediction, target, [dim])
    correlation = xr.corr(prediction, target, dim=dim)
    rmse = (((prediction - target) ** 2).mean(dim, skipna=True)) ** 0.5
    return xr.Dataset(
        {
            "correlation": correlation.assign_attrs(long_name="Pearson correlation", units="1"),
            "rmse": rmse.assign_attrs(
                long_name="root mean squared error", units=target.attrs.get("units", "")
            ),
        }
    )
