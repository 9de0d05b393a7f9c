"""The tasks of ``gridformer experiment pde-benchmark``: FD ground truth, cached as PDEBench HDF5.

Each task is one of our finite-difference solvers (:func:`gridformer.solvers.solve`) on a
periodic unit interval with PDEBench's physical parameters:

=========================  ============  ==========================================  ==========
task                       equation      parameters                                  saved step
=========================  ============  ==========================================  ==========
``advection-1d``           advection     velocity beta = 0.4 (PDEBench's beta = 0.4)  0.01
``burgers-1d``             burgers       viscosity nu = 0.01                          0.01
``diffusion-reaction-1d``  fisher_kpp    diffusivity nu = 0.5, rate rho = 1.0          0.01
=========================  ============  ==========================================  ==========

Initial conditions follow PDEBench's 1-D generators: a sum of two sine waves
``A sin(2 pi k x + phi)`` with ``k`` in 1..4, ``A`` in [0, 1), ``phi`` in [0, 2 pi); for
diffusion-reaction the sum is rescaled to [0, 1] (a population density). The solver picks its
own stable inner step (0.9 x the largest stable one) and keeps every frame at multiples of the
saved step. Differences from PDEBench: fewer cells (``cells``, PDEBench 1024), fewer samples
and frames, and our FD schemes (upwind / conservative upwind + central diffusion) as ground
truth instead of PDEBench's finite-volume ones.

Trajectories are generated once per setting and cached as PDEBench ``arrays`` HDF5
(``tensor`` ``(sample, time, x)``) under ``cache_dir`` in a file named by a hash of the
generation settings, which are also stored in the file's attrs; a cached file whose stored
settings differ is refused (never mixed), so it must be deleted to regenerate.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["TASKS", "default_cache_dir", "load_task"]

#: task name -> (solver equation, solver parameters, saved step)
TASKS: dict[str, tuple[str, dict[str, float], float]] = {
    "advection-1d": ("advection", {"velocity": 0.4}, 0.01),
    "burgers-1d": ("burgers", {"viscosity": 0.01}, 0.01),
    "diffusion-reaction-1d": ("fisher_kpp", {"diffusivity": 0.5, "rate": 1.0}, 0.01),
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


def initial_conditions(task: str, samples: int, cells: int, seed: int) -> np.ndarray:
    """``(samples, cells)`` PDEBench-style initial states (see the module docstring)."""
    rng = np.random.default_rng(seed)
    x = (np.arange(cells) + 0.5) / cells  # cell centres on [0, 1)
    k = rng.integers(1, 5, size=(samples, 2, 1))
    amplitude = rng.random((samples, 2, 1))
    phase = 2 * np.pi * rng.random((samples, 2, 1))
    u0 = (amplitude * np.sin(2 * np.pi * k * x + phase)).sum(1)  # (samples, cells)
    if task == "diffusion-reaction-1d":
        lo, hi = u0.min(1, keepdims=True), u0.max(1, keepdims=True)
        u0 = (u0 - lo) / np.maximum(hi - lo, 1e-12)
    return u0


def generate(task: str, samples: int, cells: int, frames: int, seed: int) -> xr.DataArray:
    """Solve ``task`` from fresh initial states: ``u`` over ``(sample, time, x)``, float64."""
    from gridformer.solvers import solve

    equation, params, saved = TASKS[check_task(task)]
    x = (np.arange(cells) + 0.5) / cells
    u0 = xr.DataArray(initial_conditions(task, samples, cells, seed), dims=("sample", "x"),
                      coords={"x": x})
    probe = solve(equation, u0, steps=1, **params)  # dt_max depends on max |u0|
    inner = int(np.ceil(saved / float(probe.attrs["dt"]) - 1e-9))  # stable inner steps
    out = solve(equation, u0, steps=inner * (frames - 1), dt=saved / inner,
                save_every=inner, **params)
    return out.u.transpose("sample", "time", "x")


def _generation(task: str, samples: int, cells: int, frames: int, seed: int) -> dict[str, Any]:
    equation, params, saved = TASKS[task]
    return {"task": task, "equation": equation, "params": params, "saved_step": saved,
            "samples": samples, "cells": cells, "frames": frames, "seed": seed, "version": 1}


def load_task(task: str, *, samples: int, cells: int, frames: int, seed: int = 0,
              cache_dir: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Trajectories ``(samples, frames, cells)`` of ``task``, generated once and cached.

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
    return np.asarray(ds["tensor"].transpose("sample", "time", "x").values, dtype=np.float64)


def generation_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The data part of an experiment's settings (``n_train + n_test`` samples)."""
    return {"samples": int(settings["n_train"]) + int(settings["n_test"]),
            "cells": int(settings["cells"]), "frames": int(settings["frames"]),
            "seed": int(settings["data_seed"])}
