"""Small CF NetCDF fixtures with the quirks real files have, written with netCDF4 directly."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest

FILL = -999.0


def make_netcdf(
    path: Path,
    *,
    n_time: int = 6,
    lat_name: str = "latitude",
    lon_name: str = "longitude",
    descending_lat: bool = True,
    lon_start: float = 0.0,
    n_lat: int = 6,
    n_lon: int = 12,
    calendar: str = "360_day",
    level: bool = True,
    land_nan: bool = True,
    cf_units: bool = True,
    time_offset: int = 0,
    fmt: str = "NETCDF4",
) -> dict:
    """Write a (time, [level,] lat, lon) temperature file; return the truth it was made from."""
    lat = np.linspace(-75.0, 75.0, n_lat)
    if descending_lat:
        lat = lat[::-1]
    lon = lon_start + np.arange(n_lon) * 360.0 / n_lon
    rng = np.random.default_rng(0)
    data = 280.0 + rng.standard_normal((n_time, n_lat, n_lon))
    land = np.zeros((n_lat, n_lon), dtype=bool)
    if land_nan:
        land[1:3, 2:5] = True
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension("time", None)
        nc.createDimension(lat_name, n_lat)
        nc.createDimension(lon_name, n_lon)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 2000-01-01"
        t.calendar = calendar
        t[:] = 30.0 * (np.arange(n_time) + time_offset)
        la = nc.createVariable(lat_name, "f4", (lat_name,))
        lo = nc.createVariable(lon_name, "f4", (lon_name,))
        if cf_units:
            la.units, lo.units = "degrees_north", "degrees_east"
        la[:], lo[:] = lat, lon
        dims = ("time", lat_name, lon_name)
        values = data.copy()
        if level:
            nc.createDimension("level", 1)
            lev = nc.createVariable("level", "f4", ("level",))
            lev.units = "hPa"
            lev[:] = [850.0]
            dims = ("time", "level", lat_name, lon_name)
            values = values[:, None]
        var = nc.createVariable("t", "f4", dims, fill_value=FILL)
        var.units = "K"
        var.missing_value = np.float32(FILL)
        filled = np.where(land, FILL, values)
        var[:] = filled
        precip = nc.createVariable("pr", "f4", dims)
        precip.units = "mm/day"
        precip[:] = np.abs(values - 280.0)
    return {"lat": lat, "lon": lon, "data": data, "land": land}


@pytest.fixture
def make_nc():
    """The file writer itself, for tests that need other quirks (see ``make_netcdf``)."""
    return make_netcdf


@pytest.fixture
def quirky_file(tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "quirky.nc"
    return path, make_netcdf(path)
