"""GridFormer: shapes, position modes, fused == explicit, masking, unseen grids, bad input."""

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

import gridformer.model.gridformer as gridformer_module
from gridformer.model import TINY, GridFormer, GridFormerOutput, frame_embedding, sincos_embedding
from gridformer.tokenize import PatchTokenizer, TokenLayout

B, D, OUT, H = 2, 5, 3, 4  # (3, 4) grid: N = 12 tokens; dim C = 16; depth 2


def make(layout_shape=(3, 4), **change):
    cfg = dataclasses.replace(TINY, in_features=D, out_features=OUT, heads=H,
                              reference_grid=(3, 4), **change)
    torch.manual_seed(0)
    model = GridFormer(cfg).eval()
    layout = TokenLayout.for_grid(layout_shape, patch_size=1, periodic=True)
    tokens = torch.randn(B, layout.n_tokens, D)
    return model, layout, tokens


POSITIONS = [
    {"position": "absolute"},
    {"position": "sincos"},
    {"position": "relative"},
    {"position": "geodesic"},
    {"position": "none"},
    {"position": "relative", "distance_bias": 0.5},
    {"position": "relative", "relative_content": True},
    {"position": "relative", "content_attention": False, "relative_content": True},
    {"position": "relative", "relative_content": True, "relative_key_content": True,
     "nonlinear_qk": True},
    {"position": "none", "content_attention": False, "relative_key_content": True},
]


@pytest.mark.parametrize("change", POSITIONS, ids=lambda c: "-".join(map(str, c.values())))
def test_field_head_shapes_and_fused_equals_explicit(change):
    model, layout, tokens = make(**change)
    _randomize_zero_init(model)  # zero-initialised bias tables would make the bias path trivial
    fast = model(tokens, layout)
    slow = model(tokens, layout, return_attention=True)
    assert isinstance(fast, GridFormerOutput)
    assert fast.prediction.shape == (B, 12, OUT)
    assert fast.features.shape == (B, 12, 16)
    assert fast.attention is None
    assert len(slow.attention) == 2
    assert all(a.shape == (B, H, 12, 12) for a in slow.attention)
    torch.testing.assert_close(fast.prediction, slow.prediction, atol=1e-5, rtol=0)


def _randomize_zero_init(model):
    """Give every all-zero parameter (relative tables, learned distance strengths) random values
    large enough to change the attention, so that fused == explicit checks the bias path."""
    scale = model.config.distance_scale_km
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.any():
                p.normal_(0.0, scale if name.endswith("strength") else 1.0)


@pytest.mark.parametrize(("head", "pool"), [("index", "mean"), ("class", "cls")])
def test_pooled_heads(head, pool):
    model, layout, tokens = make(head=head, pool=pool)
    out = model(tokens, layout, return_attention=True)
    assert out.prediction.shape == (B, OUT)
    assert out.features.shape == (B, 12, 16)
    n = 13 if pool == "cls" else 12  # class token first
    assert out.attention[0].shape == (B, H, n, n)
    torch.testing.assert_close(model(tokens, layout).prediction, out.prediction, atol=1e-5,
                               rtol=0)


def test_masked_keys_get_zero_weight_and_rows_sum_to_one():
    model, layout, tokens = make(position="relative", distance_bias=0.3)
    mask = torch.ones(B, 12, dtype=torch.bool)
    mask[0, [0, 5]] = False
    mask[1, 11] = False
    out = model(tokens, layout, return_attention=True, mask=mask)
    for w in out.attention:
        keep = mask[:, None, None, :].expand_as(w)
        assert torch.all(w[~keep] == 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(B, H, 12), atol=1e-6, rtol=0)
    torch.testing.assert_close(model(tokens, layout, mask=mask).prediction, out.prediction,
                               atol=1e-5, rtol=0)


def test_layout_valid_masks_keys():
    model, layout, tokens = make()
    valid = torch.ones(B, 12, dtype=torch.bool)
    valid[:, 3] = False
    masked_layout = dataclasses.replace(layout, valid=valid)
    w = model(tokens, masked_layout, return_attention=True).attention[0]
    assert torch.all(w[..., 3] == 0)


def test_invalid_tokens_do_not_change_valid_outputs():
    model, layout, tokens = make(position="relative")
    mask = torch.ones(B, 12, dtype=torch.bool)
    mask[:, 7] = False
    a = model(tokens, layout, mask=mask).prediction
    tokens2 = tokens.clone()
    tokens2[:, 7] = 1e3
    b = model(tokens2, layout, mask=mask).prediction
    torch.testing.assert_close(a[:, mask[0]], b[:, mask[0]])


