"""The model on CUDA under bf16 autocast, as training there runs it; skipped without a GPU.

Every attention kernel, with and without ``return_attention``, forward and backward: the full
maps of the chunked/flex kernels once failed here (float32 softmax rows into a bf16 buffer),
which no CPU test saw because the CPU's autocast keeps the softmax in bf16.
"""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import torch

from gridformer.model import TINY, GridFormer
from gridformer.tokenize import TokenLayout

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
]


@pytest.mark.parametrize("kernel", ["dense", "chunked", "flex"])
@pytest.mark.parametrize("maps", [False, True])
def test_autocast_training_step_on_cuda(kernel, maps):
    layout = TokenLayout.for_grid((8, 12), patch_size=2, periodic=True)
    # dim 32 / 2 heads: FlexAttention's CUDA kernel takes heads of 16 and more (TINY's 8 is
    # refused with a ValueError, tests/model/test_kernels.py)
    config = dataclasses.replace(TINY, in_features=3, out_features=3, position="relative",
                                 attention_kernel=kernel, dim=32)
    model = GridFormer(config).cuda()
    tokens = torch.randn(2, layout.n_tokens, 3, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(tokens, layout, return_attention=maps)
        loss = out.prediction.float().pow(2).mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert model.relative.table.grad is not None
    assert torch.isfinite(model.relative.table.grad).all()
    if maps:
        for weights in out.attention:  # (B, H, N, N) rows of a softmax
            torch.testing.assert_close(weights.float().sum(-1),
                                       torch.ones(weights.shape[:-1], device="cuda"),
                                       atol=1e-2, rtol=0)


@pytest.mark.parametrize("position", ["relative", "none"])
def test_maps_on_cuda_leave_the_training_gradient_unchanged(position, monkeypatch):
    """On CUDA ``return_attention`` takes the output from the fused kernel and the weights
    from a separate softmax beside it (once per layer): a loss on the prediction gets the
    gradients of the step without maps, and the maps are the explicit softmax's."""
    attention_module = importlib.import_module("gridformer.model.attention")
    real, calls = attention_module._fused_and_weights, []
    monkeypatch.setattr(attention_module, "_fused_and_weights",
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    layout = TokenLayout.for_grid((16, 16), patch_size=2, periodic=True)
    config = dataclasses.replace(TINY, in_features=3, out_features=3, position=position,
                                 attention_kernel="dense")
    model = GridFormer(config).cuda()
    tokens = torch.randn(2, layout.n_tokens, 3, device="cuda")
    grads = []
    for maps in (False, True):
        model.zero_grad()
        out = model(tokens, layout, return_attention=maps)
        out.prediction.pow(2).mean().backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()
                      if p.grad is not None})
        assert len(calls) == (config.depth if maps else 0)  # the fused-beside path, per layer
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-6, rtol=1e-5, msg=name)
    with torch.no_grad():
        explicit = model(tokens, layout, return_attention=True).attention  # the explicit path
    for fused_side, reference in zip(out.attention, explicit, strict=True):
        torch.testing.assert_close(fused_side.detach(), reference, atol=1e-5, rtol=0)
