"""Pieces every subcommand shares: the parser class, ``--json``/``--out`` options, result
records, user-input errors and progress bars.

A subcommand gets all of this by building its options with :func:`add_output_arguments`, its
record with :func:`write_result` and raising :class:`UsageError` for bad options; ``main``
then handles ``--json -`` (the record on standard output, every other line on standard error)
and tells user mistakes (exit 2) from bugs (exit 1). See ``docs/architecture.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from gridformer._io import write_json
from gridformer._progress import progress

__all__ = [
    "STDOUT",
    "Parser",
    "StdoutTarget",
    "UsageError",
    "add_output_arguments",
    "json_target",
    "parse_float_tuple",
    "parse_int_tuple",
    "progress",
    "to_jsonable",
    "write_result",
]

STDOUT = "-"

# A word that starts like a negative number ("-3", "-.5", "-0.3,0.6", "-1e-3", "-0.3,x") is an
# option value, never an option name: gridformer has no options named like numbers, and a
# malformed value then gets its type's message instead of "expected one argument".
_NEGATIVE_NUMBER_START = re.compile(r"^-\.?\d")


class UsageError(ValueError):
    """A command-line value that the command checked and refused (exit status 2, one line)."""


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that reads ``-0.3,0.6`` and ``-1e-3`` as values, not options.

    argparse treats any word starting with ``-`` as an option unless it looks like a negative
    number, and its test accepts only ``-3`` and ``-0.3``; so ``--velocity -0.3,0.6`` failed
    with "expected one argument". Here every word that starts with ``-`` and a digit (or
    ``-.`` and a digit) is a value. Subparsers made with ``add_subparsers`` inherit the class.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER_START


@dataclass(frozen=True)
class StdoutTarget:
    """``--json -``: the record goes to ``stream`` (standard output when the options were parsed).

    While a command writes its record here, ``main`` sends the command's other output to
    standard error, so standard output carries nothing but the JSON.
    """

    stream: TextIO

    def __str__(self) -> str:
        return STDOUT


def json_target(text: str) -> Path | StdoutTarget:
    """argparse ``type=`` of ``--json``: ``-`` is standard output, anything else a file path."""
    if text == STDOUT:
        return StdoutTarget(sys.stdout)
    if not text:
        msg = "--json needs a file path or '-' for standard output, not an empty string"
        raise argparse.ArgumentTypeError(msg)
    return Path(text)


def add_output_arguments(parser: argparse.ArgumentParser, *, out_help: str | None = None) -> None:
    """Add the ``--json PATH`` and ``--out DIR`` options that every computing command accepts."""
    parser.add_argument(
        "--json", metavar="PATH", type=json_target, default=None,
        help='write {"command", "config", "metrics", "seconds"} as JSON to PATH '
             "('-' = standard output; the other output then goes to standard error)",
    )
    parser.add_argument(
        "--out", metavar="DIR", type=Path, default=None,
        help=out_help or "folder for result files (NetCDF, PNG, a Markdown report)",
    )


def _parse_tuple(text: str, kind: type, example: str) -> tuple:
    try:
        values = tuple(kind(part) for part in text.split(","))
    except ValueError:
        msg = (f"{text!r} is not a comma-separated list of {kind.__name__}s "
               f"(e.g. {example!r})")
        raise argparse.ArgumentTypeError(msg) from None
    return values


def parse_int_tuple(text: str) -> tuple[int, ...]:
    """Parse ``"64,64"`` into ``(64, 64)`` (argparse ``type=``)."""
    return _parse_tuple(text, int, "64,64")


def parse_float_tuple(text: str) -> tuple[float, ...]:
    """Parse ``"0.6,-0.3"`` into ``(0.6, -0.3)`` (argparse ``type=``)."""
    return _parse_tuple(text, float, "0.6,-0.3")


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
    if isinstance(obj, Path | StdoutTarget):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    return obj


def write_result(
    path: Path | StdoutTarget | None,
    *,
    command: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    """Build the standard result record and write it as JSON to ``path`` when one is given.

    ``path`` is a file (written atomically) or a :class:`StdoutTarget` (``--json -``).
    ``started`` is a :func:`time.perf_counter` reading taken when the command began.
    """
    record = {
        "command": command,
        "config": to_jsonable(config),
        "metrics": to_jsonable(metrics),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if isinstance(path, StdoutTarget):
        path.stream.write(json.dumps(record, indent=2) + "\n")
        path.stream.flush()
    elif path is not None:
        write_json(record, path)
    return record
