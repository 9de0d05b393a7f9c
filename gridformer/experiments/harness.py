"""The experiment harness: one :class:`Experiment` per claim, run over seeds, summarised.

An experiment is a plain frozen dataclass (no registry magic): its name, a one-line
description, the claim it tests, ``quick`` and ``full`` settings, and three functions::

    run(seed, settings, device) -> SeedRun        # one seed: metrics (+ artefacts for figures)
    verdict(metrics, settings) -> Verdict         # metrics over seeds -> outcome + one line
    figure(result) -> matplotlib.figure.Figure    # drawn from an ExperimentResult

:func:`run_experiment` checks everything a run needs before any training (settings, seeds,
device, output folder), calls ``run`` once per seed and summarises every metric over the seeds
as ``{"mean", "sd", "values"}`` (curves element by element). :meth:`ExperimentResult.record`
is the JSON record ``{"command", "config", "metrics", "verdict", "seconds"}``.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MODES",
    "Experiment",
    "ExperimentResult",
    "SeedRun",
    "Verdict",
    "check_output_folder",
    "check_seeds",
    "environment",
    "resolve_settings",
    "run_experiment",
    "summarize",
]

MODES = ("quick", "full")
OUTCOMES = ("holds", "does not hold", "inconclusive")


@dataclass
class SeedRun:
    """What one seed of an experiment measured.

    Attributes
    ----------
    metrics
        Metric key -> a number or a list of numbers (a curve); the same keys for every seed.
    artefacts
        Anything the figure needs (example fields, attention maps, curves); not in the JSON.
    """

    metrics: dict[str, float | list[float]]
    artefacts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """Outcome of a claim (one of ``"holds"``, ``"does not hold"``, ``"inconclusive"``) and the
    one line that says it in numbers."""

    outcome: str
    text: str

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            msg = f"outcome={self.outcome!r} is not one of {list(OUTCOMES)}"
            raise ValueError(msg)


@dataclass(frozen=True)
class Experiment:
    """One claim turned into a runnable check; see the module docstring for the protocol.

    Attributes
    ----------
    name
        Command-line name (``gridformer experiment NAME``).
    description
        One line for ``gridformer experiment --list``.
    claim
        The claim tested, one sentence (goes into the report).
    quick, full
        Settings (plain JSON-able values) of ``--quick`` (<= 3 minutes on 2 CPU cores with the
        default seeds) and ``--full`` (the documented numbers).
    run
        ``run(seed, settings, device) -> SeedRun``.
    verdict
        ``verdict(metrics, settings) -> Verdict`` from the summarised metrics.
    figure
        ``figure(result) -> matplotlib.figure.Figure`` (None: no figure).
    """

    name: str
    description: str
    claim: str
    quick: Mapping[str, Any]
    full: Mapping[str, Any]
    run: Callable[[int, Mapping[str, Any], Any], SeedRun]
    verdict: Callable[[dict[str, dict[str, Any]], Mapping[str, Any]], Verdict]
    figure: Callable[[ExperimentResult], Any] | None = None

    def __post_init__(self) -> None:
        if set(self.quick) != set(self.full):
            msg = (f"experiment {self.name!r}: quick and full settings must have the same keys; "
                   f"differ in {sorted(set(self.quick) ^ set(self.full))}")
            raise ValueError(msg)


@dataclass
class ExperimentResult:
    """An experiment run over seeds: settings, per-seed runs, summaries and the verdict."""

    experiment: Experiment
    mode: str
    settings: dict[str, Any]
    seeds: list[int]
    device: str
    runs: list[SeedRun]
    metrics: dict[str, dict[str, Any]]
    verdict: Verdict
    seconds: float
    environment: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def command(self) -> str:
        """The command line that reproduces this run (a Python call when settings were
        overridden or the seeds are not ``0 .. K-1``)."""
        if self.overrides or self.seeds != list(range(len(self.seeds))):
            return (f"run_experiment(get_experiment({self.experiment.name!r}), "
                    f"mode={self.mode!r}, seeds={self.seeds}, device={self.device!r}, "
                    f"overrides={self.overrides!r})")
        return (f"gridformer experiment {self.experiment.name} --{self.mode} "
                f"--seeds {len(self.seeds)} --device {self.device}")

    def record(self) -> dict[str, Any]:
        """The JSON record ``{"command", "config", "metrics", "verdict", "seconds"}``."""
        return {
            "command": self.command,
            "config": {"experiment": self.experiment.name, "mode": self.mode,
                       "seeds": list(self.seeds), "device": self.device,
                       "settings": self.settings, "overrides": self.overrides,
                       "environment": self.environment},
            "metrics": self.metrics,
            "verdict": self.verdict.text,
            "seconds": round(self.seconds, 3),
        }


# ---------------------------------------------------------------- summaries
def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def summarize(values: Sequence[float | Sequence[float]]) -> dict[str, Any]:
    """``{"mean", "sd", "values"}`` of one metric over seeds.

    Numbers give numbers; equal-length lists (curves) give lists, element by element. ``sd`` is
    the sample standard deviation (``ddof=1``), None with a single seed; non-finite values
    become None.
    """
    arr = np.asarray(values, dtype=np.float64)  # (seeds,) or (seeds, points)
    mean = arr.mean(axis=0)
    sd = arr.std(axis=0, ddof=1) if arr.shape[0] > 1 else np.full(mean.shape, np.nan)
    if arr.ndim == 1:
        return {"mean": _finite_or_none(float(mean)), "sd": _finite_or_none(float(sd)),
                "values": [_finite_or_none(float(v)) for v in arr]}
    return {"mean": [_finite_or_none(float(v)) for v in mean],
            "sd": [_finite_or_none(float(v)) for v in sd],
            "values": [[_finite_or_none(float(v)) for v in row] for row in arr]}


def _summaries(name: str, runs: list[SeedRun]) -> dict[str, dict[str, Any]]:
    keys = list(runs[0].metrics)
    for run in runs[1:]:
        if list(run.metrics) != keys:
            msg = f"experiment {name!r} returned different metric keys for different seeds"
            raise RuntimeError(msg)
    return {key: summarize([run.metrics[key] for run in runs]) for key in keys}


# ---------------------------------------------------------------- checks before training
def resolve_settings(experiment: Experiment, mode: str,
                     overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The settings of ``mode`` with ``overrides`` applied (only known keys)."""
    if mode not in MODES:
        msg = f"mode={mode!r} is not one of {list(MODES)}"
        raise ValueError(msg)
    base = dict(experiment.quick if mode == "quick" else experiment.full)
    unknown = sorted(set(overrides or {}) - set(base))
    if unknown:
        msg = (f"unknown settings {unknown} for experiment {experiment.name!r}; valid: "
               f"{sorted(base)}")
        raise ValueError(msg)
    return {**base, **dict(overrides or {})}


