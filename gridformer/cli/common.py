"""Pieces every subcommand shares: ``--json``/``--out`` options, result records, progress bars."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gridformer._io import write_json

__all__ = [
    "add_output_arguments",
    "parse_float_tuple",
    "parse_int_tuple",
    "progress",
    "to_jsonable",
    "write_result",
]

T = TypeVar("T")


def add_output_arguments(parser: argparse.ArgumentParser, *, out_help: str | None = None) -> None:
    """Add the ``--json PATH`` and ``--out DIR`` options that every computing command accepts."""
    parser.add_argument(
        "--json", metavar="PATH", type=Path, default=None,
        help='write {"command", "config", "metrics", "seconds"} as JSON to PATH',
    )
    parser.add_argument(
        "--out", metavar="DIR", type=Path, default=None,
        help=out_help or "folder for result files (NetCDF, PNG, a Markdown report)",
    )


def _parse_tuple(text: str, kind: type, name: str) -> tuple:
    try:
        values = tuple(kind(part) for part in text.split(","))
    except ValueError:
        msg = f"{name}={text!r} is not a comma-separated list of {kind.__name__}s, e.g. '64,64'"
        raise argparse.ArgumentTypeError(msg) from None
    return values


def parse_int_tuple(text: str) -> tuple[int, ...]:
    """Parse ``"64,64"`` into ``(64, 64)`` (argparse ``type=``)."""
    return _parse_tuple(text, int, "value")


def parse_float_tuple(text: str) -> tuple[float, ...]:
    """Parse ``"0.6,0.3"`` into ``(0.6, 0.3)`` (argparse ``type=``)."""
    return _parse_tuple(text, float, "value")


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and paths so that ``json.dumps`` accepts them."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    return obj


def write_result(
    path: Path | None,
    *,
    command: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    """Build the standard result record and, if ``path`` is given, write it atomically as JSON.

    ``started`` is a :func:`time.perf_counter` reading taken when the command began.
    """
    record = {
        "command": command,
        "config": to_jsonable(config),
        "metrics": to_jsonable(metrics),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if path is not None:
        write_json(record, path)
    return record


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "",
             enabled: bool | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar that shows only when stderr is a terminal."""
    from tqdm.auto import tqdm

    disable = not sys.stderr.isatty() if enabled is None else not enabled
    yield from tqdm(iterable, total=total, desc=desc, disable=disable, leave=False)
