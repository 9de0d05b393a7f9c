"""Runs on dask workers in test_store_memory: light imports only, so the worker stays small."""

import builtins
import threading
import time


def start_peak() -> int:
    """Sample this process's memory every 5 ms in a thread; return it now (bytes)."""
    import psutil

    proc = psutil.Process()
    state = {"peak": proc.memory_info().rss, "run": True}

    def loop() -> None:
        while state["run"]:
            state["peak"] = max(state["peak"], proc.memory_info().rss)
            time.sleep(0.005)

    threading.Thread(target=loop, daemon=True).start()
    builtins._gridformer_test_peak = state
    return state["peak"]


def stop_peak() -> int:
    """Stop sampling; the highest memory seen since :func:`start_peak` (bytes)."""
    state = builtins._gridformer_test_peak
    state["run"] = False
    return state["peak"]