def test_sample_without_valid_token_is_an_error():
    model, layout, tokens = make()
    mask = torch.ones(B, 12, dtype=torch.bool)
    mask[1] = False
    with pytest.raises(ValueError, match=r"samples \[1\] have no valid token"):
        model(tokens, layout, mask=mask)


@pytest.mark.parametrize("change", [{"position": "relative"}, {"position": "geodesic"},
                                    {"position": "absolute"}, {"position": "sincos"}])
def test_runs_on_a_grid_size_never_seen(change):
    """Relative offsets and distances carry over to any periodic grid (translation equivariant
    there); absolute tables are resampled to it and sincos rebuilt for it (position matters)."""
    model, _, _ = make(**change)
    _randomize_zero_init(model)  # as after training: non-zero relative / distance biases
    for shape in [(5, 7), (9, 2)]:
        layout = TokenLayout.for_grid(shape, patch_size=1, periodic=True)
        tokens = torch.randn(B, *shape, D)
        with torch.no_grad():
            out = model(tokens.reshape(B, -1, D), layout).prediction
            rolled = model(torch.roll(tokens, (1, 1), (1, 2)).reshape(B, -1, D), layout)
        assert out.shape == (B, layout.n_tokens, OUT)
        assert torch.isfinite(out).all()
        moved = torch.roll(out.reshape(B, *shape, OUT), (1, 1), (1, 2)).reshape(B, -1, OUT)
        gap = float((rolled.prediction - moved).abs().max())
        if change["position"] in ("relative", "geodesic"):
            assert gap < 1e-5
        else:
            assert gap > 1e-3


def test_relative_bias_is_translation_equivariant_on_periodic_grid():
    model, layout, tokens = make(position="relative")
    grid = tokens.reshape(B, 3, 4, D)
    shifted = torch.roll(grid, shifts=(1, 2), dims=(1, 2)).reshape(B, 12, D)
    a = model(tokens, layout).prediction.reshape(B, 3, 4, OUT)
    b = model(shifted, layout).prediction.reshape(B, 3, 4, OUT)
    torch.testing.assert_close(torch.roll(a, shifts=(1, 2), dims=(1, 2)), b, atol=1e-5, rtol=0)


def test_geodesic_on_lat_lon_layout_uses_km():
    model, _, _ = make(position="geodesic", distance_scale_km=1000.0)
    with torch.no_grad():
        model.distance.strength.fill_(2.0)
    layout = TokenLayout.for_grid((6, 8), patch_size=2, dims=("lat", "lon"))
    tokens = torch.randn(B, layout.n_tokens, D)
    w = model(tokens, layout, return_attention=True).attention[0]
    bias = model._position_bias(model._geometry(layout, torch.device("cpu")))
    d = layout.distances()
    torch.testing.assert_close(bias[0, 0], -2.0 * d / 1000.0)
    assert w.shape == (B, H, 12, 12)


