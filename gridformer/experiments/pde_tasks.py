"""The tasks of ``gridformer experiment pde-benchmark``: FD ground truth, cached as PDEBench HDF5.

Each task is one of our finite-difference solvers (:func:`gridformer.solvers.solve`) on a
periodic unit interval (1-D) or unit square (2-D), with PDEBench's physical parameters for the
1-D tasks:

=========================  ============  ==========================================  ==========
task                       equation      parameters                                  saved step
=========================  ============  ==========================================  ==========
``advection-1d``           advection     velocity beta = 0.4 (PDEBench's beta = 0.4)  0.01
``burgers-1d``             burgers       viscosity nu = 0.01                          0.01
``diffusion-reaction-1d``  fisher_kpp    diffusivity nu = 0.5, rate rho = 1.0          0.01
``heat-2d``                heat          diffusivity (d_y, d_x) = (0.01, 0.04)         0.01
``burgers-2d``             burgers       viscosity nu = 0.01                          0.01
=========================  ============  ==========================================  ==========

Initial conditions follow PDEBench's 1-D generators: a sum of two sine waves
``A sin(2 pi k x + phi)`` with ``k`` in 1..4, ``A`` in [0, 1), ``phi`` in [0, 2 pi); for
diffusion-reaction the sum is rescaled to [0, 1] (a population density). In 2-D each wave is
``A sin(2 pi (k_x x + k_y y) + phi)`` with ``k_x, k_y`` in 1..4 (our choice; the 2-D tasks
have no PDEBench counterpart with these settings). The solver picks its
own stable inner step (0.9 x the largest stable one) and keeps every frame at multiples of the
saved step. Differences from PDEBench: fewer cells (``cells``, PDEBench 1024), fewer samples
and frames, and our FD schemes (upwind / conservative upwind + central diffusion) as ground
truth instead of PDEBench's finite-volume ones.

Trajectories are generated once per setting and cached as PDEBench ``arrays`` HDF5
(``tensor`` ``(sample, time, x[, y])``) under ``cache_dir`` in a file named by a hash of the
generation settings, which are also stored in the file's attrs; a cached file whose stored
settings differ is refused (never mixed), so it must be deleted to regenerate.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["TASKS", "TaskSpec", "default_cache_dir", "load_task"]


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task: solver ``equation`` with ``params``, frames ``saved_step`` apart on
    an ``ndim``-D periodic unit grid."""

    equation: str
    params: dict[str, Any] = field(hash=False)
    saved_step: float
    ndim: int


TASKS: dict[str, TaskSpec] = {
    "advection-1d": TaskSpec("advection", {"velocity": 0.4}, 0.01, 1),
    "burgers-1d": TaskSpec("burgers", {"viscosity": 0.01}, 0.01, 1),
    "diffusion-reaction-1d": TaskSpec("fisher_kpp", {"diffusivity": 0.5, "rate": 1.0}, 0.01, 1),
    "heat-2d": TaskSpec("heat", {"diffusivity": (0.01, 0.04)}, 0.01, 2),
    "burgers-2d": TaskSpec("burgers", {"viscosity": 0.01}, 0.01, 2),
}
_ATTR = "gridformer_generation"


def default_cache_dir() -> Path:
    """``$GRIDFORMER_CACHE/pde-benchmark``, else ``~/.cache/gridformer/pde-benchmark``."""
    root = os.environ.get("GRIDFORMER_CACHE") or Path.home() / ".cache" / "gridformer"
    return Path(root) / "pde-benchmark"


def check_task(task: Any) -> str:
    """``task`` if it is known, else a ValueError listing the valid ones."""
    if task not in TASKS:
        msg = f"unknown task {task!r}; valid: {', '.join(TASKS)}"
        raise ValueError(msg)
    return task


def _dims(ndim: int) -> tuple[str, ...]:
    return ("y", "x") if ndim == 2 else ("x",)


def initial_conditions(task: str, samples: int, cells: int, seed: int) -> np.ndarray:
    """``(samples, *[cells] * ndim)`` PDEBench-style initial states (module docstring)."""
    ndim = TASKS[check_task(task)].ndim
    rng = np.random.default_rng(seed)
    x = (np.arange(cells) + 0.5) / cells  # cell centres on [0, 1)
    axes = np.meshgrid(*[x] * ndim, indexing="ij")  # ndim arrays (cells,) * ndim: (y, x)
    shape = (samples, 2) + (1,) * ndim
    waves = 0.0
    for axis in axes:  # 2 pi k_a a, k_a in 1..4 per wave and axis
        waves = waves + rng.integers(1, 5, size=shape) * axis
    amplitude = rng.random(shape)
    phase = 2 * np.pi * rng.random(shape)
    u0 = (amplitude * np.sin(2 * np.pi * waves + phase)).sum(1)  # (samples, *grid)
    if task == "diffusion-reaction-1d":
        lo, hi = u0.min(1, keepdims=True), u0.max(1, keepdims=True)
        u0 = (u0 - lo) / np.maximum(hi - lo, 1e-12)
    return u0


