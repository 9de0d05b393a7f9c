"""Fixtures shared by the whole suite.

Tests run with one torch intra-op thread: their tensors are tiny (threads only add overhead)
and the machines' cores are shared with other work. The previous thread count is restored after
each test, so nothing global is changed at import. ``gridformer train`` run in-process would
change glibc's malloc settings for the whole test process (``tune_cpu_malloc``): it is off in
every test (``GRIDFORMER_CPU_MALLOC=0``); its own tests run it in a subprocess.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _process_malloc_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDFORMER_CPU_MALLOC", "0")
