"""Entry point of the ``gridformer`` console script.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser
whose ``func`` default receives the parsed arguments and returns an exit code. ``main`` runs it
and owns what every command shares:

- ``--json -`` writes the result record to standard output; everything else the command prints
  goes to standard error meanwhile, so ``gridformer ... --json - | jq`` works;
- exit status 0 success, 2 a usage error (one line), 1 a failed run or a bug
  (:mod:`gridformer.cli.errors` tells them apart); ``--debug`` shows the full traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Sequence

from gridformer import __version__
from gridformer.cli.common import Parser, StdoutTarget

__all__ = ["build_parser", "main"]

# Subcommand modules, in the order ``--help`` lists them.
_COMMAND_MODULES = (
    "gridformer.cli.demo",
    "gridformer.cli.experiment",
    "gridformer.cli.solve",
    "gridformer.cli.stencil",
    "gridformer.cli.preprocess",
    "gridformer.cli.teleconnect",
    "gridformer.cli.train",
)

_DEBUG_HELP = "on an error, raise it with the full traceback instead of a one-line message"


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = Parser(
        prog="gridformer",
        description="Patch-token transformers for gridded physical data, checked against physics.",
        epilog="exit status: 0 success, 2 invalid input (one-line message), 1 a failed run or an "
               "internal error (a bug: rerun with --debug for the traceback)",
    )
    parser.add_argument("--version", action="version", version=f"gridformer {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for sub in subparsers.choices.values():  # also accepted after the command name
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help=_DEBUG_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    from gridformer.cli.errors import report

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    # --json -: the record owns standard output; the command's own lines go to stderr
    to_stdout = isinstance(getattr(args, "json", None), StdoutTarget)
    redirect = contextlib.redirect_stdout(sys.stderr) if to_stdout else contextlib.nullcontext()
    try:
        with redirect:
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"gridformer {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        return report(error, args.command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