def test_geometry_is_cached_per_layout(monkeypatch):
    model, layout, tokens = make(position="relative")
    calls = []
    real = gridformer_module.relative_index
    monkeypatch.setattr(gridformer_module, "relative_index",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    for _ in range(3):
        model(tokens, layout)
    assert len(calls) == 1
    model(tokens, TokenLayout.for_grid((3, 4), patch_size=1, periodic=True))
    assert len(calls) == 2


def test_patch_offsets_are_in_patch_units():
    cfg = dataclasses.replace(TINY, in_features=4, position="relative", max_relative_offset=3)
    model = GridFormer(cfg)
    layout = TokenLayout.for_grid((6, 6), patch_size=2, periodic=True)  # (3, 3) patches
    geo = model._geometry(layout, torch.device("cpu"))
    col = model.relative.offset_to_column
    # token 0 = patch (0, 0), token 1 = patch (0, 1): offset (0, +1) patch = 2 cells
    assert geo.rel_index[0, 1] == col((0, 1))
    assert geo.rel_index[1, 0] == col((0, -1))
    assert geo.rel_index[0, 3] == col((1, 0))


def test_token_feature_size_mismatch():
    model, layout, _ = make()
    with pytest.raises(ValueError, match=r"tokens have D=4 features per token but "
                                         r"config.in_features=5"):
        model(torch.randn(B, 12, 4), layout)


def test_float64_tokens_are_cast_and_integer_tokens_refused():
    model, layout, tokens = make()
    out = model(tokens.double(), layout)
    assert out.prediction.dtype == torch.float32
    torch.testing.assert_close(out.prediction, model(tokens, layout).prediction)
    with pytest.raises(TypeError, match=r"tokens must be a floating-point tensor, got dtype "
                                        r"torch\.int64"):
        model(tokens.long(), layout)


def test_token_count_mismatch():
    model, layout, _ = make()
    with pytest.raises(ValueError, match=r"tokens have N=10 tokens but layout.n_tokens=12"):
        model(torch.randn(B, 10, D), layout)


def test_tokens_must_be_3d_tensor():
    model, layout, _ = make()
    with pytest.raises(TypeError, match=r"tokens must be a \(B, N, D\) torch.Tensor"):
        model(torch.randn(12, D), layout)


def test_absolute_table_cannot_serve_other_dimensionality():
    model, _, _ = make(position="absolute")
    layout_1d = TokenLayout.for_grid(12, patch_size=1, periodic=True)
    with pytest.raises(ValueError, match=r"learned on a 2-D reference_grid=\(3, 4\) and "
                                         r"cannot be resampled to a 1-D layout"):
        model(torch.randn(B, 12, D), layout_1d)


def test_relative_table_ndim_must_match_layout():
    model, _, _ = make(position="relative")
    layout_1d = TokenLayout.for_grid(12, patch_size=1, periodic=True)
    with pytest.raises(ValueError, match=r"1-D token offsets but config.ndim=2"):
        model(torch.randn(B, 12, D), layout_1d)


def test_one_dimensional_model():
    model, _, _ = make(position="relative", ndim=1)
    layout = TokenLayout.for_grid(12, patch_size=1, periodic=True)
    out = model(torch.randn(B, 12, D), layout, return_attention=True)
    assert out.prediction.shape == (B, 12, OUT)


def _space_time(position, seed=0):
    """A space-time model and 3 frames of (2 x 3) patch tokens, D = 4."""
    da = xr.DataArray(np.random.default_rng(seed).standard_normal((2, 3, 4, 6)),
                      dims=("sample", "time", "y", "x"))
    tokens, layout = PatchTokenizer(patch_size=2, time_patch=1).encode(da)
    cfg = dataclasses.replace(TINY, in_features=4, ndim=3, position=position,
                              reference_grid=(2, 3))
    torch.manual_seed(seed)
    model = GridFormer(cfg).eval()
    _randomize_zero_init(model)  # a trained relative table, not the all-zero initial one
    return model, layout, tokens.float()


@pytest.mark.parametrize("position", ["relative", "sincos", "absolute", "geodesic"])
def test_space_time_tokens_shapes_and_fused_equals_explicit(position):
    model, layout, tokens = _space_time(position)
    assert tokens.shape == (2, 18, 4)  # 3 frames x (2 x 3) patches
    out = model(tokens, layout, return_attention=True)
    assert out.prediction.shape == (2, 18, 1)
    assert out.attention[0].shape == (2, 2, 18, 18)
    torch.testing.assert_close(model(tokens, layout).prediction, out.prediction, atol=1e-5,
                               rtol=0)


def _swap_frames(x, a=0, b=2, per_frame=6):
    """Swap frames ``a`` and ``b`` of a frame-major token axis (dim 1)."""
    order = torch.arange(x.shape[1]).reshape(-1, per_frame)
    order[[a, b]] = order[[b, a]]
    return x[:, order.flatten()]


@pytest.mark.parametrize("position", ["relative", "sincos", "absolute", "geodesic"])
def test_space_time_positions_tell_frames_apart(position):
    """Swapping two input frames must not merely swap the output frames: the model knows which
    frame is which (frame code, or the time axis of the relative offsets)."""
    model, layout, tokens = _space_time(position)
    with torch.no_grad():
        out = model(tokens, layout).prediction
        swapped = _swap_frames(model(_swap_frames(tokens), layout).prediction)
    assert (swapped - out).abs().max() > 1e-2


def test_space_time_without_position_is_frame_permutation_equivariant():
    """position="none" has no position at all: a frame swap only permutes the output."""
    model, layout, tokens = _space_time("none")
    with torch.no_grad():
        out = model(tokens, layout).prediction
        swapped = _swap_frames(model(_swap_frames(tokens), layout).prediction)
    torch.testing.assert_close(swapped, out, atol=1e-5, rtol=0)


def test_frame_code_is_added_to_the_spatial_sincos_table():
    model, layout, _ = _space_time("sincos")
    geo = model._geometry(layout, torch.device("cpu"))
    spatial = sincos_embedding((2, 3), 16).repeat(3, 1)  # (18, 16)
    frames = frame_embedding(np.repeat([0, 1, 2], 6), 16)
    torch.testing.assert_close(geo.fixed_position, spatial + frames)
    plain = model._geometry(TokenLayout.for_grid((4, 6), patch_size=2), torch.device("cpu"))
    torch.testing.assert_close(plain.fixed_position, sincos_embedding((2, 3), 16))


def test_field_prediction_decodes_back_onto_the_grid():
    """head="field" predicts (B, N, D) tokens that the same tokenizer's decode puts on the grid."""
    da = xr.DataArray(np.random.default_rng(0).standard_normal((3, 6, 10)).astype("float32"),
                      dims=("time", "y", "x"),
                      coords={"time": [0.0, 1.0, 2.0], "y": np.arange(6.0), "x": np.arange(10.0)},
                      name="u", attrs={"units": "1"})
    tokenizer = PatchTokenizer((2, 4))  # 10 is padded to 12 along x
    tokens, layout = tokenizer.encode(da, periodic=False)
    cfg = dataclasses.replace(TINY, in_features=tokens.shape[-1], out_features=tokens.shape[-1])
    with torch.no_grad():
        prediction = GridFormer(cfg).eval()(tokens, layout).prediction  # (B, N, D)
    grid = tokenizer.decode(prediction, layout)
    assert grid.dims == da.dims
    assert grid.shape == da.shape  # padding removed again
    xr.testing.assert_identical(grid.coords.to_dataset(), da.coords.to_dataset())
    assert bool(np.isfinite(grid).all())


@pytest.mark.parametrize(("pool", "content_terms"), [(None, False), ("cls", False),
                                                     (None, True)])
def test_unclipped_relative_gather_gives_the_same_bias_and_gradient(monkeypatch, pool,
                                                                    content_terms):
    """Off the CPU the dense relative bias is gathered through every unclipped offset first
    (fewer atomic adds on one table entry); switched on here, it is the same bias, gradient
    and forward, with a class token's row and column still bias-free. The clipped pair index
    is kept beside it only for the relative content terms that gather with it."""
    extra = {"head": "index", "pool": "cls", "out_features": 2} if pool else {}
    if content_terms:
        extra.update(relative_content=True, relative_key_content=True)
    cfg = dataclasses.replace(TINY, in_features=4, position="relative", max_relative_offset=2,
                              attention_kernel="dense", **extra)
    model = GridFormer(cfg)
    with torch.no_grad():
        model.relative.table.normal_()
    layout = TokenLayout.for_grid((6, 8), patch_size=1, periodic=False)  # offsets up to 7 > 2
    tokens = torch.randn(2, layout.n_tokens, 4)
    results = []
    for spread in (False, True):
        monkeypatch.setattr(gridformer_module, "_spread_relative_gather", lambda d, s=spread: s)
        model._geometry_cache.clear()
        geo = model._geometry(layout, torch.device("cpu"))
        assert (geo.bias_fold is not None) == spread
        assert (geo.rel_index is None) == (spread and not content_terms)
        # each pair's clipped table column; derivable as bias_fold[bias_index] when spread
        pair_columns = geo.bias_fold[geo.bias_index] if spread else geo.rel_index  # (N', N')
        model.relative.table.grad = None
        bias = model._position_bias(geo)  # (1, H, N', N')
        (bias * torch.arange(bias.numel()).view_as(bias).sin()).sum().backward()
        with torch.no_grad():
            out = model(tokens, layout).prediction
        results.append((bias.detach(), model.relative.table.grad.clone(), out, pair_columns))
    assert torch.equal(results[1][3], results[0][3])
    assert torch.equal(results[1][0], results[0][0])
    if pool:
        assert torch.all(results[1][0][..., 0, :] == 0)
        assert torch.all(results[1][0][..., 0] == 0)
    torch.testing.assert_close(results[1][1], results[0][1], atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(results[1][2], results[0][2], atol=0, rtol=0)
