"""Progress bars for long work: on in terminals and Jupyter, off in CI logs and pipes.

Every loop in gridformer that can take more than a few seconds (solver time steps, optimiser
steps, rollouts) reports through :func:`progress` (wrapping an iterable) or
:func:`progress_bar` (a bar updated by hand, e.g. with the current loss). Whether a bar shows
is decided in one place, :func:`progress_enabled`:

- off when the ``CI`` environment variable is set (to anything but ``""``, ``"0"``,
  ``"false"`` or ``"no"``): bars would fill CI logs with carriage-return noise;
- on inside a Jupyter kernel (the kernel's stderr is not a terminal, but it renders bars);
- otherwise on only when standard error is a terminal (not when piped or redirected).

In Jupyter the bar is a widget when ``ipywidgets`` is installed and plain text otherwise, so a
kernel without ``ipywidgets`` never fails on ``tqdm.notebook``'s missing-``IProgress`` error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["in_jupyter_kernel", "progress", "progress_bar", "progress_enabled"]

T = TypeVar("T")

_FALSE_WORDS = {"", "0", "false", "no"}


def in_jupyter_kernel() -> bool:
    """True when running inside an IPython kernel (Jupyter notebook/lab, VS Code notebooks).

    A terminal IPython shell is not a kernel: its stderr is a terminal and is handled as one.
    """
    ipython = sys.modules.get("IPython")  # never import IPython just to ask
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_enabled() -> bool:
    """Whether progress bars show by default here (see the module docstring for the rules)."""
    if os.environ.get("CI", "").strip().lower() not in _FALSE_WORDS:
        return False
    if in_jupyter_kernel():
        return True
    stderr = sys.stderr
    try:
        return stderr is not None and stderr.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _tqdm_class() -> type:
    """``tqdm.notebook.tqdm`` in a kernel that has ipywidgets, else the text ``tqdm``."""
    if in_jupyter_kernel():
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            pass
        else:
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm
    from tqdm import tqdm

    return tqdm


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "",
             enabled: bool | None = None) -> Iterator[T]:
    """Yield from ``iterable`` while showing a progress bar on standard error.

    Parameters
    ----------
    iterable
        The items to loop over.
    total
        Number of items, for iterables without ``len`` (shows a percentage and an ETA).
    desc
        Label in front of the bar, e.g. ``"solve heat"``.
    enabled
        ``True``/``False`` forces the bar on/off; ``None`` (default) asks
        :func:`progress_enabled`.
    """
    if not (progress_enabled() if enabled is None else enabled):
        yield from iterable
        return
    yield from _tqdm_class()(iterable, total=total, desc=desc, leave=False, file=sys.stderr)


class _NoBar:
    """Stands in for a disabled bar: accepts the tqdm calls a loop makes and does nothing."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(*, total: int | None, initial: int = 0, desc: str = "",
                 enabled: bool | None = None) -> Any:
    """A bar advanced by hand (``bar.update(n)``, ``bar.set_postfix(loss=...)``, ``bar.close()``).

    Use it as a context manager. Arguments as in :func:`progress`; ``initial`` is the count
    already done (e.g. when training resumes from a checkpoint). A disabled bar is a no-op
    object with the same methods.
    """
    if not (progress_enabled() if enabled is None else enabled):
        return _NoBar()
    return _tqdm_class()(total=total, initial=initial, desc=desc, leave=False, file=sys.stderr)
