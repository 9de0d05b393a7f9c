"""dask.distributed glue for preprocessing: connect to a scheduler, read worker memory limits.

Preprocessing runs on whatever dask scheduler is active: a ``distributed.Client`` when one is
given (``--scheduler ADDRESS`` on the command line), dask's local threaded scheduler otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask

__all__ = ["connect", "on_scheduler", "worker_memory_limit"]


def connect(address: str, *, timeout: float = 10.0) -> Any:
    """A ``distributed.Client`` connected to the scheduler at ``address``.

    Raises
    ------
    ValueError
        ``address`` is not a scheduler address (``tcp://host:port``, ``tls://...``) or
        ``timeout`` is not positive.
    ConnectionError
        No scheduler answered at ``address`` within ``timeout`` seconds (names both).
    """
    from distributed import Client

    if not isinstance(address, str) or not address.strip():
        msg = f"scheduler address {address!r} must be a string such as 'tcp://127.0.0.1:8786'"
        raise ValueError(msg)
    if not timeout > 0:
        msg = f"timeout={timeout!r} must be a positive number of seconds"
        raise ValueError(msg)
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except ValueError as error:  # distributed's own refusal of a malformed address
        msg = f"scheduler address {address!r} is not valid ({error}); use e.g. 'tcp://host:8786'"
        raise ValueError(msg) from None
    except (OSError, TimeoutError) as error:
        msg = (
            f"no dask scheduler answered at {address!r} within {timeout:g} s ({error}); start "
            f"one (`dask scheduler`) or check the address, or leave out --scheduler to run "
            f"on this machine"
        )
        raise ConnectionError(msg) from None


def worker_memory_limit(client: Any) -> int | None:
    """The smallest worker memory limit of ``client``'s cluster in bytes (None: unlimited)."""
    if client is None:
        return None
    workers = client.scheduler_info().get("workers", {})
    limits = [int(w.get("memory_limit") or 0) for w in workers.values()]
    limits = [m for m in limits if m > 0]
    return min(limits) if limits else None


@contextlib.contextmanager
def on_scheduler(client: Any) -> Iterator[None]:
    """Run the dask computations in the block on ``client`` (None: the local scheduler)."""
    if client is None:
        yield
        return
    with dask.config.set(scheduler=client):
        yield
