"""Pure geometry helpers shared by :class:`~gridformer.tokenize.TokenLayout` and its users.

Everything here is a function of arrays only (no layout, no xarray), so it can be tested against
independent references and reused by the analysis code.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "EARTH_RADIUS_KM",
    "contiguous_lon",
    "default_coord",
    "global_grid",
    "haversine_km",
    "is_global_lon",
    "patch_centers",
    "unwrap_lon",
    "wrap_offsets",
]

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

    Such a grid is periodic in longitude (its last cell neighbours its first). The longitudes
    are unwrapped first (:func:`unwrap_lon`), so a global grid stored across the 0° or 180°
    meridian (``[180, 270, 0, 90]``) counts too.
    """
    lon = unwrap_lon(lon)
    if lon.size < 2:
        return False
    diff = np.diff(lon)
    step = float(np.mean(diff))
    uniform = np.allclose(diff, step, rtol=1e-4, atol=1e-6)
    return bool(uniform and abs(abs(step) * lon.size - 360.0) < 1e-3 * abs(step))


def global_grid(n_lat: int, n_lon: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centred global grid in degrees.

    Returns
    -------
    lat : np.ndarray
        ``(n_lat,)`` ascending cell centres in ``(-90, 90)``, degrees north.
    lon : np.ndarray
        ``(n_lon,)`` ascending cell centres in ``(0, 360)``, degrees east.
    """
    lat = -90.0 + (np.arange(n_lat) + 0.5) * 180.0 / n_lat
    lon = (np.arange(n_lon) + 0.5) * 360.0 / n_lon
    return lat, lon


def default_coord(dim: str, size: int) -> np.ndarray:
    """Cell centres ``(size,)`` for a grid without coordinates.

    Dims named ``lat``/``lon`` get the global cell-centred grid of :func:`global_grid` (degrees);
    any other dim gets the cell index ``0 .. size - 1``.
    """
    if dim == "lat":
        return global_grid(size, 1)[0]
    if dim == "lon":
        return global_grid(1, size)[1]
    return np.arange(size, dtype=np.float64)


def unwrap_lon(lon: np.ndarray) -> np.ndarray:
    """Longitudes (degrees) made continuous along the axis, the first value kept.

    Each step is taken the short way round (a step of more than 180° gains or loses a multiple
    of 360°), so ``[350, 355, 0, 5]`` becomes ``[350, 355, 360, 365]``. Grids whose steps are
    all below 180° (every ordinary grid, regional or global) come back unchanged.
    """
    return np.unwrap(np.asarray(lon, dtype=np.float64), period=360.0)


def contiguous_lon(lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order and values that lay a regional grid's longitudes out as one eastward run.

    The cells are sorted by longitude modulo 360° and the sequence starts after the widest gap
    between neighbouring cells (the part of the circle the region does not cover), so a region
    across the 0° or 180° meridian comes out in one piece, e.g. ``[0.5, 325.5, ..., 355.5]``
    becomes ``[325.5, ..., 355.5, 360.5]``. Of the equivalent runs (shifted by multiples of
    360°) the one keeping most of the given values is returned (on a tie, the one keeping the
    west-most cell's value).

    Parameters
    ----------
    lon
        Longitudes ``(L,)`` in degrees, in any order and any convention (0..360, -180..180).

    Returns
    -------
    order : np.ndarray
        ``(L,)`` int64 indices into ``lon``, west to east.
    values : np.ndarray
        ``(L,)`` float64 strictly increasing longitudes, ``values ≡ lon[order]`` modulo 360.

    Raises
    ------
    ValueError
        Two longitudes are the same place (equal modulo 360°).
    """
    lon = np.asarray(lon, dtype=np.float64)
    wrapped = np.mod(lon, 360.0)
    order = np.argsort(wrapped, kind="stable")
    ordered = wrapped[order]  # (L,) ascending in [0, 360)
    same = np.flatnonzero(np.diff(ordered) == 0)
    if same.size:
        a, b = order[same[0]], order[same[0] + 1]
        msg = (
            f"longitudes {lon[a]} (index {a}) and {lon[b]} (index {b}) are the same place "
            f"(equal modulo 360°); the grid is not regular"
        )
        raise ValueError(msg)
    gaps = np.diff(np.append(ordered, ordered[0] + 360.0))  # gap east of each cell, last wraps
    start = (int(np.argmax(gaps)) + 1) % lon.size
    order = np.roll(order, -start)
    values = np.roll(ordered, -start)
    values[lon.size - start :] += 360.0  # the cells east of the 0° meridian (none if start = 0)
    turns = np.rint((lon[order] - values) / 360.0).astype(np.int64)  # (L,) whole turns per cell
    kinds, counts = np.unique(turns, return_counts=True)
    best = kinds[counts == counts.max()]
    turn = turns[0] if turns[0] in best else best[0]  # on a tie keep the west-most cell's value
    return order.astype(np.int64), values + 360.0 * turn
