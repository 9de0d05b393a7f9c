"""Pure geometry helpers shared by :class:`~gridformer.tokenize.TokenLayout` and its users.

Everything here is a function of arrays only (no layout, no xarray), so it can be tested against
independent references and reused by the analysis code.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EARTH_RADIUS_KM", "haversine_km", "is_global_lon", "patch_centers", "wrap_offsets"]

EARTH_RADIUS_KM = 6371.0
"""Mean Earth radius used for every great-circle distance in gridformer (km)."""


def haversine_km(
    lat1: np.ndarray | float,
    lon1: np.ndarray | float,
    lat2: np.ndarray | float,
    lon2: np.ndarray | float,
    *,
    radius: float = EARTH_RADIUS_KM,
) -> np.ndarray:
    """Great-circle distance between points given in degrees, by the haversine formula.

    Parameters
    ----------
    lat1, lon1, lat2, lon2
        Latitudes and longitudes in degrees; broadcast against each other.
    radius
        Sphere radius in km (default 6371.0 km, the mean Earth radius).

    Returns
    -------
    np.ndarray
        Distances in km, float64, with the broadcast shape of the inputs.
    """
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlam = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    h = np.sin(dphi / 2.0) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2.0) ** 2
    return 2.0 * radius * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def wrap_offsets(delta: np.ndarray, period: int) -> np.ndarray:
    """Wrap integer offsets on a periodic axis into ``[-period // 2, period - period // 2 - 1]``.

    Parameters
    ----------
    delta
        Integer offsets (any shape).
    period
        Period of the axis in the same units (cells or patches), ``> 0``.

    Returns
    -------
    np.ndarray
        The offsets shifted by a multiple of ``period`` into the half-open interval above, so
        ``+period/2`` on an even period maps to ``-period/2``.
    """
    half = period // 2
    return np.mod(np.asarray(delta) + half, period) - half


def patch_centers(coord: np.ndarray, patch: int, pad_before: int, pad_after: int) -> np.ndarray:
    """Centre coordinate of each patch along one axis: the mean of its real (unpadded) cells.

    Parameters
    ----------
    coord
        Cell-centre coordinates ``(L,)`` (numeric, monotonic).
    patch
        Cells per patch.
    pad_before, pad_after
        Padding cells added before/after the grid; they carry no coordinate and do not move the
        centre. Each is smaller than ``patch``, so every patch holds at least one real cell.

    Returns
    -------
    np.ndarray
        ``(n_patches,)`` float64 centres.
    """
    padded = np.concatenate(
        [
            np.full(pad_before, np.nan),
            np.asarray(coord, dtype=np.float64),
            np.full(pad_after, np.nan),
        ]
    )
    blocks = padded.reshape(-1, patch)  # (n_patches, patch)
    real = ~np.isnan(blocks)
    return np.where(real, blocks, 0.0).sum(axis=1) / real.sum(axis=1)


def is_global_lon(lon: np.ndarray) -> bool:
    """True when uniformly spaced longitudes (degrees) cover the whole circle: ``n * dlon == 360``.

    Such a grid is periodic in longitude (its last cell neighbours its first).
    """
    lon = np.asarray(lon, dtype=np.float64)
    if lon.size < 2:
        return False
    diff = np.diff(lon)
    step = float(np.mean(diff))
    uniform = np.allclose(diff, step, rtol=1e-4, atol=1e-6)
    return bool(uniform and abs(abs(step) * lon.size - 360.0) < 1e-3 * abs(step))
