"""Synthetic fields with known ground truth, as xarray: Gaussian random fields and a planted
teleconnection. Every generator takes ``seed`` and records its truth in attrs/coords.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from gridformer.tokenize.geometry import haversine_km

__all__ = ["global_grid", "planted_teleconnection", "random_field"]


def global_grid(n_lat: int, n_lon: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centred global grid in degrees: lat ``(n_lat,)`` ascending, lon ``(n_lon,)`` 0..360."""
    lat = -90.0 + (np.arange(n_lat) + 0.5) * 180.0 / n_lat
    lon = (np.arange(n_lon) + 0.5) * 360.0 / n_lon
    return lat, lon


def _grf(rng: np.random.Generator, shape: tuple[int, ...], slope: float) -> np.ndarray:
    """Periodic Gaussian random fields ``(..., *shape)`` with power spectral density ∝ |k|^slope.

    The leading dims of ``shape`` beyond the last ``ndim`` spatial dims are independent samples;
    here ``shape`` is the full output shape and the spectrum applies to the last two (or one) dims.
    """
    spatial = shape[-2:] if len(shape) >= 2 else shape
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in spatial], indexing="ij")
    k = np.sqrt(sum(f**2 for f in freqs))
    amp = np.zeros_like(k)
    amp[k > 0] = k[k > 0] ** (slope / 2.0)
    noise = rng.standard_normal(shape)
    axes = tuple(range(-len(spatial), 0))
    field = np.fft.ifftn(np.fft.fftn(noise, axes=axes) * amp, axes=axes).real
    std = field.std(axis=axes, keepdims=True)
    return field / np.where(std > 0, std, 1.0)


def random_field(
    shape: int | Sequence[int] = (64, 64),
    *,
    spectral_slope: float = -3.0,
    geographic: bool = False,
    n_samples: int | None = None,
    seed: int | None = 0,
) -> xr.DataArray:
    """Gaussian random field with a power-law spectrum, unit variance per sample.

    Parameters
    ----------
    shape
        Grid shape: ``(ny, nx)`` (or ``nx`` for 1-D), or ``(n_lat, n_lon)`` when ``geographic``.
    spectral_slope
        Exponent ``β`` of the power spectral density ``|F(k)|^2 ∝ |k|^β`` (in grid-index
        wavenumbers; ``-3`` is smooth, ``0`` is white noise).
    geographic
        False: dims ``(y, x)`` (or ``x``), periodic in every dim (``attrs["bc"] = "periodic"``).
        True: dims ``(lat, lon)`` on a global cell-centred grid, periodic in longitude only (the
        field is drawn on twice as many latitudes and cropped, so it does not wrap pole to pole).
    n_samples
        Draw this many independent fields along a leading ``sample`` dim (None: no sample dim).
    seed
        Seed for ``numpy.random.default_rng``; the same seed gives the same field.

    Returns
    -------
    xr.DataArray
        dims ``([sample,] y, x)`` / ``([sample,] lat, lon)``; attrs record ``spectral_slope``,
        ``seed``, ``periodic_dims``.
    """
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    if any(s < 2 for s in shape) or len(shape) not in (1, 2) or (geographic and len(shape) != 2):
        msg = f"shape={shape!r} must be 1 or 2 sizes >= 2 (two, (n_lat, n_lon), when geographic)"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    lead = (n_samples,) if n_samples is not None else (1,)
    attrs = {
        "spectral_slope": float(spectral_slope),
        "seed": -1 if seed is None else int(seed),
        "spectrum": "power spectral density |F(k)|^2 proportional to |k|^spectral_slope",
    }
    if geographic:
        n_lat, n_lon = shape
        field = _grf(rng, (*lead, 2 * n_lat, n_lon), spectral_slope)[..., :n_lat, :]
        field = field / field.std(axis=(-2, -1), keepdims=True)
        lat, lon = global_grid(n_lat, n_lon)
        dims = ("lat", "lon")
        coords = {
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": (
                "lon",
                lon,
                {"units": "degrees_east", "standard_name": "longitude", "periodic": 1},
            ),
        }
        attrs["periodic_dims"] = "lon"
    else:
        field = _grf(rng, (*lead, *shape), spectral_slope)
        dims = ("y", "x") if len(shape) == 2 else ("x",)
        coords = {
            d: (d, np.arange(n, dtype=np.float64), {"periodic": 1})
            for d, n in zip(dims, shape, strict=True)
        }
        attrs["bc"] = "periodic"
        attrs["periodic_dims"] = " ".join(dims)
    if n_samples is None:
        return xr.DataArray(field[0], dims=dims, coords=coords, name="field", attrs=attrs)
    return xr.DataArray(field, dims=("sample", *dims), coords=coords, name="field", attrs=attrs)


