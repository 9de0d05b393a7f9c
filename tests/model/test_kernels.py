"""Attention kernels: chunked and FlexAttention equal the dense (H, N', N') reference.

Every position mode, masks (layout and per call), periodic longitude, a class token and
space-time tokens; fused outputs, full maps and query rows; gradients in training, with and
without per-block activation checkpointing. Blocks are kept tiny (``attention_chunk=5``) so
that every test crosses many block boundaries.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

import gridformer.model.blockwise as blockwise
import gridformer.model.flex as flex_module
from gridformer.model import TINY, GridFormer
from gridformer.model.bias_tables import token_grid
from gridformer.tokenize import PatchTokenizer, TokenLayout

B, D = 2, 3


def _space_time() -> TokenLayout:
    da = xr.DataArray(np.zeros((B, 3, 4, 6)), dims=("sample", "time", "y", "x"))
    return PatchTokenizer(patch_size=2, time_patch=1).encode(da)[1]


LAYOUTS = {
    "lat-lon": lambda: TokenLayout.for_grid((6, 8), patch_size=2, dims=("lat", "lon")),
    "padded-y-x": lambda: TokenLayout.for_grid((7, 10), patch_size=(2, 3), periodic=False),
    "periodic-y-x": lambda: TokenLayout.for_grid((6, 8), patch_size=2, periodic=True),
    "space-time": _space_time,
}

CASES = [  # (layout, config changes)
    ("lat-lon", {"position": "geodesic"}),
    ("lat-lon", {"position": "relative"}),
    ("lat-lon", {"position": "relative", "distance_bias": "learned"}),
    ("lat-lon", {"position": "none"}),
    ("lat-lon", {"position": "absolute"}),
    ("padded-y-x", {"position": "sincos", "distance_bias": 0.7, "distance_scale_km": 2.0}),
    ("padded-y-x", {"position": "relative", "distance_bias": "learned",
                    "distance_scale_km": 2.0}),  # grid units: a scale the grid can feel
    ("periodic-y-x", {"position": "relative", "relative_content": True,
                      "relative_key_content": True}),
    ("periodic-y-x", {"position": "relative", "content_attention": False}),
    ("lat-lon", {"position": "geodesic", "head": "index", "pool": "cls"}),
    ("periodic-y-x", {"position": "relative", "head": "class", "pool": "cls",
                      "relative_content": True}),
    ("space-time", {"position": "relative"}),
    ("space-time", {"position": "geodesic"}),
]


def _model(layout: TokenLayout, kernel: str, **change) -> GridFormer:
    cfg = dataclasses.replace(TINY, in_features=D, heads=2, attention_kernel=kernel,
                              attention_chunk=5, ndim=len(token_grid(layout)),
                              reference_grid=tuple(layout.patch_grid_shape), **change)
    torch.manual_seed(0)
    model = GridFormer(cfg).eval()
    with torch.no_grad():  # trained-looking position terms (their zero init is trivial)
        for name, p in model.named_parameters():
            if not p.any():
                p.normal_(0.0, 2.0 if name.endswith("strength") else 0.5)
    return model


def _mask(layout: TokenLayout) -> torch.Tensor:
    mask = torch.ones(B, layout.n_tokens, dtype=torch.bool)
    mask[0, [1, 5]] = False
    mask[1, layout.n_tokens - 1] = False
    return mask


@pytest.fixture
def eager_flex(monkeypatch):
    """FlexAttention without compiling (its reference mode; compiling takes many seconds)."""
    from torch.nn.attention.flex_attention import flex_attention

    monkeypatch.setattr(flex_module, "_compiled", lambda: flex_attention)


@pytest.mark.filterwarnings("ignore:.*flex_attention called without torch.compile")
@pytest.mark.parametrize(("name", "change"), CASES,
                         ids=[f"{n}-{'-'.join(map(str, c.values()))}" for n, c in CASES])
@pytest.mark.parametrize("masked", [False, True], ids=["", "masked"])
def test_kernels_equal_the_dense_reference(name, change, masked, eager_flex):
    layout = LAYOUTS[name]()
    mask = _mask(layout) if masked else None
    tokens = torch.randn(B, layout.n_tokens, D, generator=torch.Generator().manual_seed(1))
    queries = [0, layout.n_tokens - 1, 3]
    with torch.no_grad():
        dense = _model(layout, "dense", **change)
        reference = dense(tokens, layout, mask=mask, return_attention=True)
        fused = dense(tokens, layout, mask=mask).prediction
    torch.testing.assert_close(fused, reference.prediction, atol=1e-5, rtol=0)
    flex = masked and not change.get("relative_content")  # eager FlexAttention is slow-ish
    kernels = ["chunked"] + (["flex"] if flex else [])
    for kernel in kernels:
        model = _model(layout, kernel, **change)
        with torch.no_grad():
            out = model(tokens, layout, mask=mask)
            maps = model(tokens, layout, mask=mask, return_attention=True)
            rows = model(tokens, layout, mask=mask, return_attention=queries)
        torch.testing.assert_close(out.prediction, reference.prediction, atol=1e-5, rtol=0)
        torch.testing.assert_close(maps.prediction, reference.prediction, atol=1e-5, rtol=0)
        for full, ref, sub in zip(maps.attention, reference.attention, rows.attention,
                                  strict=True):
            torch.testing.assert_close(full, ref, atol=1e-6, rtol=0)
            torch.testing.assert_close(sub, ref[:, :, rows.query_index], atol=1e-6, rtol=0)


GRAD_CASES = [  # (layout, config changes, whether BiasedBlock trains the token blocks)
    ("lat-lon", {"position": "relative", "distance_bias": "learned"}, True),
    ("lat-lon", {"position": "geodesic", "head": "index", "pool": "cls"}, True),
    ("padded-y-x", {"position": "sincos", "distance_bias": "learned",
                    "distance_scale_km": 2.0}, True),
    ("space-time", {"position": "relative"}, True),
    ("lat-lon", {"position": "relative", "relative_content": True,
                 "relative_key_content": True}, False),
]


@pytest.mark.parametrize(("name", "change", "explicit"), GRAD_CASES,
                         ids=[f"{n}-{'-'.join(map(str, c.values()))}" for n, c, _ in GRAD_CASES])
def test_training_gradients_equal_the_dense_reference(name, change, explicit, monkeypatch):
    """Token blocks train through BiasedBlock (fused forward, explicit backward) where the
    logits are q.k plus a table bias, else through checkpointed math attention: the gradients
    of every parameter match the dense reference either way, with per-block activation
    checkpointing too."""
    calls, original = [], blockwise.BiasedBlock

    class Counting(original):
        @staticmethod
        def backward(ctx, grad_out):
            calls.append(1)
            return original.backward(ctx, grad_out)

    monkeypatch.setattr(blockwise, "BiasedBlock", Counting)
    layout = LAYOUTS[name]()
    tokens = torch.randn(B, layout.n_tokens, D, generator=torch.Generator().manual_seed(2))
    target = torch.randn(B, layout.n_tokens, 1, generator=torch.Generator().manual_seed(3))
    grads = {}
    for kernel, ckpt in [("dense", False), ("chunked", False), ("chunked", True)]:
        model = _model(layout, kernel, checkpoint_blocks=ckpt, **change).train()
        out = model(tokens, layout, mask=_mask(layout)).prediction
        loss = torch.nn.functional.mse_loss(out, target.expand_as(out) if out.ndim == 3
                                            else target[:, 0])
        loss.backward()
        grads[(kernel, ckpt)] = {n: p.grad.clone() for n, p in model.named_parameters()
                                 if p.grad is not None}
    assert bool(calls) == explicit
    reference = grads[("dense", False)]
    position = [n for n in reference if n in ("relative.table", "distance.strength")]
    assert position
    assert all(reference[n].abs().sum() > 0 for n in position)  # the position terms learn
    for key in [("chunked", False), ("chunked", True)]:
        assert grads[key].keys() == reference.keys()
        for pname, grad in grads[key].items():
            torch.testing.assert_close(grad, reference[pname], atol=2e-5, rtol=1e-4,
                                       msg=f"{key} {pname}")


def test_chunked_kernel_never_builds_pairwise_geometry(monkeypatch):
    """The chunked kernel reads per-layout tables only: layout.offsets() / distances() (N x N)
    are never called, for the forward, query rows or rollout."""
    layout = LAYOUTS["lat-lon"]()

    def refuse(*_args, **_kwargs):
        raise AssertionError("an (N, N) geometry was built")

    monkeypatch.setattr(TokenLayout, "offsets", refuse)
    monkeypatch.setattr(TokenLayout, "distances", refuse)
    model = _model(layout, "chunked", position="relative", distance_bias="learned")
    tokens = torch.randn(B, layout.n_tokens, D)
    with torch.no_grad():
        out = model(tokens, layout, return_attention=[2, 7])
    assert out.probe.rollout([3]).shape == (B, 1, layout.n_tokens)


def test_auto_picks_dense_up_to_the_limit_and_chunked_above(monkeypatch):
    import gridformer.model.gridformer as gridformer_module

    model = _model(LAYOUTS["lat-lon"](), "auto", position="geodesic")
    assert model._kernel(12, full=False) == "dense"
    monkeypatch.setattr(gridformer_module, "DENSE_MAX_TOKENS", 8)
    assert model._kernel(12, full=False) == "chunked"
    assert _model(LAYOUTS["lat-lon"](), "auto", position="none")._kernel(12, False) == "dense"
    assert _model(LAYOUTS["lat-lon"](), "flex", position="geodesic")._kernel(12, True) == (
        "chunked")  # FlexAttention returns no weights: full maps come block by block


def test_flex_refuses_terms_and_dropout_it_cannot_compute():
    with pytest.raises(ValueError, match=r"attention_kernel='flex' cannot compute "
                                         r"relative_content \(terms that depend on the queries' "
                                         r"and keys' content"):
        dataclasses.replace(TINY, attention_kernel="flex", relative_content=True)
    with pytest.raises(ValueError, match=r"attention_kernel='flex' has no attention dropout but "
                                         r"dropout=0.1; use attention_kernel='chunked'"):
        dataclasses.replace(TINY, attention_kernel="flex", dropout=0.1)
    with pytest.raises(ValueError, match=r"attention_kernel='sparse' is not one of \['auto', "
                                         r"'dense', 'chunked', 'flex'\]"):
        dataclasses.replace(TINY, attention_kernel="sparse")
    with pytest.raises(ValueError, match=r"attention_chunk=-1 must be an integer >= 0"):
        dataclasses.replace(TINY, attention_chunk=-1)


def test_flex_off_the_cpu_refuses_heads_smaller_than_its_kernel_takes(monkeypatch):
    """FlexAttention's compiled CUDA kernel refuses a head dimension under 16 deep inside
    inductor (seen on an H100 with TINY, dim / heads = 8): the path says so first, before
    compiling anything."""
    from gridformer.model.blockwise import LayerLogits

    monkeypatch.setattr(flex_module, "_compiled", lambda: pytest.fail("compiled"))
    for head_dim, refused in ((8, True), (16, False)):
        q = torch.empty(2, 2, 24, head_dim, device="meta")  # a device that is not the CPU
        logits = LayerLogits(q, q, None, None, (4, 6), 2, 2)
        if refused:
            with pytest.raises(ValueError, match=r"attention_kernel='flex' needs a head "
                               r"dimension \(dim / heads\) of at least 16 off the CPU .*got 8; "
                               r"use attention_kernel='chunked'"):
                flex_module.flex_attention(logits, q)
        else:
            with pytest.raises(pytest.fail.Exception, match="compiled"):
                flex_module.flex_attention(logits, q)


def test_full_maps_take_the_softmax_dtype(monkeypatch):
    """Under CUDA autocast the softmax returns float32 for bf16 values: the chunked kernel's
    full maps must hold float32 then (they were allocated like ``v`` and failed to fill)."""
    layout = LAYOUTS["lat-lon"]()
    model = GridFormer(dataclasses.replace(TINY, in_features=D, out_features=D,
                                           position="relative", attention_kernel="chunked",
                                           attention_chunk=5)).eval()
    x = torch.randn(B, layout.n_tokens, D)
    want = model(x, layout, return_attention=True).attention
    real = torch.softmax
    monkeypatch.setattr(blockwise.torch, "softmax", lambda t, dim: real(t.double(), dim))
    got = model(x, layout, return_attention=True).attention
    assert [a.dtype for a in got] == [torch.float64] * len(want)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a.float(), b, rtol=1e-5, atol=1e-6)
