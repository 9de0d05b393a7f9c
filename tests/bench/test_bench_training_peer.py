"""The same-work peer of the training benchmark gathers the bias GridFormer gathers."""

import torch

from benchmarks.bench_training import GRID, HEADS, _RelativeBiasEncoder
from gridformer import TokenLayout
from gridformer.model.position import relative_index


def test_relative_bias_peer_pairs_tokens_as_gridformer_does():
    layout = TokenLayout.for_grid(GRID, patch_size=1, periodic=True)
    ours = relative_index(torch.as_tensor(layout.offsets()), (1, 1), 8).reshape(-1)  # (N*N,)
    peer = _RelativeBiasEncoder(max_offset=8)
    theirs = peer.index.reshape(-1)
    # one table column per pair on both sides, and the same pairs share a column:
    # the column labels are a bijection between the two tables
    pairs = torch.unique(torch.stack([ours, theirs]), dim=1)  # (2, distinct pairs)
    assert pairs.shape[1] == torch.unique(ours).numel() == torch.unique(theirs).numel()
    assert torch.unique(theirs).numel() == 17 * 17  # every clipped offset occurs
    assert peer.table.shape == (HEADS, 17 * 17)


def test_relative_bias_peer_trains_its_table():
    torch.manual_seed(0)
    peer = _RelativeBiasEncoder(max_offset=8)
    tokens = torch.randn(1, GRID[0] * GRID[1], 16)
    peer(tokens).square().mean().backward()
    assert peer.table.grad is not None
    assert peer.table.grad.abs().sum() > 0
