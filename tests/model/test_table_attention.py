"""Relative-bias attention read from its table equals the dense-bias reference.

Unit level: outputs and the gradients of q, k, v and the learned table against
:func:`gridformer.model.attention.attention` given the gathered ``(1, H, N', N')`` bias, and
the backward against finite differences (``gradcheck``). Model level: a GridFormer trained
through the table and through the dense bias (``TABLE_ATTENTION`` off) gives the same
predictions and parameter gradients, on 1-D, 2-D (periodic, padded, clipped offsets),
space-time and class-token layouts; and the table path is taken only where it applies.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr

import gridformer.model.gridformer as gridformer_module
import gridformer.model.table_attention as table_module
from gridformer.model import TINY, GridFormer
from gridformer.model.attention import attention
from gridformer.model.bias_tables import bias_geometry
from gridformer.model.position import relative_index
from gridformer.model.table_attention import TableIndex, relative_table, table_attention
from gridformer.tokenize import PatchTokenizer, TokenLayout


def _space_time() -> TokenLayout:
    da = xr.DataArray(np.zeros((2, 3, 4, 6)), dims=("sample", "time", "y", "x"))
    return PatchTokenizer(patch_size=2, time_patch=1).encode(da)[1]


LAYOUTS = {
    "1-d": lambda: TokenLayout.for_grid(12, patch_size=1),
    "periodic-y-x": lambda: TokenLayout.for_grid((8, 6), patch_size=1, periodic=True),
    "padded-y-x": lambda: TokenLayout.for_grid((7, 10), patch_size=(2, 3), periodic=False),
    "lat-lon": lambda: TokenLayout.for_grid((6, 8), patch_size=2, dims=("lat", "lon")),
    "space-time": _space_time,
}


def _inputs(layout: TokenLayout, *, heads: int, max_offset: int, n_cls: int, batch: int,
            dtype: torch.dtype, seed: int = 0):
    """q, k, v, learned table, the table path's index and the dense reference bias."""
    gen = torch.Generator().manual_seed(seed)
    ndim = len(bias_geometry(layout, max_offset=max_offset, distance=False).grid)
    n_keys = n_cls + layout.n_tokens
    q, k, v = (torch.randn(batch, heads, n_keys, 4, generator=gen, dtype=dtype,
                           requires_grad=True) for _ in range(3))
    learned = torch.randn(heads, (2 * max_offset + 1) ** ndim, generator=gen, dtype=dtype,
                          requires_grad=True)
    columns = bias_geometry(layout, max_offset=max_offset, distance=False).columns
    index = TableIndex.from_columns(columns)
    dense_index = relative_index(torch.as_tensor(layout.offsets()), tuple(layout.patch_size),
                                 max_offset)
    dense_index = F.pad(dense_index, (n_cls, 0, n_cls, 0), value=learned.shape[1])  # (N', N')
    return q, k, v, learned, index, dense_index


def _ours_and_reference(q, k, v, learned, index, dense_index, *, n_cls: int,
                        key_mask: torch.Tensor | None = None):
    """``table_attention``'s output and the dense-bias reference's, from the same inputs."""
    ours = table_attention(q, k, v, relative_table(learned, index, n_cls=n_cls, dtype=q.dtype),
                           key_mask)
    bias = F.pad(learned, (0, 1))[:, dense_index][None]  # (1, H, N', N')
    reference, _ = attention(q, k, v, bias, key_mask, return_weights=True)
    return ours, reference


def _assert_each_close(got, want, *, rtol: float = 1e-10, atol: float = 1e-11) -> None:
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(LAYOUTS))
@pytest.mark.parametrize(("batch", "n_cls", "max_offset", "masked"),
                         [(1, 0, 8, False), (3, 1, 1, True), (2, 0, 2, True)])
def test_matches_the_dense_bias_reference(name, batch, n_cls, max_offset, masked):
    layout = LAYOUTS[name]()
    q, k, v, learned, index, dense_index = _inputs(layout, heads=3, max_offset=max_offset,
                                                   n_cls=n_cls, batch=batch,
                                                   dtype=torch.float64)
    key_mask = None
    if masked:
        key_mask = torch.ones(batch, q.shape[2], dtype=torch.bool)
        key_mask[0, n_cls + 1] = False
        key_mask[-1, -3:] = False
    out, expected = _ours_and_reference(q, k, v, learned, index, dense_index, n_cls=n_cls,
                                        key_mask=key_mask)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v, learned), grad)
    want = torch.autograd.grad(expected, (q, k, v, learned), grad)
    _assert_each_close(got, want)


