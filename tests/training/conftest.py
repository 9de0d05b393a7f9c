"""Run these tests single-threaded: tiny tensors are slower with intra-op threads, and the
machine's cores are shared. Restored after each test (no global state at import)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