def check_seeds(seeds: int | Sequence[int]) -> list[int]:
    """``K`` -> ``[0, ..., K-1]``; a sequence of ints is taken as the seed list."""
    if isinstance(seeds, bool):
        msg = f"seeds={seeds!r} must be a number of seeds >= 1 or a list of ints"
        raise TypeError(msg)
    if isinstance(seeds, int | np.integer):
        if seeds < 1:
            msg = f"seeds={seeds} must be >= 1 (the number of seeds to run)"
            raise ValueError(msg)
        return list(range(int(seeds)))
    chosen = list(seeds)
    if not chosen or any(isinstance(s, bool) or not isinstance(s, int | np.integer)
                         for s in chosen):
        msg = f"seeds={seeds!r} must be a number of seeds >= 1 or a non-empty list of ints"
        raise ValueError(msg)
    if len(set(chosen)) != len(chosen):
        msg = f"seeds={chosen} repeats a seed; each seed must be run once"
        raise ValueError(msg)
    return [int(s) for s in chosen]


def check_device(device: Any) -> Any:
    """``"auto"``/``"cpu"``/``"cuda[:N]"`` -> a ``torch.device`` that exists on this machine."""
    import torch

    from gridformer.training import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        msg = f"device={device!r} asks for CUDA, which is not available here; use 'cpu' or 'auto'"
        raise ValueError(msg)
    return resolved


def check_output_folder(path: str | os.PathLike[str], name: str = "out") -> Path:
    """Create ``path`` if needed and prove that a file can be written there (then removed)."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        msg = f"{name}={str(folder)!r} cannot be written: {error.strerror or error}"
        raise ValueError(msg) from None
    return folder


def environment(device: Any) -> dict[str, Any]:
    """Date and hardware of a run (what the documented numbers are quoted with)."""
    import torch

    env = {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "processor": _processor_name(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if getattr(device, "type", None) == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
    return env


def _processor_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------- running
def run_experiment(
    experiment: Experiment,
    *,
    mode: str = "quick",
    seeds: int | Sequence[int] = 3,
    device: str = "cpu",
    overrides: Mapping[str, Any] | None = None,
    progress: Callable[..., Any] | None = None,
) -> ExperimentResult:
    """Run ``experiment`` once per seed and summarise.

    Parameters
    ----------
    experiment
        An :class:`Experiment` (see :func:`gridformer.experiments.get_experiment`).
    mode
        ``"quick"`` or ``"full"`` settings.
    seeds
        Number of seeds ``K`` (seeds ``0 .. K-1``) or an explicit list.
    device
        ``"cpu"``, ``"cuda"``, ``"auto"``.
    overrides
        Settings to change (only the experiment's own keys), e.g. a tiny run in tests.
    progress
        Optional wrapper ``progress(iterable, total=, desc=)`` around the seed loop.

    Raises
    ------
    ValueError
        Unknown mode or settings, ``seeds`` < 1, a device that does not exist; all before any
        training.
    """
    started = time.perf_counter()
    settings = resolve_settings(experiment, mode, overrides)
    seed_list = check_seeds(seeds)
    torch_device = check_device(device)
    loop = seed_list if progress is None else progress(seed_list, total=len(seed_list),
                                                       desc=experiment.name)
    runs = [experiment.run(seed, settings, torch_device) for seed in loop]
    metrics = _summaries(experiment.name, runs)
    return ExperimentResult(
        experiment=experiment, mode=mode, settings=settings, seeds=seed_list,
        device=str(torch_device), runs=runs, metrics=metrics,
        verdict=experiment.verdict(metrics, settings), seconds=time.perf_counter() - started,
        environment=environment(torch_device), overrides=dict(overrides or {}),
    )
