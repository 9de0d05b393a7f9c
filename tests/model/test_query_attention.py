"""return_attention as a query set: rows (B, H, Q, N) per layer, a probe, and clear refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import gridformer.model.queries as queries_module
from gridformer.analysis import attention_rollout, query_tokens
from gridformer.model import TINY, GridFormer
from gridformer.tokenize import TokenLayout

B, D = 2, 3


def _setup(kernel="chunked", **change):
    layout = TokenLayout.for_grid((8, 16), patch_size=2, dims=("lat", "lon"))  # 4 x 8 tokens
    cfg = dataclasses.replace(TINY, in_features=D, attention_kernel=kernel, attention_chunk=6,
                              position="geodesic", depth=3, **change)
    torch.manual_seed(0)
    model = GridFormer(cfg).eval()
    with torch.no_grad():
        model.distance.strength.normal_(0.0, 2.0)
    tokens = torch.randn(B, layout.n_tokens, D, generator=torch.Generator().manual_seed(1))
    return model, layout, tokens


@pytest.mark.parametrize("spec", [[5, 0, 31], range(3, 6), np.array([7, 8]),
                                  torch.tensor([9]), 4, np.int64(12)],
                         ids=["list", "range", "ndarray", "tensor", "int", "np-int"])
def test_token_indices_give_their_rows_in_order(spec):
    model, layout, tokens = _setup()
    with torch.no_grad():
        full = model(tokens, layout, return_attention=True)
        sub = model(tokens, layout, return_attention=spec)
    expected = np.atleast_1d(np.asarray(spec.numpy() if isinstance(spec, torch.Tensor)
                                        else list(spec) if isinstance(spec, range) else spec))
    np.testing.assert_array_equal(sub.query_index, expected)
    assert len(sub.attention) == 3
    for rows, maps in zip(sub.attention, full.attention, strict=True):
        assert rows.shape == (B, 2, len(expected), layout.n_tokens)
        torch.testing.assert_close(rows, maps[:, :, expected], atol=1e-6, rtol=0)
    torch.testing.assert_close(sub.prediction, full.prediction, atol=1e-5, rtol=0)
    assert full.probe is None
    assert full.query_index is None


def test_places_resolve_through_query_tokens_and_cls_is_the_class_row():
    model, layout, tokens = _setup()
    with torch.no_grad():
        point = model(tokens, layout, return_attention=(10.0, 200.0))
        box = model(tokens, layout, return_attention={"lat": (-50, 50), "lon": (90, 180)})
    np.testing.assert_array_equal(point.query_index, query_tokens(layout, (10.0, 200.0)))
    np.testing.assert_array_equal(
        box.query_index, query_tokens(layout, {"lat": (-50, 50), "lon": (90, 180)}))
    cls_model, _, _ = _setup(head="index", pool="cls")
    with torch.no_grad():
        out = cls_model(tokens, layout, return_attention="cls")
        shifted = cls_model(tokens, layout, return_attention=[0, 3])
        full = cls_model(tokens, layout, return_attention=True)
    np.testing.assert_array_equal(out.query_index, [0])
    np.testing.assert_array_equal(shifted.query_index, [1, 4])  # token n sits at n + 1
    torch.testing.assert_close(out.attention[0], full.attention[0][:, :, :1], atol=1e-6, rtol=0)
    torch.testing.assert_close(shifted.attention[1], full.attention[1][:, :, [1, 4]],
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("kernel", ["dense", "chunked"])
def test_probe_rollout_and_products_equal_the_full_maps(kernel):
    model, layout, tokens = _setup(kernel)
    with torch.no_grad():
        full = model(tokens, layout, return_attention=True)
        sub = model(tokens, layout, return_attention=[3, 17])
    expected = attention_rollout(full)[:, [3, 17]]  # (B, 2, N) from the full N x N maps
    torch.testing.assert_close(sub.probe.rollout([3, 17]), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(attention_rollout(sub), expected, atol=1e-6, rtol=0)
    partial = attention_rollout(full, layers=[0, 2], heads=[1], residual=0.3)[:, [20]]
    torch.testing.assert_close(
        attention_rollout(sub, layers=[0, 2], heads=[1], residual=0.3, query_index=[20]),
        partial, atol=1e-6, rtol=0)
    r = torch.softmax(torch.randn(B, 4, layout.n_tokens, dtype=torch.float64), -1)
    mean_a = full.attention[1].double().mean(1)  # (B, N, N)
    torch.testing.assert_close(sub.probe.product(1, r), r @ mean_a, atol=1e-6, rtol=0)


def test_bad_queries_are_named():
    model, layout, tokens = _setup()
    valid = torch.ones(1, layout.n_tokens, dtype=torch.bool)
    valid[0, [4, 5]] = False
    masked = dataclasses.replace(layout, valid=valid)
    cases = [
        ([3, 40], ValueError, r"return_attention indices \[40\] lie outside the grid's tokens "
                              r"0\.\.31"),
        ([-1], ValueError, r"indices \[-1\] lie outside"),
        ([], ValueError, r"return_attention=\[\] selects no query"),
        ([1.5, 2.0], TypeError, r"return_attention indices must be integers, got dtype float64; "
                                r"a place \(lat, lon\) is given as a tuple or a mapping"),
        ("all", ValueError, r"return_attention='all' is not a query; use True, False, token "
                            r"indices, a point / box, or 'cls'"),
        ("cls", ValueError, r"return_attention='cls' needs a class token"),
        ({1, 2}, TypeError, r"return_attention=\{1, 2\} \(set\) is not understood"),
        ((95.0, 10.0), ValueError, r"query point \{'lat': 95\.0, 'lon': 10\.0\} lies outside "
                                   r"the grid"),
    ]
    for spec, error, message in cases:
        with pytest.raises(error, match=message):
            model(tokens, layout, return_attention=spec)
    with pytest.raises(ValueError, match=r"query tokens \[4, 5\] are masked in every sample"):
        model(tokens, masked, return_attention=[1, 4, 5])
    call_mask = torch.ones(B, layout.n_tokens, dtype=torch.bool)
    call_mask[0, 9] = False  # masked in one sample only: its rows exist (it still attends)
    out = model(tokens, layout, return_attention=[9], mask=call_mask)
    assert out.attention[0].shape == (B, 2, 1, layout.n_tokens)


def test_full_maps_that_would_not_fit_are_refused(monkeypatch):
    model, layout, tokens = _setup()
    monkeypatch.setattr(queries_module, "_free_bytes", lambda device: 10_000)
    with pytest.raises(ValueError, match=r"return_attention=True at N'=32 keys needs ~80\.0 KiB "
                                         r"for the full \(B, H, N', N'\) maps of 3 layers but "
                                         r"~9\.8 KiB is free; pass the query tokens or a place"):
        model(tokens, layout, return_attention=True)
    assert model(tokens, layout, return_attention=[1]).attention[0].shape[2] == 1
