"""``run_teleconnect`` and ``run_sweep``: NetCDF in, a trained model's teleconnection maps out.

::

    loaded   = load_variables(paths, inputs, target)        # checks, before any training
    prepared = prepare(loaded, config)                      # split, anomalies, tokens
    query    = resolve_query(prepared, config)              # class token, point or box
    model    = build_model(...); train_model(...)           # GridFormer, fit
    readout  = read_model(model, ..., "test")               # predictions, attention rows
    maps     = attention_maps(...), correlation_maps(...), eof_map(...)
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from gridformer.analysis import mean_attention_distance, pattern_correlation
from gridformer.teleconnect.config import TeleconnectConfig
from gridformer.teleconnect.data import Loaded, load_variables
from gridformer.teleconnect.maps import (
    attention_maps,
    correlation_maps,
    eof_map,
    map_metrics,
    skill,
    to_tokens,
)
from gridformer.teleconnect.model import build_model, read_model, train_model
from gridformer.teleconnect.prep import Prepared, prepare
from gridformer.teleconnect.query import Query, resolve_query

__all__ = ["Setup", "SweepResult", "TeleconnectResult", "run_sweep", "run_teleconnect", "setup"]

PathArg = str | os.PathLike | Sequence[str | os.PathLike]


@dataclass
class Setup:
    """Checked, prepared data and query, shared by every model of a sweep."""

    config: TeleconnectConfig
    loaded: Loaded
    prepared: Prepared
    query: Query
    correlation: xr.DataArray
    abs_correlation_tokens: xr.DataArray
    eof1: xr.DataArray | None
    notes: list[str] = field(default_factory=list)


@dataclass
class TeleconnectResult:
    """One trained model and its maps.

    Attributes
    ----------
    attention
        ``(lat, lon)`` token-grid teleconnection map (patch centres), coordinate ``spread``.
    attention_cells
        The same on the cell grid, each token's weight repeated over its cells.
    metrics
        JSON-ready numbers (see ``gridformer.teleconnect.maps`` and the README).
    """

    setup: Setup
    distance_bias: float | str
    attention: xr.DataArray
    attention_cells: xr.DataArray
    distance: xr.DataArray
    metrics: dict[str, Any]
    history: Any
    model: Any = field(repr=False, default=None)


@dataclass
class SweepResult:
    """One :class:`TeleconnectResult` per distance bias, and the ``"sweep"`` record."""

    setup: Setup
    runs: list[TeleconnectResult]

    def record(self) -> dict[str, Any]:
        """``{"distance_bias", "mean_attention_distance_km", "skill", ...}`` lists."""
        key = "correlation" if self.setup.prepared.kind == "index" else "query_correlation"
        extra = {}
        if self.setup.prepared.kind == "field":
            extra["query_attention_distance_km"] = [r.metrics["query_attention_distance_km"]
                                                    for r in self.runs]
        return {
            "distance_bias": [r.distance_bias for r in self.runs],
            "mean_attention_distance_km": [r.metrics["mean_attention_distance_km"]
                                           for r in self.runs],
            "uniform_attention_distance_km": self.runs[0].metrics[
                "uniform_attention_distance_km"],
            "skill": [r.metrics["test_skill"][key] for r in self.runs],
            "skill_name": f"test {key}",
            "pattern_correlation": [r.metrics["pattern_correlation"] for r in self.runs],
            **extra,
        }


def setup(paths: PathArg, config: TeleconnectConfig) -> Setup:
    """Everything before training: read, check, prepare, resolve the query, correlate."""
    loaded = load_variables(paths, config.inputs, config.target, align_time=config.align_time)
    prepared = prepare(loaded, config)
    query = resolve_query(prepared, config)
    correlation, _ = correlation_maps(prepared, query, config)
    strongest = abs(correlation).max("input") if "input" in correlation.dims else abs(
        correlation)
    abs_tokens = to_tokens(strongest.rename("abs_correlation"), prepared)
    eof1, note = eof_map(prepared, config)
    notes = [note] if note else []
    if loaded.aligned:
        notes.append(f"--align-time dropped {loaded.aligned} time steps not shared by all "
                     f"variables")
    return Setup(config, loaded, prepared, query, correlation, abs_tokens, eof1, notes)


def train_and_map(ready: Setup, distance_bias: float | str | None = None, *,
                  progress: bool | None = None) -> TeleconnectResult:
    """Train one model on ``ready`` and map its attention on the test part."""
    config, prepared, query = ready.config, ready.prepared, ready.query
    bias = config.distance_bias if distance_bias is None else distance_bias
    started = time.perf_counter()
    model = build_model(prepared, config, bias)
    history = train_model(model, prepared, query, config, progress=progress)
    train_seconds = time.perf_counter() - started
    test = read_model(model, prepared, query, "test")
    val = read_model(model, prepared, query, "val")
    test_steps = prepared.pairs["test"][0]
    tokens, cells = attention_maps(test.rows, prepared, query, test_steps, config)
    metrics: dict[str, Any] = {
        "target_kind": prepared.kind,
        "query": query.description,
        "distance_bias": bias,
        "mean_attention_distance_km": float(test.distance.mean()),
        "mean_attention_distance_km_per_layer_head": test.distance.values.tolist(),
        "uniform_attention_distance_km": float(test.distance["uniform"]),
        **map_metrics(tokens, ready.abs_correlation_tokens),
        "attention_to_class_token": float(tokens.attrs["weight_to_class_token"]),
        "validation_skill": skill(val.prediction, prepared, query, "val"),
        "test_skill": skill(test.prediction, prepared, query, "test"),
        "pairs": {part: len(p[0]) for part, p in prepared.pairs.items()},
        "tokens": int(prepared.layout.n_tokens),
        "seasonal_cycle_removed": prepared.seasonal,
        "final_train_loss": history.epoch_loss[-1] if history.epoch_loss else None,
        "final_val_loss": history.val_loss[-1] if history.val_loss else None,
        "train_seconds": round(train_seconds, 3),
    }
    if prepared.kind == "field":  # how far the query itself looks (its rows are what is trained)
        looked = mean_attention_distance(test.rows, prepared.part_layout(test_steps),
                                         query_index=query.positions)
        metrics["query_attention_distance_km"] = float(looked.mean())
    if ready.eof1 is not None:
        eof_tokens = abs(to_tokens(ready.eof1, prepared))
        metrics["pattern_correlation_eof1"] = pattern_correlation(
            tokens.drop_vars("spread"), eof_tokens)
        metrics["eof1_explained_variance_ratio"] = ready.eof1.attrs["explained_variance_ratio"]
    return TeleconnectResult(ready, bias, tokens, cells, test.distance, metrics, history, model)


def run_teleconnect(paths: PathArg, config: TeleconnectConfig, *,
                    progress: bool | None = None) -> TeleconnectResult:
    """Read ``paths``, train a GridFormer on ``config.target`` and map its attention.

    Parameters
    ----------
    paths
        NetCDF file(s) holding ``config.inputs`` and ``config.target``.
    config
        The run (:class:`~gridformer.teleconnect.TeleconnectConfig`).
    progress
        Training progress bar (default: on in terminals and Jupyter, off in CI).

    Returns
    -------
    TeleconnectResult
        The maps (test part), the metrics and the trained model.
    """
    return train_and_map(setup(paths, config), progress=progress)


def run_sweep(paths: PathArg, config: TeleconnectConfig, distance_biases: Sequence[float], *,
              progress: bool | None = None) -> SweepResult:
    """Train one model per distance bias on the same data (``config.distance_bias`` ignored).

    Returns
    -------
    SweepResult
        ``.runs`` in the order of ``distance_biases``; ``.record()`` is the ``"sweep"`` JSON.
    """
    biases = [float(b) for b in distance_biases]
    if len(biases) < 2 or not all(np.isfinite(biases)):
        msg = f"distance_biases={list(distance_biases)} must be at least 2 finite numbers"
        raise ValueError(msg)
    ready = setup(paths, config)
    return SweepResult(ready, [train_and_map(ready, b, progress=progress) for b in biases])
