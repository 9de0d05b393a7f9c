"""DistributedContext keeps the tensors it sends to a collective until the backend lets go.

A gloo worker thread can still hold an all-reduced tensor after ``all_reduce`` returns; if Python
dropped the tensor first, the thread's last reference must take the GIL, which aborts the
process when it happens during interpreter shutdown (issue 12's teardown abort).
"""

import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch

from gridformer.training import distributed
from gridformer.training.distributed import DistributedContext, _holders, _SentTensor


def test_holders_counts_cpp_references():
    """The private torch method the wait relies on is there and counts C++ references."""
    t = torch.ones(3)
    assert _holders(t) == 1
    view = t.view(3)  # a view keeps its base: one more C++ reference
    assert _holders(t) == 2
    del view
    assert _holders(t) == 1


def test_hold_takes_a_reference_of_its_own():
    t = torch.ones(2)
    sent = _SentTensor.hold(t)
    assert sent.anchor is not None
    assert sent.idle == 2 == _holders(t)  # the Python object's reference and the anchor's
    assert sent.released()
    backend = t.view(2)  # stands in for the backend thread's reference
    assert not sent.released()
    del backend
    assert sent.released()


def test_close_waits_until_the_backend_lets_go():
    ctx = DistributedContext(world=2, rank=0)
    t = torch.ones(1)
    ctx._sent.append(_SentTensor.hold(t))
    backend = [t.view(1)]  # stands in for the backend thread's reference
    timer = threading.Timer(0.2, backend.clear)
    started = time.monotonic()
    timer.start()
    ctx.close(timeout=10.0)
    waited = time.monotonic() - started
    timer.join()
    assert waited >= 0.2  # close did not return while the tensor was still held
    assert waited < 5.0
    assert ctx._sent == []
    assert _holders(t) == 1  # our own reference went with it


def test_close_gives_up_with_a_warning_and_keeps_the_tensor():
    ctx = DistributedContext(world=2, rank=0)
    t = torch.ones(1)
    ctx._sent.append(_SentTensor.hold(t))
    stuck = t.view(1)  # the backend's reference, never given back here
    with pytest.warns(RuntimeWarning, match="still held by the process-group backend 0.05 s"):
        ctx.close(timeout=0.05)
    assert ctx._sent == []
    del stuck
    gc.collect()
    assert _holders(t) == 2  # the anchor lives on: the backend's release was not the last


def test_a_raising_all_reduce_still_leaves_the_tensor_held(monkeypatch):
    """A collective that fails mid-way may leave the tensor with the backend: close waits."""
    backend = []

    def failing_all_reduce(tensor, op=None):
        backend.append(tensor.view_as(tensor))
        raise RuntimeError("peer gone")

    monkeypatch.setattr(distributed.dist, "all_reduce", failing_all_reduce)
    ctx = DistributedContext(world=2, rank=0)
    with pytest.raises(RuntimeError, match="peer gone"):
        ctx.mean(1.0, torch.device("cpu"))
    assert len(ctx._sent) == 1
    assert not ctx._sent[0].released()
    timer = threading.Timer(0.1, backend.clear)
    timer.start()
    ctx.close(timeout=10.0)
    timer.join()
    assert ctx._sent == []


def test_without_a_reference_count_tensors_are_kept_until_close(monkeypatch):
    monkeypatch.setattr(distributed, "_holders", lambda tensor: None)
    monkeypatch.setattr(distributed.dist, "all_reduce", lambda tensor, op=None: None)
    ctx = DistributedContext(world=2, rank=0)
    with pytest.warns(RuntimeWarning, match="cannot tell when the process-group backend"):
        ctx.mean(1.0, torch.device("cpu"))
    with pytest.warns(RuntimeWarning, match="cannot tell when the process-group backend"):
        ctx.all_true(True, torch.device("cpu"))
    assert len(ctx._sent) == 2  # not pruned: nothing says the backend let go
    started = time.monotonic()
    ctx.close(timeout=10.0)  # and not waited for: nothing would say so
    assert time.monotonic() - started < 1.0
    assert ctx._sent == []


def test_released_tensors_are_not_waited_for():
    ctx = DistributedContext(world=2, rank=0)
    ctx._sent.append(_SentTensor.hold(torch.ones(1)))
    started = time.monotonic()
    ctx.close(timeout=10.0)
    assert time.monotonic() - started < 1.0
    assert ctx._sent == []


_SINGLE_RANK = textwrap.dedent("""
    import json, sys
    import torch
    import torch.distributed as dist
    from gridformer.training import distributed
    from gridformer.training.distributed import DistributedContext, _holders, _SentTensor

    # every time the context finds a sent tensor released: its count then, and the idle count
    seen = []
    released = distributed._SentTensor.released
    def watched(self):
        done = released(self)
        if done:
            seen.append((_holders(self.tensor), self.idle))
        return done
    distributed._SentTensor.released = watched

    dist.init_process_group("gloo", init_method="file://" + sys.argv[1], world_size=1, rank=0)
    group = dist.group.WORLD  # held, as DistributedDataParallel holds it after the run
    ctx = DistributedContext(1, 0, owns_group=True)
    ctx.world = 2  # a one-rank group, driven as if distributed: mean() sends every value
    values = [ctx.mean(float(i), torch.device("cpu")) for i in range(200)]
    flags = [ctx.all_true(i % 3 > 0, torch.device("cpu")) for i in range(20)]
    sent = [s.tensor for s in ctx._sent]
    ctx.close()
    print(json.dumps({"values": values, "flags": flags, "left": len(ctx._sent), "seen": seen,
                      "after": [_holders(t) for t in sent]}))
""")


def test_a_real_gloo_group_never_gets_the_last_reference(tmp_path):
    """220 all-reduces on a one-rank gloo group.

    Each sent tensor is found released only with the context's own reference still there
    (count 2: the Python object's and the anchor's), so gloo's worker thread never dropped the
    reference that hands the tensor back to Python; after close() only Python holds them.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _SINGLE_RANK, str(tmp_path / "store")],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["values"] == [i / 2 for i in range(200)]  # sum over one rank / world 2
    assert result["flags"] == [i % 3 > 0 for i in range(20)]
    assert result["left"] == 0
    assert len(result["seen"]) == 220  # each found released once, then dropped
    assert all(count == idle == 2 for count, idle in result["seen"])
    assert result["after"]
    assert all(count == 1 for count in result["after"])