def test_float32_matches_the_reference_to_float_tolerance():
    layout = LAYOUTS["periodic-y-x"]()
    q, k, v, learned, index, dense_index = _inputs(layout, heads=4, max_offset=3, n_cls=0,
                                                   batch=2, dtype=torch.float32)
    out, expected = _ours_and_reference(q, k, v, learned, index, dense_index, n_cls=0)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    got = torch.autograd.grad(out.square().sum(), (q, k, v, learned))
    want = torch.autograd.grad(expected.square().sum(), (q, k, v, learned))
    _assert_each_close(got, want, rtol=1e-4, atol=1e-5)


def test_backward_matches_finite_differences():
    layout = TokenLayout.for_grid((3, 4), patch_size=1, periodic=True)
    q, k, v, learned, index, _ = _inputs(layout, heads=2, max_offset=1, n_cls=1, batch=2,
                                         dtype=torch.float64)

    def f(q, k, v, learned):
        return table_attention(q, k, v, relative_table(learned, index, n_cls=1,
                                                       dtype=torch.float64))

    assert torch.autograd.gradcheck(f, (q, k, v, learned))


@pytest.mark.parametrize("chunks", [1, 5, "rows"])
def test_table_gradient_is_the_same_for_any_split_of_the_rows(chunks, monkeypatch):
    """The backward splits each (sample, head) into row chunks with their own partial table
    gradient (how many depends on the thread count); every split must sum to the reference."""
    layout = LAYOUTS["periodic-y-x"]()
    q, k, v, learned, index, dense_index = _inputs(layout, heads=3, max_offset=2, n_cls=1,
                                                   batch=2, dtype=torch.float64)
    monkeypatch.setattr(table_module, "_row_chunks",
                        lambda jobs, rows: rows if chunks == "rows" else chunks)
    out, expected = _ours_and_reference(q, k, v, learned, index, dense_index, n_cls=1)
    grad = torch.randn_like(out)
    (got,) = torch.autograd.grad(out, learned, grad)
    (want,) = torch.autograd.grad(expected, learned, grad)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("slices", [1, 2, 4])
def test_any_chunking_of_the_slices_matches_the_reference(slices, monkeypatch):
    """Forward and backward run over chunks of (sample, head) slices sized by the cache
    budget; at 2 samples x 3 heads, chunks of 2 and 4 start on heads other than 0 and the
    last chunk is short. Outputs and every gradient must equal the reference (one chunk)."""
    layout = LAYOUTS["padded-y-x"]()
    q, k, v, learned, index, dense_index = _inputs(layout, heads=3, max_offset=2, n_cls=1,
                                                   batch=2, dtype=torch.float64)
    n_keys = q.shape[2]
    monkeypatch.setattr(table_module, "_CHUNK_BYTES", slices * n_keys * n_keys * 8)
    first = table_module._slice_chunks(6, n_keys, 8)[0]
    assert first.stop - first.start == slices
    key_mask = torch.ones(2, n_keys, dtype=torch.bool)
    key_mask[1, -2:] = False
    table = relative_table(learned, index, n_cls=1, dtype=torch.float64)
    ours = table_attention(q, k, v, table, key_mask, return_weights=True)
    bias = F.pad(learned, (0, 1))[:, dense_index][None]  # (1, H, N', N')
    reference = attention(q, k, v, bias, key_mask, return_weights=True)
    _assert_each_close(ours, reference, rtol=1e-12, atol=1e-12)
    for used in (1, 2):  # the output alone; both (the weights' gradient enters per chunk)
        grads = (torch.randn_like(ours[0]), torch.randn_like(ours[1]))[:used]
        got = torch.autograd.grad(ours[:used], (q, k, v, learned), grads, retain_graph=True)
        want = torch.autograd.grad(reference[:used], (q, k, v, learned), grads,
                                   retain_graph=True)
        _assert_each_close(got, want)


def test_an_empty_batch_gives_empty_results():
    layout = LAYOUTS["periodic-y-x"]()
    q, k, v, learned, index, _ = _inputs(layout, heads=2, max_offset=1, n_cls=0, batch=1,
                                         dtype=torch.float32)
    table = relative_table(learned, index, n_cls=0, dtype=torch.float32)
    out, weights = table_attention(q[:0], k[:0], v[:0], table, return_weights=True)
    assert out.shape == (0, 2, 48, 4)
    assert weights.shape == (0, 2, 48, 48)
    out.sum().backward()
    assert learned.grad is not None
    assert not learned.grad.any()


