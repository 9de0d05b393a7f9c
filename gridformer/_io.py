"""Atomic file writing: a result file is either complete or absent, never half-written."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_json"]


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` with ``os.replace``.

    The temporary file lives in the same folder, so the final rename is atomic on POSIX. If the
    body raises, the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path
        Final destination. Its parent folder is created if missing.
    suffix
        Suffix of the temporary file (defaults to the suffix of ``path``; some writers, such as
        netCDF4, choose a format from it).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=suffix if suffix is not None else final.suffix,
        dir=final.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates files readable by the owner only; give the result the usual
        # permissions (those of the existing file, else 0o666 less the umask)
        os.chmod(tmp, _final_mode(final))
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _final_mode(final: Path) -> int:
    """Permission bits for ``final``: kept if it exists, else ``0o666`` less the process umask."""
    try:
        return final.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_json(
    obj: Any, path: str | os.PathLike[str], *, default: Callable[[Any], Any] | None = None
) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=default) + "\n")
    return Path(path)
