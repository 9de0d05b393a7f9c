"""The same-work peer of the training benchmark gathers the bias GridFormer gathers."""

import torch

from benchmarks.bench_training import GRID, HEADS, _RelativeBiasEncoder
from gridformer import GridFormer, GridFormerConfig, TokenLayout


def test_relative_bias_peer_gathers_the_bias_gridformer_builds():
    """Given GridFormer's table, the peer's mask is GridFormer's dense bias, pair for pair."""
    torch.manual_seed(0)
    layout = TokenLayout.for_grid(GRID, patch_size=1, periodic=True)
    model = GridFormer(GridFormerConfig(in_features=16, out_features=16, dim=32, depth=1,
                                        heads=HEADS, position="relative"))
    with torch.no_grad():
        model.relative.table.normal_()
    peer = _RelativeBiasEncoder(max_offset=model.config.max_relative_offset)
    with torch.no_grad():
        peer.table.copy_(model.relative.table)
    with torch.no_grad():
        ours = model._position_bias(model._geometry(layout, torch.device("cpu")))[0]
    torch.testing.assert_close(peer.table[:, peer.index], ours)  # (H, N, N)
    assert torch.unique(peer.index).numel() == 17 * 17  # every clipped offset occurs


def test_relative_bias_peer_trains_its_table():
    torch.manual_seed(0)
    peer = _RelativeBiasEncoder(max_offset=8)
    tokens = torch.randn(1, GRID[0] * GRID[1], 16)
    peer(tokens).square().mean().backward()
    assert peer.table.grad is not None
    assert peer.table.grad.abs().sum() > 0