def inner_steps(task: str, u0: xr.DataArray) -> int:
    """Solver steps per saved frame: the fewest whose step ``saved_step / n`` the solver finds
    stable for ``u0`` (its default, 0.9 x the largest stable step, rounded down to divide)."""
    from gridformer.solvers import solve

    spec = TASKS[check_task(task)]
    probe = solve(spec.equation, u0, steps=1, **spec.params)  # dt_max depends on max |u0|
    return int(np.ceil(spec.saved_step / float(probe.attrs["dt"]) - 1e-9))


def generate(task: str, samples: int, cells: int, frames: int, seed: int) -> xr.DataArray:
    """Solve ``task`` from fresh initial states: ``u`` over ``(sample, time, [y,] x)``,
    float64."""
    from gridformer.solvers import solve

    spec = TASKS[check_task(task)]
    dims = _dims(spec.ndim)
    x = (np.arange(cells) + 0.5) / cells
    u0 = xr.DataArray(initial_conditions(task, samples, cells, seed), dims=("sample", *dims),
                      coords=dict.fromkeys(dims, x))
    inner = inner_steps(task, u0)
    out = solve(spec.equation, u0, steps=inner * (frames - 1), dt=spec.saved_step / inner,
                save_every=inner, **spec.params)
    return out.u.transpose("sample", "time", *dims)


def _generation(task: str, samples: int, cells: int, frames: int, seed: int) -> dict[str, Any]:
    spec = TASKS[task]
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.params.items()}
    out = {"task": task, "equation": spec.equation, "params": params,
           "saved_step": spec.saved_step, "samples": samples, "cells": cells, "frames": frames,
           "seed": seed, "version": 1}
    if spec.ndim != 1:  # 1-D keys unchanged: files cached before the 2-D tasks stay valid
        out["ndim"] = spec.ndim
    return out


def load_task(task: str, *, samples: int, cells: int, frames: int, seed: int = 0,
              cache_dir: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Trajectories ``(samples, frames, *[cells] * ndim)`` of ``task``, generated once and
    cached (2-D: ``(sample, time, y, x)``).

    Parameters
    ----------
    task
        One of :data:`TASKS`.
    samples, cells, frames
        Trajectories, grid cells on [0, 1), saved frames (the initial state included).
    seed
        Seed of the initial conditions.
    cache_dir
        Folder of the cached PDEBench files (default :func:`default_cache_dir`).

    Raises
    ------
    ValueError
        Unknown task, sizes out of range, or a cached file generated with other settings.
    """
    check_task(task)
    for name, value, least in (("samples", samples, 1), ("cells", cells, 8),
                               ("frames", frames, 2)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            msg = f"{name}={value!r} must be an integer >= {least}"
            raise ValueError(msg)
    from gridformer.datasets import open_pdebench, write_pdebench

    wanted = _generation(task, int(samples), int(cells), int(frames), int(seed))
    text = json.dumps(wanted, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{task}-{digest}.hdf5"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        u = generate(task, samples, cells, frames, seed)
        write_pdebench(u.to_dataset(name="u").assign_attrs({_ATTR: text}), path,
                       dtype="float64")
    ds = open_pdebench(path, chunks=None)
    stored = ds.attrs.get(_ATTR)
    if stored != text:
        msg = (f"cached file {str(path)!r} was generated with other settings ({stored!r}, "
               f"wanted {text!r}); delete it to regenerate (data are never mixed)")
        raise ValueError(msg)
    dims = _dims(TASKS[task].ndim)
    return np.asarray(ds["tensor"].transpose("sample", "time", *dims).values, dtype=np.float64)


def generation_settings(settings: Mapping[str, Any], task: str) -> dict[str, Any]:
    """The data part of an experiment's settings for ``task`` (``n_train + n_test`` samples;
    ``cells`` in 1-D, ``cells_2d`` per axis in 2-D)."""
    key = "cells_2d" if TASKS[check_task(task)].ndim == 2 else "cells"
    return {"samples": int(settings["n_train"]) + int(settings["n_test"]),
            "cells": int(settings[key]), "frames": int(settings["frames"]),
            "seed": int(settings["data_seed"])}