def test_output_may_be_changed_in_place_like_any_op():
    layout = LAYOUTS["1-d"]()
    q, k, v, learned, index, dense_index = _inputs(layout, heads=2, max_offset=2, n_cls=0,
                                                   batch=1, dtype=torch.float64)
    out, expected = _ours_and_reference(q, k, v, learned, index, dense_index, n_cls=0)
    out.mul_(2.0)  # in place on the result: no error, and the gradient sees the doubling
    expected.mul_(2.0)
    got = torch.autograd.grad(out.square().sum(), (q, learned))
    want = torch.autograd.grad(expected.square().sum(), (q, learned))
    _assert_each_close(got, want)


@pytest.mark.parametrize("used", ["both", "weights only"])
def test_returned_weights_and_their_gradients_equal_the_reference(used):
    """With ``return_weights`` the weights are the reference's, and a loss that reads them
    (alone, or with the output) has the reference's gradients."""
    layout = LAYOUTS["padded-y-x"]()
    q, k, v, learned, index, dense_index = _inputs(layout, heads=3, max_offset=2, n_cls=1,
                                                   batch=2, dtype=torch.float64)
    key_mask = torch.ones(2, q.shape[2], dtype=torch.bool)
    key_mask[0, -3:] = False
    table = relative_table(learned, index, n_cls=1, dtype=torch.float64)
    out, weights = table_attention(q, k, v, table, key_mask, return_weights=True)
    bias = F.pad(learned, (0, 1))[:, dense_index][None]  # (1, H, N', N')
    ref_out, ref_weights = attention(q, k, v, bias, key_mask, return_weights=True)
    torch.testing.assert_close(weights, ref_weights, rtol=1e-12, atol=1e-12)
    assert weights.shape == (2, 3, q.shape[2], q.shape[2])
    assert weights._base is None  # a tensor of its own: not a view of a forward buffer
    w_grad = torch.randn_like(weights)

    def loss(o, w):
        maps = (w * w_grad).sum() + w.square().sum()
        return maps if used == "weights only" else maps + o.square().sum()

    got = torch.autograd.grad(loss(out, weights), (q, k, v, learned), materialize_grads=True)
    want = torch.autograd.grad(loss(ref_out, ref_weights), (q, k, v, learned),
                               materialize_grads=True)  # v: unused by the weights alone
    _assert_each_close(got, want)


@pytest.mark.parametrize("slices", [1, 4, None])
def test_without_a_table_matches_plain_attention(slices, monkeypatch):
    """``table=None``: no bias, the same chunked passes; output, weights and gradients equal
    :func:`attention` without a bias (with a key mask and a class-token-sized N')."""
    layout = LAYOUTS["padded-y-x"]()
    q, k, v, *_ = _inputs(layout, heads=3, max_offset=1, n_cls=1, batch=2,
                          dtype=torch.float64)
    n_keys = q.shape[2]
    if slices is not None:
        monkeypatch.setattr(table_module, "_CHUNK_BYTES", slices * n_keys * n_keys * 8)
    key_mask = torch.ones(2, n_keys, dtype=torch.bool)
    key_mask[1, :3] = False
    out, weights = table_attention(q, k, v, None, key_mask, return_weights=True)
    ref_out, ref_weights = attention(q, k, v, None, key_mask, return_weights=True)
    _assert_each_close((out, weights), (ref_out, ref_weights), rtol=1e-12, atol=1e-12)
    grads = (torch.randn_like(out), torch.randn_like(weights))
    got = torch.autograd.grad((out, weights), (q, k, v), grads)
    want = torch.autograd.grad((ref_out, ref_weights), (q, k, v), grads)
    _assert_each_close(got, want)
    assert torch.autograd.gradcheck(
        lambda q, k, v: table_attention(q, k, v, None, return_weights=True),
        (q[:1, :2, :9], k[:1, :2, :9], v[:1, :2, :9]))


def test_returned_weights_changed_in_place_make_the_backward_refuse():
    layout = LAYOUTS["1-d"]()
    q, k, v, learned, index, _ = _inputs(layout, heads=2, max_offset=2, n_cls=0, batch=1,
                                         dtype=torch.float64)
    out, weights = table_attention(q, k, v, relative_table(learned, index, n_cls=0,
                                                           dtype=torch.float64),
                                   return_weights=True)
    weights.mul_(2.0)  # the backward reads these weights: it must not run on changed ones
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


