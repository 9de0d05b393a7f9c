"""Next-state pairs ``(u_t, u_{t+lead})`` as tokens, from a NetCDF file or a PDE solver run.

This is what ``gridformer train`` trains on; the description is a plain dict (from YAML/JSON)::

    {"path": "t2m.nc", "variables": ["t2m"], "lead": 1, "patch_size": 2}           # NetCDF
    {"solver": {"equation": "heat", "params": {"diffusivity": 0.1}, "grid": [32, 32],
                "steps": 40, "samples": 4, "dt": null, "seed": 0}, "lead": 1}       # solver

Every dim other than time and the spatial dims (e.g. ``sample``) joins the batch, so the pairs
are ``inputs (S, N, D)``, ``targets (S, N, D)`` with ``S = (T - lead) * samples``, in time-major
order (the last ``val_fraction`` of pairs are the latest times).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import xarray as xr

__all__ = ["PairData", "load_pairs"]

_DATA_KEYS = {"path", "variables", "solver", "lead", "patch_size", "time_dim", "periodic",
              "val_fraction"}
_SOLVER_KEYS = {"equation", "params", "grid", "steps", "dt", "samples", "seed", "save_every",
                "spacing", "bc", "spectral_slope"}


@dataclass
class PairData:
    """Tokenized next-state pairs split into training and validation parts."""

    train: tuple[torch.Tensor, torch.Tensor]  # inputs (S, N, D), targets (S, N, D)
    val: tuple[torch.Tensor, torch.Tensor] | None
    layout: Any  # TokenLayout of the training inputs
    val_layout: Any  # TokenLayout of the validation inputs (same grid, their valid rows)
    source: dict[str, Any]  # what was loaded (for the JSON record)


def _check_keys(values: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:
        msg = f"unknown {where} keys {unknown}; valid: {sorted(allowed)}"
        raise ValueError(msg)


def _from_solver(spec: dict[str, Any]) -> xr.Dataset:
    from gridformer import solvers
    from gridformer.datasets import random_field

    _check_keys(spec, _SOLVER_KEYS, "data.solver")
    if "equation" not in spec:
        msg = "data.solver needs an 'equation' (e.g. 'heat')"
        raise ValueError(msg)
    grid = spec.get("grid", [32, 32])
    u0 = random_field(grid, spectral_slope=float(spec.get("spectral_slope", -3.0)),
                      n_samples=int(spec.get("samples", 4)), seed=spec.get("seed", 0))
    try:  # the equation's physical parameters (data.solver.params) have no defaults
        return solvers.solve(spec["equation"], u0, steps=int(spec.get("steps", 20)),
                             dt=spec.get("dt"), bc=spec.get("bc", "periodic"),
                             save_every=int(spec.get("save_every", 1)),
                             **dict(spec.get("params", {})))
    except TypeError as error:  # e.g. a missing parameter: say where it goes in the config
        msg = f"data.solver.params: {error}"
        raise TypeError(msg) from None


def _from_netcdf(path: str, variables: list[str] | None) -> xr.Dataset:
    from gridformer.datasets import open_dataset

    return open_dataset(path, variables=variables).load()


def load_pairs(spec: dict[str, Any]) -> PairData:
    """Load the dataset described by ``spec`` (see the module docstring) as token pairs.

    Raises
    ------
    ValueError
        Unknown keys, neither or both of ``path``/``solver``, too few time steps.
    """
    from gridformer.tokenize import PatchTokenizer

    _check_keys(spec, _DATA_KEYS, "data")
    if ("path" in spec) == ("solver" in spec):
        msg = "data needs exactly one of 'path' (a NetCDF file) or 'solver' (a PDE run)"
        raise ValueError(msg)
    if "solver" in spec:
        ds = _from_solver(dict(spec["solver"]))
        variables = spec.get("variables") or ["u"]
        periodic = spec.get("periodic", spec["solver"].get("bc", "periodic") == "periodic")
    else:
        variables = spec.get("variables")
        variables = [variables] if isinstance(variables, str) else variables
        ds = _from_netcdf(spec["path"], variables)
        periodic = spec.get("periodic")
    missing = sorted(set(variables or []) - set(ds.data_vars))
    if missing:
        msg = f"data.variables {missing} not in the data; it has {sorted(map(str, ds.data_vars))}"
        raise ValueError(msg)
    data = ds[variables or list(ds.data_vars)]
    time_dim, lead = spec.get("time_dim", "time"), int(spec.get("lead", 1))
    if time_dim not in data.dims:
        msg = f"the data has no time dim {time_dim!r} (dims {tuple(data.dims)}); set data.time_dim"
        raise ValueError(msg)
    n_time = data.sizes[time_dim]
    if not 1 <= lead < n_time:
        msg = f"lead={lead} needs 1 <= lead < {n_time} (the number of time steps)"
        raise ValueError(msg)
    tokenizer = PatchTokenizer(spec.get("patch_size", 1))
    inputs, layout = tokenizer.encode(data.isel({time_dim: slice(0, n_time - lead)}),
                                      periodic=periodic)
    targets, _ = tokenizer.encode(data.isel({time_dim: slice(lead, n_time)}), periodic=periodic)
    n_val = round(float(spec.get("val_fraction", 0.0)) * inputs.shape[0])
    n_train = inputs.shape[0] - n_val
    if n_train < 1:
        msg = f"val_fraction={spec.get('val_fraction')} leaves no training pairs"
        raise ValueError(msg)
    val_layout = layout
    if layout.valid.shape[0] == inputs.shape[0]:  # per-sample validity: split the rows
        val_layout = dataclasses.replace(layout, valid=layout.valid[n_train:])
        layout = dataclasses.replace(layout, valid=layout.valid[:n_train])
    val = (inputs[n_train:], targets[n_train:]) if n_val else None
    source = {"variables": list(data.data_vars), "dims": {k: int(v) for k, v in data.sizes.items()},
              "pairs": int(inputs.shape[0]), "train_pairs": n_train, "val_pairs": n_val,
              "tokens": int(inputs.shape[1]), "features": int(inputs.shape[2])}
    return PairData((inputs[:n_train], targets[:n_train]), val, layout, val_layout, source)
