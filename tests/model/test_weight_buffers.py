"""Kept attention-weight buffers: handed out again only when nothing can read them."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

import gridformer.model._weight_buffers as buffers
from gridformer.model._weight_buffers import release_weight_buffers, weight_buffer
from gridformer.model.table_attention import table_attention

SHAPE = (2, 3, 17, 17)  # a shape no other test asks for


@pytest.fixture(autouse=True)
def _empty_pool():
    release_weight_buffers()
    yield
    release_weight_buffers()


def test_a_buffer_comes_back_once_nothing_holds_it():
    first = weight_buffer(SHAPE, torch.float32)
    assert first.shape == SHAPE
    assert first.is_contiguous()
    assert first._base is None
    address = first.data_ptr()
    assert weight_buffer(SHAPE, torch.float32).data_ptr() != address  # first still held
    del first
    assert weight_buffer(SHAPE, torch.float32).data_ptr() == address
    assert weight_buffer(SHAPE, torch.float64).data_ptr() != address  # another dtype


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
@pytest.mark.parametrize("holder", ["view", "numpy", "slice", "storage", "typed storage"])
def test_views_arrays_and_storages_keep_a_buffer_in_use(holder):
    first = weight_buffer(SHAPE, torch.float32)
    address = first.data_ptr()
    kept = {"view": lambda t: t.view(-1), "numpy": lambda t: t.numpy(),
            "slice": lambda t: t[1:], "storage": lambda t: t.untyped_storage(),
            "typed storage": lambda t: t.storage()}[holder](first)
    del first
    assert weight_buffer(SHAPE, torch.float32).data_ptr() != address
    del kept
    gc.collect()
    assert weight_buffer(SHAPE, torch.float32).data_ptr() == address


def _attention_inputs(seed: int):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, 17, 4, generator=gen, dtype=torch.float64, requires_grad=True)
            for _ in range(3)]


def test_saved_weights_are_not_overwritten_by_a_later_forward():
    """A graph kept for a second backward still holds its weights: a forward in between
    must get other memory, and the second backward the same gradients as the first."""
    q, k, v = _attention_inputs(0)
    out = table_attention(q, k, v, None)
    first = torch.autograd.grad(out.square().sum(), (q, k, v), retain_graph=True)
    other = _attention_inputs(1)
    for _ in range(3):  # later steps, each done with its buffer
        table_attention(*other, None).sum().backward()
    again = torch.autograd.grad(out.square().sum(), (q, k, v))
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_returned_maps_are_not_overwritten_while_held():
    q, k, v = _attention_inputs(0)
    out, maps = table_attention(q, k, v, None, return_weights=True)
    out.sum().backward()
    snapshot = maps.detach().clone()
    other = _attention_inputs(1)
    table_attention(*other, None).sum().backward()
    torch.testing.assert_close(maps.detach(), snapshot, rtol=0, atol=0)


def test_steps_with_kept_buffers_equal_steps_without(monkeypatch):
    """Three optimizer steps of table attention: the same parameters with the pool and
    without it (``POOL_BYTES = 0``)."""
    def train() -> list[torch.Tensor]:
        params = _attention_inputs(2)
        opt = torch.optim.SGD(params, lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            out, maps = table_attention(*params, None, return_weights=True)
            (out.square().sum() + maps[:, :, :3].sum()).backward()
            opt.step()
        return [p.detach().clone() for p in params]

    pooled = train()
    monkeypatch.setattr(buffers, "POOL_BYTES", 0)
    plain = train()
    for a, b in zip(pooled, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_memory_shared_with_another_process_is_never_handed_out_again():
    first = weight_buffer(SHAPE, torch.float32)
    first.share_memory_()  # what sending it through torch.multiprocessing does
    del first  # the sender lets go; a receiving process would still map the memory
    again = weight_buffer(SHAPE, torch.float32)
    assert not again.untyped_storage().is_shared()  # fresh memory, not the shared buffer
    assert all(not k.storage.is_shared() for k in buffers._KEPT)


def test_room_is_made_by_dropping_any_free_buffer(monkeypatch):
    """Eviction of a buffer that is not the first kept one (buffers compare by identity)."""
    shapes = [SHAPE, (2, 3, 17, 16), (2, 3, 17, 15), (2, 3, 17, 20)]
    first, _, third, bigger = (int(np.prod(shape)) * 4 for shape in shapes)
    # room for the first three, then for the bigger one in place of the second
    monkeypatch.setattr(buffers, "POOL_BYTES", first + third + bigger)
    held = weight_buffer(shapes[0], torch.float32)
    dropped = weight_buffer(shapes[1], torch.float32)
    kept = weight_buffer(shapes[2], torch.float32)
    kept_address = kept.data_ptr()
    del dropped, kept  # both free, behind the held one
    new = weight_buffer(shapes[3], torch.float32)
    assert [k.numel * 4 for k in buffers._KEPT] == [first, third, bigger]
    assert weight_buffer(shapes[2], torch.float32).data_ptr() == kept_address
    assert new.data_ptr() != held.data_ptr()


def test_the_pool_stays_within_its_bytes(monkeypatch):
    nbytes = int(np.prod(SHAPE)) * 4
    monkeypatch.setattr(buffers, "POOL_BYTES", 2 * nbytes)
    a, b = weight_buffer(SHAPE, torch.float32), weight_buffer(SHAPE, torch.float32)
    c = weight_buffer(SHAPE, torch.float32)  # both kept buffers in use: a plain allocation
    assert len(buffers._KEPT) == 2
    del a, b, c
    small = weight_buffer((5,), torch.float32)  # room is made by dropping a free buffer
    assert len(buffers._KEPT) == 2
    del small
    assert release_weight_buffers() == nbytes + 20
    assert buffers._KEPT == []


def test_without_reference_counts_every_buffer_is_a_plain_allocation(monkeypatch):
    monkeypatch.setattr(buffers, "_USE_COUNT", None)
    first = weight_buffer(SHAPE, torch.float32)
    assert first.shape == SHAPE
    assert buffers._KEPT == []