@pytest.mark.parametrize("through", ["output", "weights"])
def test_second_derivatives_equal_the_dense_bias_reference(through):
    layout = LAYOUTS["periodic-y-x"]()
    q, k, v, learned, index, dense_index = _inputs(layout, heads=2, max_offset=2, n_cls=1,
                                                   batch=2, dtype=torch.float64)
    key_mask = torch.ones(2, q.shape[2], dtype=torch.bool)
    key_mask[1, 4] = False

    def second(out, weights):  # d/d(q, k, v, table) of |d f / d q|^2: a differentiable backward
        f = out.square().sum() if through == "output" else weights[:, :, 2:5].square().sum()
        (grad_q,) = torch.autograd.grad(f, q, create_graph=True)
        return torch.autograd.grad(grad_q.square().sum(), (q, k, v, learned),
                                   materialize_grads=True)

    table = relative_table(learned, index, n_cls=1, dtype=torch.float64)
    ours = table_attention(q, k, v, table, key_mask, return_weights=True)
    bias = F.pad(learned, (0, 1))[:, dense_index][None]  # (1, H, N', N')
    reference = attention(q, k, v, bias, key_mask, return_weights=True)
    _assert_each_close(second(*ours), second(*reference))


def test_refuses_mixed_or_unsupported_dtypes():
    layout = LAYOUTS["periodic-y-x"]()
    q, k, v, learned, index, _ = _inputs(layout, heads=2, max_offset=1, n_cls=0, batch=1,
                                         dtype=torch.float32)
    table = relative_table(learned, index, n_cls=0, dtype=torch.float32)
    with pytest.raises(TypeError, match=r"q torch\.bfloat16"):
        table_attention(q.bfloat16(), k, v, table)
    with pytest.raises(TypeError, match=r"table\.values torch\.float64"):
        table_attention(q, k, v, relative_table(learned, index, n_cls=0, dtype=torch.float64))


