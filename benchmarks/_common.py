"""What every benchmark module shares: interleaved timing, result rows, the machine's state.

A benchmark module's ``run(*, quick=False)`` returns::

    {"name": str, "settings": {...},
     "results": [{"case", "gridformer", "peer", "peer_value", "ratio", "units", "target", "met",
                  "higher_is_better", "gridformer_stats", "peer_stats", ...}]}

``gridformer`` and ``peer_value`` are the best (min-time) values of several repeats, timed
alternately in the same process so that both see the same machine load; the medians are kept
in the ``*_stats`` entries. ``ratio`` is ``gridformer / peer_value``; ``target`` (e.g.
``">= 2"``) reads against it.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["compare", "environment", "load_average", "row", "skipped_row", "time_calls"]

REPO = Path(__file__).resolve().parent.parent


def time_calls(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` (after one untimed warm-up call)."""
    fn()
    return [_one(fn) for _ in range(repeats)]


CLOCK: Callable[[], float] = time.perf_counter
"""The timer of :func:`time_calls` and :func:`compare`: wall time by default;
``python -m benchmarks --cpu-time`` sets :func:`time.process_time` (the process's CPU seconds,
all threads summed: meaningful with one thread, on a machine shared with other jobs)."""


def _one(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = CLOCK()
    fn()
    return CLOCK() - start


def compare(ours: Callable[[], Any], peer: Callable[[], Any], repeats: int,
            warmup: int = 1) -> tuple[list[float], list[float]]:
    """Seconds per call of ``ours`` and ``peer``, each warmed up ``warmup`` times, then timed
    alternately."""
    for _ in range(warmup):
        ours()
        peer()
    mine, theirs = [], []
    for _ in range(repeats):
        mine.append(_one(ours))
        theirs.append(_one(peer))
    return mine, theirs


def stats(values: list[float]) -> dict[str, Any]:
    """min / median / all of a list of timings (seconds) or rates."""
    return {"min": min(values), "median": statistics.median(values), "values": values}


def row(case: str, *, ours: list[float], peer: str, theirs: list[float], work: float,
        units: str, target: float | None = None, higher_is_better: bool = True,
        **extra: Any) -> dict[str, Any]:
    """One result row from per-call seconds; ``work / seconds`` is the rate in ``units``.

    With ``work=0`` the values stay seconds (``units`` should then say so, e.g. ``"ms"`` with
    the seconds scaled by the caller). The best value is the fastest call.
    """
    def value(seconds: list[float]) -> list[float]:
        return [work / s for s in seconds] if work else list(seconds)

    mine, other = value(ours), value(theirs)
    best = max if higher_is_better and work else min
    gf, pv = best(mine), best(other)
    ratio = gf / pv
    met = None
    if target is not None:
        met = ratio >= target if higher_is_better else ratio <= target
    return {
        "case": case, "gridformer": gf, "peer": peer, "peer_value": pv, "ratio": ratio,
        "units": units,
        "target": None if target is None else f"{'>=' if higher_is_better else '<='} {target:g}",
        "met": met, "higher_is_better": higher_is_better,
        "gridformer_stats": stats(mine), "peer_stats": stats(other), **extra,
    }


def skipped_row(case: str, peer: str, why: str, **extra: Any) -> dict[str, Any]:
    """A row whose peer could not run (e.g. the package is missing)."""
    return {"case": case, "gridformer": None, "peer": peer, "peer_value": None, "ratio": None,
            "units": None, "target": None, "met": None, "skipped": why, **extra}


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages (``uptime``), or [] where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - Windows
        return []


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment() -> dict[str, Any]:
    """Date, hardware, versions, thread settings and load: what the numbers depend on."""
    import numba
    import numpy as np
    import torch

    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
        "torch": torch.__version__, "git_commit": _git_commit(),
        "threads": {
            "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
            "numba_threads": numba.get_num_threads(),
            "numba_threading_layer": numba.config.THREADING_LAYER,
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
        },
        "load_average_1_5_15": load_average(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda_version"] = torch.version.cuda
    return info


def write_json(record: dict[str, Any], path: str | None) -> None:
    """Print ``record`` as JSON (``path`` "-") or write it atomically to ``path`` (None: skip)."""
    if path is None:
        return
    text = json.dumps(record, indent=2)
    if path == "-":
        print(text)
        return
    from gridformer._io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
