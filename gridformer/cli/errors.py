"""Tell a user's mistake from a failed computation and from a bug, for the exit status.

=============  ====  ============================================================================
kind           exit  what the user sees
=============  ====  ============================================================================
``usage``      2     one line ``gridformer CMD: error: ...``. A :class:`~.common.UsageError`, a
                     ``ValueError``/``TypeError`` that gridformer's own code raised with a
                     ``raise`` statement (library functions raise these only to refuse invalid
                     input, naming the argument, the value and what is valid), or a
                     ``FileNotFoundError`` (a path that does not exist).
``runtime``    1     one line. A ``FloatingPointError`` (a solver or training run that became
                     non-finite) or another ``OSError`` (disk full, permission denied).
``internal``   1     the exception, where it was raised, "this is a bug" and a pointer to
                     ``--debug``. Anything else, including a ``ValueError`` raised inside numpy,
                     torch or xarray and the ``TypeError`` Python raises for a call with wrong
                     arguments: both mean gridformer passed something it should not have.
=============  ====  ============================================================================
"""

from __future__ import annotations

import dis
import sys
import traceback
from pathlib import Path
from types import TracebackType

from gridformer.cli.common import UsageError

__all__ = ["classify", "report"]

_PACKAGES = ("gridformer", "gridformer.solvers", "gridformer.datasets")
_RAISE_OPS = {"RAISE_VARARGS"}


def _innermost(tb: TracebackType | None) -> TracebackType | None:
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def _package_dirs() -> list[Path]:
    """Source folders of gridformer and its top-level subpackages (those already imported)."""
    dirs = []
    for name in _PACKAGES:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.append(Path(module.__file__).resolve().parent)
    return dirs


def raised_by_gridformer(error: BaseException) -> bool:
    """True when ``error`` comes from a ``raise`` statement in gridformer's own source code."""
    tb = _innermost(error.__traceback__)
    if tb is None:
        return False
    code = tb.tb_frame.f_code
    path = Path(code.co_filename).resolve()
    if not any(path.is_relative_to(folder) for folder in _package_dirs()):
        return False
    for instruction in dis.get_instructions(code):
        if instruction.offset == tb.tb_lasti:
            return instruction.opname in _RAISE_OPS
    return False


def classify(error: BaseException) -> str:
    """``"usage"``, ``"runtime"`` or ``"internal"`` (see the module docstring)."""
    if isinstance(error, UsageError | FileNotFoundError):
        return "usage"
    if isinstance(error, FloatingPointError | OSError):
        return "runtime"
    if isinstance(error, ValueError | TypeError) and raised_by_gridformer(error):
        return "usage"
    return "internal"


def report(error: BaseException, command: str) -> int:
    """Print ``error`` for ``gridformer COMMAND`` on standard error; return the exit status."""
    kind = classify(error)
    if kind != "internal":
        print(f"gridformer {command}: error: {error}", file=sys.stderr)
        return 2 if kind == "usage" else 1
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    location = f" (at {where.filename}:{where.lineno} in {where.name})" if where else ""
    print(f"gridformer {command}: internal error: {type(error).__name__}: {error}{location}\n"
          "This is a bug in gridformer, not a problem with your input. Please report it with "
          f"the command line; rerun with `gridformer --debug {command} ...` for the full "
          "traceback.", file=sys.stderr)
    return 1
