"""Entry point of the ``gridformer`` console script.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds a parser
whose ``func`` default receives the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gridformer import __version__

__all__ = ["build_parser", "main"]

# Subcommand modules, in the order ``--help`` lists them.
_COMMAND_MODULES = (
    "gridformer.cli.demo",
    "gridformer.cli.experiment",
    "gridformer.cli.solve",
    "gridformer.cli.stencil",
    "gridformer.cli.train",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="gridformer",
        description="Patch-token transformers for gridded physical data, checked against physics.",
    )
    parser.add_argument("--version", action="version", version=f"gridformer {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"gridformer {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
