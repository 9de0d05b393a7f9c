"""Next-state pairs ``(u_t, u_{t+lead})`` as tokens, from a NetCDF file or a PDE solver run.

This is what ``gridformer train`` trains on; the description is a plain dict (from YAML/JSON)::

    {"path": "t2m.nc", "variables": ["t2m"], "lead": 1, "patch_size": 2}           # NetCDF
    {"store": "t2m.zarr", "lead": 1, "val_fraction": 0.2}                           # token store
    {"solver": {"equation": "heat", "params": {"diffusivity": 0.1}, "grid": [32, 32],
                "steps": 40, "samples": 4, "dt": null, "seed": 0}, "lead": 1}       # solver

Both go through one pair builder, :class:`gridformer.datasets.TrajectoryPairs`: every dim other
than time and the spatial dims (``sample``, ensemble members, levels, ...) is stacked into its
``sample`` dim. The pairs are ``inputs (S, N, D)``, ``targets (S, N, D)`` with
``S = (T - lead) * samples``, in time-major order, so the last ``val_fraction`` of pairs are the
latest times.

A token store (``gridformer preprocess``, :func:`gridformer.datasets.write_token_store`) is
read as it is: its tokens are already anomalised/standardised, and the pairs are read from it
block by block (:class:`gridformer.datasets.TokenStoreDataset`), never loaded whole, so the
data may be larger than memory; under ``torchrun`` each process reads its own
``DistributedSampler`` share. ``variables``, ``patch_size`` and ``normalize`` may be given to
state what the store must hold (a store written otherwise is refused); the statistics period of
the store must end before the validation pairs (else: an error, never a leak).

Normalisation (``"normalize": true``, the default): each variable is standardised with one
mean and one standard deviation over the time steps of the training inputs (never the
validation ones), through :class:`gridformer.datasets.Standardizer`. The statistics, the
tokenizer settings, the variables and the grid go into :attr:`PairData.metadata`, which ``fit``
stores in its checkpoints so that :func:`gridformer.training.load_model` can use the model on
new data.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import xarray as xr

__all__ = ["PairData", "load_pairs"]

_DATA_KEYS = {"path", "variables", "solver", "store", "lead", "patch_size", "time_dim",
              "periodic", "val_fraction", "normalize"}
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
    metadata: dict[str, Any]  # what load_model needs (fit(..., metadata=...)); plain JSON


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


def _select(spec: dict[str, Any]) -> tuple[xr.Dataset, Any]:
    """The chosen variables of the described data, and the ``periodic`` to tokenize with."""
    if ("path" in spec) == ("solver" in spec):
        msg = ("data needs exactly one of 'path' (a NetCDF file), 'solver' (a PDE run) or "
               "'store' (a token store)")
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
    return ds[variables or list(ds.data_vars)], periodic


def _trajectories(data: xr.Dataset, time_dim: str, spatial: tuple[str, ...]) -> xr.Dataset:
    """``data`` with dims ``("time", "sample", *spatial)``: what ``TrajectoryPairs`` reads.

    The time dim is renamed to ``"time"``; every other non-spatial dim is stacked, in the
    data's order, into ``"sample"`` (none: a sample dim of size 1).
    """
    if time_dim != "time":
        if "time" in data.dims:
            msg = f"the data has both time_dim={time_dim!r} and a 'time' dim; rename one"
            raise ValueError(msg)
        data = data.rename({time_dim: "time"})
    extra = [str(d) for d in data.dims if d != "time" and d not in spatial]
    if not extra:
        data = data.expand_dims("sample")
    elif extra != ["sample"]:
        data = data.drop_vars([c for c in data.coords if set(data[c].dims) & set(extra)])
        data = data.stack(pair_sample=extra, create_index=False).rename(pair_sample="sample")
    return data.transpose("time", "sample", *spatial)


def load_pairs(spec: dict[str, Any]) -> PairData:
    """Load the dataset described by ``spec`` (see the module docstring) as token pairs.

    Raises
    ------
    ValueError
        Unknown keys, neither or both of ``path``/``solver``, unknown variables, too few time
        steps, a ``val_fraction`` that leaves no training pairs.
    """
    from gridformer.datasets import Standardizer, TrajectoryPairs
    from gridformer.tokenize import PatchTokenizer
    from gridformer.training.predictor import data_metadata

    _check_keys(spec, _DATA_KEYS, "data")
    if "store" in spec:
        if "path" in spec or "solver" in spec:
            msg = ("data needs exactly one of 'path' (a NetCDF file), 'solver' (a PDE run) or "
                   "'store' (a token store)")
            raise ValueError(msg)
        from gridformer.training._store_pairs import load_store_pairs

        return load_store_pairs(spec)
    data, periodic = _select(spec)
    time_dim, lead = spec.get("time_dim", "time"), int(spec.get("lead", 1))
    if time_dim not in data.dims:
        msg = f"the data has no time dim {time_dim!r} (dims {tuple(data.dims)}); set data.time_dim"
        raise ValueError(msg)
    n_time = data.sizes[time_dim]
    if not 1 <= lead < n_time:
        msg = f"lead={lead} needs 1 <= lead < {n_time} (the number of time steps)"
        raise ValueError(msg)
    tokenizer = PatchTokenizer(spec.get("patch_size", 1))
    # one time step fixes the geometry: spatial dims, and periodicity (inferred when not given)
    _, probe = tokenizer.encode(data.isel({time_dim: 0}), periodic=periodic)
    traj = _trajectories(data, time_dim, probe.spatial_dims)
    n_sample, n_starts = traj.sizes["sample"], n_time - lead
    n_val = round(float(spec.get("val_fraction", 0.0)) * n_starts * n_sample)
    n_train = n_starts * n_sample - n_val
    if n_train < 1:
        msg = f"val_fraction={spec.get('val_fraction')} leaves no training pairs"
        raise ValueError(msg)
    stats = None
    if spec.get("normalize", True):
        train_times = traj.isel(time=slice(0, math.ceil(n_train / n_sample)))
        stats = Standardizer.fit(train_times, dims=list(traj.dims))
        traj = stats.transform(traj)

    variables = [str(v) for v in data.data_vars]
    pairs = TrajectoryPairs(traj, lead=lead, variables=variables, tokenizer=tokenizer,
                            periodic=probe.periodic)
    # TrajectoryPairs is sample-major (pair s * n_starts + k); take the pairs time-major
    order = [s * n_starts + k for k in range(n_starts) for s in range(n_sample)]
    inputs = torch.stack([pairs[i][0] for i in order])  # (S, N, D)
    targets = torch.stack([pairs[i][1] for i in order])  # (S, N, D)
    layout, val_layout = _split_layouts(pairs.layout, n_sample, n_time, n_starts, n_train)
    source = {"variables": variables, "dims": {k: int(v) for k, v in data.sizes.items()},
              "pairs": len(order), "train_pairs": n_train, "val_pairs": n_val,
              "tokens": int(inputs.shape[1]), "features": int(inputs.shape[2]),
              "normalization": None if stats is None else {
                  v: {"mean": float(stats.mean[v]), "std": float(stats.std[v])}
                  for v in variables}}
    metadata = data_metadata(layout=layout, tokenizer=tokenizer, variables=variables, lead=lead,
                             time_dim=time_dim, normalization=stats)
    val = (inputs[n_train:], targets[n_train:]) if n_val else None
    return PairData((inputs[:n_train], targets[:n_train]), val, layout, val_layout, source,
                    metadata)


def _split_layouts(layout: Any, n_sample: int, n_time: int, n_starts: int, n_train: int
                   ) -> tuple[Any, Any]:
    """Training and validation layouts whose ``valid`` rows follow the time-major pairs.

    ``TrajectoryPairs`` tokenizes its ``(sample, time)`` frames in that order, so its layout has
    one valid row per frame (or one row for all when nothing is missing).
    """
    valid = layout.valid  # (n_sample * n_time, N) or (1, N)
    if valid.shape[0] == 1:
        return layout, layout
    frames = valid.reshape(n_sample, n_time, -1)  # (S, T, N)
    rows = frames[:, :n_starts].transpose(0, 1).reshape(n_starts * n_sample, -1)  # input frames
    return (dataclasses.replace(layout, valid=rows[:n_train]),
            dataclasses.replace(layout, valid=rows[n_train:]))
