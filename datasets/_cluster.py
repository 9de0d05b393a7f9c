"""dask.distributed glue for preprocessing: connect to a scheduler, read worker memory limits.

Preprocessing runs on whatever dask scheduler is active: a ``distributed.Client`` when one is
given (``--scheduler ADDRESS`` on the command line), dask's local threaded scheduler otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dask
import dask.system

__all__ = ["connect", "on_scheduler", "worker_memory_available"]


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


def _memory_after_imports() -> int:
    """On a worker: load what preprocessing runs there, then report the process memory."""
    import importlib

    import psutil

    for module in ("gridformer.datasets.preprocess", "zarr"):
        importlib.import_module(module)
    return int(psutil.Process().memory_info().rss)


def worker_memory_available(client: Any) -> tuple[int, int] | None:
    """``(available, limit)`` bytes of the tightest worker of ``client``'s cluster.

    ``available`` is the part of the worker memory limit that tasks can use: dask pauses a
    worker at ``distributed.worker.memory.pause`` (default 80 %) of its limit, and the worker
    process already holds its libraries (measured on each worker after loading them). None:
    no client, or workers without a limit.
    """
    if client is None:
        return None
    pause = dask.config.get("distributed.worker.memory.pause", 0.8) or 0.95
    used = client.run(_memory_after_imports)  # {address: bytes}
    best = None
    for address, info in client.scheduler_info().get("workers", {}).items():
        limit = int(info.get("memory_limit") or 0)
        if limit <= 0:
            continue
        available = int(float(pause) * limit) - int(used.get(address, 0))
        if best is None or available < best[0]:
            best = (available, limit)
    return best


@contextlib.contextmanager
def on_scheduler(client: Any) -> Iterator[None]:
    """Run the dask computations in the block on ``client`` (None: the local scheduler).

    On the local scheduler the block gets its own thread pool, and leaving the block waits for
    its running tasks: dask raises a task's error at once while the other threads go on, so a
    caller that removes a half-written output after an error would race with them.
    """
    if client is None:
        # as many threads as dask's own default pool (CPU_COUNT honours cgroup/affinity limits)
        pool = ThreadPoolExecutor(dask.system.CPU_COUNT, thread_name_prefix="gridformer-dask")
        try:
            with dask.config.set(pool=pool):
                yield
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    with dask.config.set(scheduler=client):
        yield