def test_refuses_shapes_that_do_not_fit_the_table():
    layout = LAYOUTS["periodic-y-x"]()  # 48 grid tokens
    q, k, v, learned, index, _ = _inputs(layout, heads=2, max_offset=1, n_cls=0, batch=2,
                                         dtype=torch.float32)
    table = relative_table(learned, index, n_cls=0, dtype=torch.float32)
    with_cls = relative_table(learned, index, n_cls=1, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"H=2 heads over N'=49 keys \(1 class token"):
        table_attention(q, k, v, with_cls)  # no class token in q
    with pytest.raises(ValueError, match=r"H=2 heads over N'=48 keys"):
        table_attention(q[:, :, :40], k[:, :, :40], v[:, :, :40], table)
    three = torch.cat([q, q[:, :1]], dim=1)  # 3 heads against a 2-head table
    with pytest.raises(ValueError, match=r"H=2 heads"):
        table_attention(three, three, three, table)
    with pytest.raises(ValueError, match=r"q and k of one \(B, H, N', hd\) shape"):
        table_attention(q, k[:, :, :, :2], v, table)
    with pytest.raises(TypeError, match=r"key_mask must be a bool tensor .* got torch.float32"):
        table_attention(q, k, v, table, torch.ones(2, 48))
    with pytest.raises(ValueError, match=r"key_mask must be .* \(2, 48\); got torch.bool"):
        table_attention(q, k, v, table, torch.ones(2, 47, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"needs tensors for q, k, v \(and the table\); "
                                        r"got {'q': 'NoneType'"):
        table_attention(None, k, v, table)


def test_index_refuses_tables_not_indexed_by_offsets():
    geometry = bias_geometry(LAYOUTS["lat-lon"](), max_offset=None, distance=True)
    with pytest.raises(ValueError, match="offsets on every axis"):
        TableIndex.from_columns(geometry.distance.parts[0])


# ---------------------------------------------------------------- in the model
def _model(layout: TokenLayout, **change) -> GridFormer:
    ndim = len(bias_geometry(layout, max_offset=1, distance=False).grid)
    cfg = dataclasses.replace(TINY, **{"in_features": 3, "heads": 2, "position": "relative",
                                       "ndim": ndim, **change})
    torch.manual_seed(0)
    model = GridFormer(cfg)
    if model.relative is not None:
        with torch.no_grad():
            model.relative.table.normal_()  # a bias that matters (it starts at zero)
    return model


def _train_step(model: GridFormer, layout: TokenLayout, table: bool, monkeypatch,
                mask: torch.Tensor | None = None, maps: bool = False):
    """Prediction (and with ``maps`` each layer's weights) and every parameter gradient of
    one step; with ``maps`` the loss reads the weights too."""
    monkeypatch.setattr(gridformer_module, "TABLE_ATTENTION", table)
    torch.manual_seed(1)
    tokens = torch.randn(2, layout.n_tokens, 3)
    model.zero_grad()
    output = model(tokens, layout, mask=mask, return_attention=maps)
    loss = output.prediction.square().mean()
    if maps:
        loss = loss + sum(w[:, :, :4].square().sum() for w in output.attention)
    loss.backward()
    result = (output.prediction.detach(),
              *(tuple(w.detach() for w in output.attention) if maps else ()))
    return result, {n: p.grad.clone() for n, p in model.named_parameters()
                    if p.grad is not None}


@pytest.mark.parametrize(("name", "change"), [
    ("1-d", {}),
    ("periodic-y-x", {}),
    ("padded-y-x", {"max_relative_offset": 1}),
    ("lat-lon", {"head": "index", "pool": "cls"}),
    ("space-time", {}),
    ("periodic-y-x", {"checkpoint_blocks": True}),
    ("periodic-y-x", {"maps": True}),
    ("lat-lon", {"head": "index", "pool": "cls", "maps": True}),
    ("periodic-y-x", {"position": "none", "maps": True}),
    ("padded-y-x", {"position": "sincos", "maps": True}),
    ("lat-lon", {"position": "absolute", "head": "index", "pool": "cls", "maps": True}),
    ("periodic-y-x", {"frozen": True}),
])
def test_model_gradients_equal_the_dense_bias_path(name, change, monkeypatch):
    """Predictions, attention maps (``return_attention=True``, read by the loss) and every
    parameter gradient are the same through the table as through the dense bias."""
    change = dict(change)
    maps, frozen = change.pop("maps", False), change.pop("frozen", False)
    layout = LAYOUTS[name]()
    model = _model(layout, **change)
    if frozen:  # the table path without the table's gradient
        model.relative.table.requires_grad_(False)
    calls = []
    real = table_module.TableBiasAttention.apply
    monkeypatch.setattr(table_module.TableBiasAttention, "apply",
                        lambda *a: calls.append(1) or real(*a))
    mask = torch.ones(2, layout.n_tokens, dtype=torch.bool)
    mask[1, :2] = False
    out, grads = _train_step(model, layout, True, monkeypatch, mask, maps)
    assert calls  # the table path ran
    n_calls = len(calls)
    ref_out, ref_grads = _train_step(model, layout, False, monkeypatch, mask, maps)
    assert len(calls) == n_calls  # and the reference did not
    assert len(out) == len(ref_out) == (1 + model.config.depth if maps else 1)
    _assert_each_close(out, ref_out, rtol=1e-5, atol=1e-6)
    assert grads.keys() == ref_grads.keys()
    scale = max(g.abs().max() for g in ref_grads.values())
    for name_, g in grads.items():
        torch.testing.assert_close(g, ref_grads[name_], rtol=1e-4, atol=1e-6 * scale,
                                   msg=name_)


@pytest.mark.parametrize(("why", "change", "call"), [
    ("no gradients", {}, "no_grad"),
    ("a query set", {}, "queries"),
    ("attention dropout in training", {"dropout": 0.1}, "train"),
    ("a distance bias", {"distance_bias": "learned"}, "train"),
    ("relative content terms", {"relative_content": True}, "train"),
    ("bias-only logits", {"content_attention": False}, "train"),
    ("the chunked kernel", {"attention_kernel": "chunked"}, "train"),
    ("no position term and no weights returned (the fused kernel)", {"position": "none"},
     "train"),
    ("no position term, weights returned without gradients", {"position": "none"},
     "no_grad_maps"),
    ("CPU autocast", {}, "autocast"),
    ("dropout in one layer left in training mode", {"dropout": 0.1}, "one_layer_train"),
])
def test_other_cases_take_the_reference_paths(why, change, call, monkeypatch):
    layout = LAYOUTS["periodic-y-x"]()
    model = _model(layout, **change)
    calls = []
    real = table_module.TableBiasAttention.apply
    monkeypatch.setattr(table_module.TableBiasAttention, "apply",
                        lambda *a: calls.append(1) or real(*a))
    tokens = torch.randn(1, layout.n_tokens, 3)
    if call in ("no_grad", "no_grad_maps"):
        with torch.no_grad():
            model(tokens, layout, return_attention=call == "no_grad_maps")
    elif call == "one_layer_train":
        model.eval()
        model.blocks[0].attn.train()
        model(tokens, layout).prediction.sum().backward()
    elif call == "autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(tokens, layout).prediction.float().sum().backward()
    elif call == "queries":
        model(tokens, layout, return_attention=[0, 5]).prediction.sum().backward()
    else:
        model.train()(tokens, layout).prediction.sum().backward()
    assert calls == [], why
