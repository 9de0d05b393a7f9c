"""Synthetic fields with known ground truth, as xarray: Gaussian random fields and a planted
teleconnection. Every generator takes ``seed`` and records its truth in attrs/coords.

:func:`random_field` is gridformer's one random-field generator: the experiments' training and
test fields and the CLI's initial states are drawn with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from gridformer.tokenize.geometry import global_grid, haversine_km

__all__ = ["SPECTRA", "planted_teleconnection", "random_field"]

SPECTRA = ("power_law", "broadband", "smooth")
"""Spectra of :func:`random_field`."""


def _spectral_filter(spectrum: str, shape: tuple[int, ...], slope: float) -> np.ndarray:
    """Amplitude filter ``(*shape)`` applied to white noise in Fourier space (zero at ``k = 0``)."""
    if spectrum == "power_law":  # |k| in cycles per cell: the slope does not depend on the size
        freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
        k = np.sqrt(sum(f**2 for f in freqs))
        amp = np.zeros_like(k)
        amp[k > 0] = k[k > 0] ** (slope / 2.0)  # power |F(k)|^2 ∝ |k|^slope
        return amp
    modes = np.meshgrid(*[np.fft.fftfreq(n, 1.0 / n) for n in shape], indexing="ij")
    k = np.sqrt(sum(m**2 for m in modes))  # |k| in mode numbers (cycles per domain)
    amp = 1.0 / (1.0 + k / 4.0) if spectrum == "broadband" else np.exp(-((k / 2.5) ** 2))
    amp.flat[0] = 0.0
    return amp


def _grf(rng: np.random.Generator, shape: tuple[int, ...], amp: np.ndarray) -> np.ndarray:
    """Periodic Gaussian random fields ``(S, *spatial)`` with amplitude filter ``amp``, unit std.

    ``shape`` is ``(S, *spatial)``: ``S`` independent samples; the filter acts on the spatial
    axes only.
    """
    noise = rng.standard_normal(shape)  # (S, *spatial)
    axes = tuple(range(1, len(shape)))
    field = np.fft.ifftn(np.fft.fftn(noise, axes=axes) * amp, axes=axes).real
    std = field.std(axis=axes, keepdims=True)
    return field / np.where(std > 0, std, 1.0)


def _check_options(
    shape: tuple[int, ...], spectrum: str, geographic: bool, n_samples: int | None,
    amplitude: float | None, mean_sd: float,
) -> None:
    if any(s < 2 for s in shape) or len(shape) not in (1, 2) or (geographic and len(shape) != 2):
        msg = f"shape={shape!r} must be 1 or 2 sizes >= 2 (two, (n_lat, n_lon), when geographic)"
        raise ValueError(msg)
    if spectrum not in SPECTRA:
        msg = f"spectrum={spectrum!r} is not one of {list(SPECTRA)}"
        raise ValueError(msg)
    if n_samples is not None and (isinstance(n_samples, bool) or int(n_samples) < 1):
        msg = f"n_samples={n_samples!r} must be a positive int or None (no sample dim)"
        raise ValueError(msg)
    if amplitude is not None and not float(amplitude) > 0:
        msg = f"amplitude={amplitude!r} must be positive (the largest |value| of each sample)"
        raise ValueError(msg)
    if not float(mean_sd) >= 0:
        msg = f"mean_sd={mean_sd!r} must be >= 0 (0: zero-mean fields)"
        raise ValueError(msg)


def random_field(
    shape: int | Sequence[int] = (64, 64),
    *,
    spectrum: str = "power_law",
    spectral_slope: float = -3.0,
    geographic: bool = False,
    n_samples: int | None = None,
    amplitude: float | None = None,
    mean_sd: float = 0.0,
    spacing: float | Sequence[float] = 1.0,
    seed: int | None = 0,
) -> xr.DataArray:
    """Periodic Gaussian random field (spectral synthesis: filtered white noise), seeded.

    Each sample is white noise filtered in Fourier space by the chosen spectrum, scaled to unit
    standard deviation, shifted by a random mean (``mean_sd``) and, with ``amplitude``, scaled
    to ``max |u| = amplitude``.

    Parameters
    ----------
    shape
        Grid shape: ``(ny, nx)`` (or ``nx`` for 1-D), or ``(n_lat, n_lon)`` when ``geographic``.
    spectrum
        ``"power_law"``: power spectral density ``|F(k)|^2 ∝ |k|^spectral_slope``, ``|k|`` in
        cycles per cell (``-3`` is smooth, ``0`` white noise). ``"broadband"``: amplitude
        spectrum ``(1 + |k| / 4)^-1``, ``|k|`` in mode numbers (cycles per domain): power at
        every scale, rough (training data that pins down a stencil at all wavenumbers).
        ``"smooth"``: amplitude spectrum ``exp(-(|k| / 2.5)^2)`` in mode numbers: a few low
        modes (smooth initial states).
    spectral_slope
        Exponent ``β`` of the power-law spectrum (used by ``"power_law"`` only).
    geographic
        False: dims ``(y, x)`` (or ``x``), periodic in every dim (``attrs["bc"] = "periodic"``).
        True: dims ``(lat, lon)`` on a global cell-centred grid, periodic in longitude only (the
        field is drawn on twice as many latitudes and cropped, so it does not wrap pole to pole).
    n_samples
        Draw this many independent fields along a leading ``sample`` dim (None: no sample dim).
    amplitude
        Scale each sample so that its largest ``|value|`` is ``amplitude`` (None: unit std).
    mean_sd
        Each sample's mean is drawn from ``N(0, mean_sd²)``; 0 (default) gives zero-mean fields
        (exactly, up to rounding, on the periodic grids; the cropped geographic field is not).
    spacing
        Grid spacing ``h`` (one number or one per dim, length units): the coordinates are
        ``i * h`` (not used when ``geographic``).
    seed
        Seed for ``numpy.random.default_rng``; the same seed gives the same field.

    Returns
    -------
    xr.DataArray
        float64, dims ``([sample,] y, x)`` / ``([sample,] lat, lon)``; attrs record
        ``spectrum``, ``seed``, ``periodic_dims`` (and ``spectral_slope``, ``amplitude``,
        ``mean_sd`` where used).
    """
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    _check_options(shape, spectrum, geographic, n_samples, amplitude, mean_sd)
    rng = np.random.default_rng(seed)
    n = int(n_samples) if n_samples is not None else 1
    drawn = (2 * shape[0], shape[1]) if geographic else shape  # geographic: no pole-to-pole wrap
    field = _grf(rng, (n, *drawn), _spectral_filter(spectrum, drawn, spectral_slope))
    axes = tuple(range(1, len(shape) + 1))
    if geographic:
        field = field[:, : shape[0], :]  # (S, n_lat, n_lon)
        field = field / field.std(axis=axes, keepdims=True)
    if mean_sd:
        field = field + rng.normal(scale=float(mean_sd), size=(n,) + (1,) * len(shape))
    if amplitude is not None:
        field = field * (float(amplitude) / np.abs(field).max(axis=axes, keepdims=True))
    attrs: dict = {"spectrum": spectrum, "seed": -1 if seed is None else int(seed)}
    if spectrum == "power_law":
        attrs["spectral_slope"] = float(spectral_slope)
    if amplitude is not None:
        attrs["amplitude"] = float(amplitude)
    if mean_sd:
        attrs["mean_sd"] = float(mean_sd)
    if geographic:
        lat, lon = global_grid(*shape)
        dims: tuple[str, ...] = ("lat", "lon")
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
        dims = ("y", "x") if len(shape) == 2 else ("x",)
        steps = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (len(shape),))
        if not np.all(steps > 0):
            msg = f"spacing={spacing!r} must be positive: one number or one per dim {dims}"
            raise ValueError(msg)
        coords = {
            d: (d, np.arange(size) * h, {"periodic": 1})
            for d, size, h in zip(dims, shape, steps.tolist(), strict=True)
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