def _region(
    lat: np.ndarray, lon: np.ndarray, center: tuple[float, float], radius_km: float
) -> np.ndarray:
    dist = haversine_km(lat[:, None], lon[None, :], center[0], center[1])  # (n_lat, n_lon)
    mask = dist <= radius_km
    if not mask.any():
        msg = f"region centred at {center} with radius_km={radius_km} contains no grid cell"
        raise ValueError(msg)
    return mask


def planted_teleconnection(
    n_time: int = 256,
    *,
    shape: tuple[int, int] = (32, 64),
    source: tuple[float, float] = (0.0, 200.0),
    target: tuple[float, float] = (45.0, 300.0),
    radius_km: float = 1500.0,
    strength: float = 1.0,
    noise: float = 0.5,
    lag: int = 0,
    spectral_slope: float = -3.0,
    seed: int | None = 0,
) -> xr.Dataset:
    """A predictor field and a target field whose target region is driven by a far source region.

    ``x(time, lat, lon)`` is spatially correlated noise (:func:`random_field`, independent in
    time). ``y`` is independent noise of std ``noise`` everywhere, plus, inside the target
    region, ``strength * index(t)``, where ``index(t)`` is the standardised mean of ``x`` over the
    source region ``lag`` steps earlier. Only the source region carries information about the
    target region.

    Parameters
    ----------
    n_time
        Time steps.
    shape
        ``(n_lat, n_lon)`` of a global cell-centred grid.
    source, target
        Region centres ``(lat, lon)`` in degrees.
    radius_km
        Great-circle radius of both regions (km).
    strength, noise
        Amplitude of the planted signal and of the target's own noise.
    lag
        Steps between the source signal and its response (``>= 0``).
    spectral_slope
        Spectrum of the predictor noise (see :func:`random_field`).
    seed
        Seed; the same seed gives the same dataset.

    Returns
    -------
    xr.Dataset
        Variables ``x``, ``y`` ``(time, lat, lon)`` and ``index`` ``(time,)``; coords
        ``source_mask``, ``target_mask`` ``(lat, lon)`` bool; attrs record the centres, radius,
        distance between them (km), strength, noise, lag and seed.
    """
    if lag < 0 or n_time < 2:
        msg = f"lag={lag} must be >= 0 and n_time={n_time} >= 2"
        raise ValueError(msg)
    lat, lon = global_grid(*shape)
    src = _region(lat, lon, source, radius_km)
    tgt = _region(lat, lon, target, radius_km)
    if (src & tgt).any():
        msg = (
            f"source {source} and target {target} regions overlap with radius_km={radius_km}; "
            f"move them apart or shrink the radius"
        )
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    x = random_field(
        shape,
        spectral_slope=spectral_slope,
        geographic=True,
        n_samples=n_time + lag,
        seed=int(rng.integers(2**31)),
    ).values  # (T + lag, n_lat, n_lon)
    w = np.cos(np.deg2rad(lat))[:, None] * src  # area weights inside the source region
    raw = (x * w).sum(axis=(-2, -1)) / w.sum()  # (T + lag,)
    index = (raw - raw.mean()) / raw.std()
    index = index[:n_time]  # index(t - lag) aligned with y(t)
    x = x[lag:]
    y = noise * rng.standard_normal((n_time, *shape)) + strength * index[:, None, None] * tgt
    dims = ("time", "lat", "lon")
    coords = {
        "time": np.arange(n_time),
        "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude", "periodic": 1}),
        "source_mask": (("lat", "lon"), src),
        "target_mask": (("lat", "lon"), tgt),
    }
    attrs = {
        "source_lat": float(source[0]),
        "source_lon": float(source[1]),
        "target_lat": float(target[0]),
        "target_lon": float(target[1]),
        "radius_km": float(radius_km),
        "distance_km": float(haversine_km(source[0], source[1], target[0], target[1])),
        "strength": float(strength),
        "noise": float(noise),
        "lag": int(lag),
        "spectral_slope": float(spectral_slope),
        "seed": -1 if seed is None else int(seed),
        "description": "y in target_mask = strength * index(t) + noise; index = mean of x over "
        "source_mask at t - lag (standardised)",
    }
    return xr.Dataset(
        {"x": (dims, x), "y": (dims, y), "index": ("time", index)}, coords=coords, attrs=attrs
    )
