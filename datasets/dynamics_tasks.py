"""Seeded tasks of the experiment suite's part 2 (space-time tokens, distillation, probing).

Each generator returns an ``xr.Dataset`` whose ``field`` holds the inputs and whose other
variables and attrs record what was planted:

- :func:`moving_blobs` — clips ``(sample, time, y, x)`` of Gaussian blobs moving at constant
  integer velocities (some still) over a static smooth background, on a periodic grid; the
  exact positions and velocities are recorded.
- :func:`advection_clips` — clips of a smooth random field carried by the finite-difference
  advection solver (:mod:`gridformer.solvers`, first-order upwind, periodic) at a constant
  velocity per sample.
- :func:`spectral_slope_task` — single fields ``(sample, y, x)`` of Gaussian random fields
  whose power spectrum falls as ``|k|^slope``; the class is the slope (neighbouring classes
  look alike, so a teacher's soft outputs carry how alike).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import xarray as xr
from gridformer.datasets.synthetic import random_field

__all__ = ["advection_clips", "moving_blobs", "spectral_slope_task"]


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        msg = f"{name}={value!r} must be an integer >= {minimum}"
        raise ValueError(msg)
    return int(value)


def _grid(grid: Sequence[int]) -> tuple[int, int]:
    cells = tuple(int(g) for g in np.atleast_1d(grid))
    if len(cells) != 2 or min(cells) < 2:
        msg = f"grid={tuple(grid)!r} must be two sizes (ny, nx), each >= 2"
        raise ValueError(msg)
    return cells  # type: ignore[return-value]


def _clip_coords(n_frames: int, cells: tuple[int, int]) -> dict[str, np.ndarray]:
    return {"time": np.arange(n_frames), "y": np.arange(cells[0]), "x": np.arange(cells[1])}


def moving_blobs(
    n_samples: int,
    *,
    grid: Sequence[int] = (16, 16),
    n_frames: int = 5,
    n_blobs: int = 3,
    max_speed: int = 2,
    width: float = 1.5,
    amplitude: float = 2.0,
    background_sd: float = 0.5,
    seed: int = 0,
) -> xr.Dataset:
    """Gaussian blobs moving at constant integer velocities over a static background.

    Blob ``b`` of sample ``s`` sits at ``start + velocity * t`` (cells, periodic) in frame
    ``t``; each velocity component is drawn uniformly from the integers in
    ``[-max_speed, max_speed]``, so some blobs stand still and some move up to
    ``max_speed`` cells per frame along each axis. A blob is ``amplitude * exp(-d^2 / (2
    width^2))`` with ``d`` the periodic distance in cells; the background (std
    ``background_sd``, spectral slope -3) is the same in every frame of a clip, so where no
    blob passes nothing changes.

    Returns
    -------
    xr.Dataset
        ``field`` ``(sample, time, y, x)`` float64; ``velocity`` and ``start``
        ``(sample, blob, axis)`` in cells per frame and cells; ``background``
        ``(sample, y, x)``; ``speed`` ``(sample, blob)`` = ``max(|v_y|, |v_x|)``.
    """
    n = _positive_int("n_samples", n_samples)
    frames = _positive_int("n_frames", n_frames, 2)
    blobs = _positive_int("n_blobs", n_blobs)
    top = _positive_int("max_speed", max_speed, 0)
    cells = _grid(grid)
    rng = np.random.default_rng(seed)
    velocity = rng.integers(-top, top + 1, size=(n, blobs, 2))
    start = rng.uniform(0, 1, size=(n, blobs, 2)) * np.asarray(cells)
    background = np.zeros((n, *cells))
    if background_sd > 0:
        background = background_sd * random_field(
            cells, spectral_slope=-3.0, n_samples=n, seed=int(rng.integers(2**31))).values
    yy, xx = np.meshgrid(np.arange(cells[0]), np.arange(cells[1]), indexing="ij")
    field = np.repeat(background[:, None], frames, axis=1)  # (S, T, ny, nx)
    for t in range(frames):
        centre = start + velocity * t  # (S, blob, 2)
        dy = (yy[None, None] - centre[..., 0, None, None] + cells[0] / 2) % cells[0] - cells[0] / 2
        dx = (xx[None, None] - centre[..., 1, None, None] + cells[1] / 2) % cells[1] - cells[1] / 2
        field[:, t] += amplitude * np.exp(-(dy**2 + dx**2) / (2 * width**2)).sum(1)
    return xr.Dataset(
        {
            "field": (("sample", "time", "y", "x"), field),
            "velocity": (("sample", "blob", "axis"), velocity.astype(np.int64)),
            "start": (("sample", "blob", "axis"), start),
            "speed": (("sample", "blob"), np.abs(velocity).max(-1).astype(np.int64)),
            "background": (("sample", "y", "x"), background),
        },
        coords={**_clip_coords(frames, cells), "axis": ["y", "x"]},
        attrs={"task": "moving_blobs", "max_speed": top, "width": float(width),
               "amplitude": float(amplitude), "background_sd": float(background_sd),
               "bc": "periodic", "seed": int(seed),
               "description": "blob b in frame t is centred at start + velocity * t (cells, "
                              "periodic); the background does not change"},
    )


def advection_clips(
    n_samples: int,
    *,
    grid: Sequence[int] = (16, 16),
    n_frames: int = 5,
    courant: Sequence[float] = (-1.0, -0.5, 0.0, 0.5, 1.0),
    steps_per_frame: int = 2,
    seed: int = 0,
) -> xr.Dataset:
    """Clips of the FD advection solver (upwind, periodic, unit spacing and time step).

    Each sample is a smooth random field (spectral slope -3, unit std) advected at a constant
    velocity ``(v_y, v_x)`` whose components are drawn from ``courant`` (cells per solver step,
    ``|c| <= 1``); frames are ``steps_per_frame`` solver steps apart, so a frame moves the field
    by up to ``steps_per_frame`` cells per axis. Samples sharing a velocity are solved as one
    batch.

    Returns
    -------
    xr.Dataset
        ``field`` ``(sample, time, y, x)``; ``velocity`` ``(sample, axis)`` in cells per
        frame (``courant * steps_per_frame``).
    """
    from gridformer import solvers

    n = _positive_int("n_samples", n_samples)
    frames = _positive_int("n_frames", n_frames, 2)
    per_frame = _positive_int("steps_per_frame", steps_per_frame)
    cells = _grid(grid)
    choices = np.asarray(courant, dtype=np.float64)
    if choices.ndim != 1 or choices.size == 0 or not np.all(np.abs(choices) <= 1):
        msg = f"courant={tuple(courant)!r} must be a non-empty list of numbers in [-1, 1]"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, choices.size, size=(n, 2))
    u0 = random_field(cells, spectral_slope=-3.0, n_samples=n,
                      seed=int(rng.integers(2**31))).values
    field = np.empty((n, frames, *cells))
    for key in np.unique(pick, axis=0):
        members = np.flatnonzero(np.all(pick == key, axis=1))
        c = (float(choices[key[0]]), float(choices[key[1]]))
        start = xr.DataArray(u0[members], dims=("sample", "y", "x"),
                             coords={"y": np.arange(cells[0]), "x": np.arange(cells[1])})
        out = solvers.solve("advection", start, steps=(frames - 1) * per_frame, dt=1.0,
                            save_every=per_frame, velocity=c, scheme="upwind")
        field[members] = out.u.transpose("sample", "time", "y", "x").values
    velocity = choices[pick] * per_frame
    return xr.Dataset(
        {"field": (("sample", "time", "y", "x"), field),
         "velocity": (("sample", "axis"), velocity)},
        coords={**_clip_coords(frames, cells), "axis": ["y", "x"]},
        attrs={"task": "advection_clips", "scheme": "upwind", "steps_per_frame": per_frame,
               "courant": list(map(float, choices)), "bc": "periodic", "seed": int(seed),
               "description": "u_t + v . grad u = 0 by first-order upwind, dt = dx = 1"},
    )


def spectral_slope_task(
    n_samples: int,
    *,
    grid: Sequence[int] = (32, 32),
    slopes: Sequence[float] = (-1.0, -1.5, -2.0, -2.5, -3.0, -3.5),
    noise_sd: float = 0.1,
    seed: int = 0,
) -> xr.Dataset:
    """Classify the spectral slope of a Gaussian random field.

    Sample ``s`` has class ``label[s]`` (uniform over ``slopes``) and is a periodic random field
    of unit std whose power spectrum falls as ``|k|^slopes[label]`` (``|k|`` in cycles per cell),
    plus white noise of std ``noise_sd``. Steeper slopes are smoother; neighbouring classes
    differ little, so they are confused most.

    Returns
    -------
    xr.Dataset
        ``field`` ``(sample, y, x)``, ``label`` ``(sample,)`` int64, ``slope`` ``(sample,)``;
        attrs ``n_classes``, ``slopes``.
    """
    n = _positive_int("n_samples", n_samples)
    cells = _grid(grid)
    values = [float(s) for s in slopes]
    if len(values) < 2 or len(set(values)) != len(values):
        msg = f"slopes={tuple(slopes)!r} must be at least two different numbers"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    label = rng.integers(0, len(values), size=n)
    field = np.empty((n, *cells))
    for k, slope in enumerate(values):
        members = np.flatnonzero(label == k)
        if members.size:
            field[members] = random_field(cells, spectral_slope=slope, n_samples=members.size,
                                          seed=int(rng.integers(2**31))).values
    field += noise_sd * rng.standard_normal(field.shape)
    return xr.Dataset(
        {"field": (("sample", "y", "x"), field),
         "label": ("sample", label.astype(np.int64)),
         "slope": ("sample", np.asarray(values)[label])},
        coords={"y": np.arange(cells[0]), "x": np.arange(cells[1])},
        attrs={"task": "spectral_slope", "n_classes": len(values), "slopes": values,
               "noise_sd": float(noise_sd), "seed": int(seed),
               "description": "label = index of the spectral slope of the field"},
    )
