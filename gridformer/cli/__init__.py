"""The ``gridformer`` command line: one module per subcommand, wired together in :mod:`.main`."""

from gridformer.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
