import numpy as np
import pytest
import torch
import xarray as xr

from gridformer.analysis import attention_stencil, stack_attention

from ._helpers import heat_stencil, make_layout, stencil_attention


def _as_dict(stencil: xr.DataArray) -> dict[tuple[int, int], float]:
    s = stencil.stack(o=stencil.dims)
    return {tuple(int(v) for v in o): float(w) for o, w in zip(s.o.values, s.values, strict=True)}


def test_recovers_heat_stencil_exactly_with_zero_spread():
    layout = make_layout((8, 6))
    weights = heat_stencil(0.15, 0.075)
    stencil = attention_stencil(stencil_attention(weights, layout), layout)
    assert stencil.dims == ("dy", "dx")
    assert list(stencil.dy.values) == list(range(-4, 4))
    assert list(stencil.dx.values) == list(range(-3, 3))
    got = _as_dict(stencil)
    for offset, w in got.items():
        assert w == pytest.approx(weights.get(offset, 0.0), abs=1e-15)
    np.testing.assert_allclose(stencil.spread.values, 0.0, atol=1e-15)
    assert float(stencil.sum()) == pytest.approx(1.0)


def test_radius_crops_and_records_outside_mass():
    layout = make_layout((8, 8))
    weights = {**heat_stencil(0.1, 0.1), (0, 2): 0.05, (0, 0): 1 - 0.4 - 0.05}
    stencil = attention_stencil(stencil_attention(weights, layout), layout, radius=1)
    assert stencil.shape == (3, 3)
    assert stencil.attrs["mass_outside_radius"] == pytest.approx(0.05)
    assert float(stencil.sel(dy=0, dx=0)) == pytest.approx(0.55)


def test_averages_selected_heads_and_layers():
    layout = make_layout((6, 6))
    a = stencil_attention(heat_stencil(0.1, 0.1), layout)
    b = stencil_attention({(0, 1): 1.0}, layout)
    two_heads = torch.cat([a, b], dim=1)  # (1, 2, N, N)
    only_b = attention_stencil([two_heads, two_heads], layout, heads=1, layers=[-1])
    assert float(only_b.sel(dy=0, dx=1)) == pytest.approx(1.0)
    both = attention_stencil(two_heads, layout)
    assert float(both.sel(dy=0, dx=1)) == pytest.approx(0.5 * 0.1 + 0.5)


def test_spread_measures_state_dependence_and_per_query_maps():
    layout = make_layout((4, 4))
    left = stencil_attention({(0, -1): 1.0}, layout)[0, 0]
    right = stencil_attention({(0, 1): 1.0}, layout)[0, 0]
    mixed = left.clone()
    mixed[8:] = right[8:]  # bottom half of the queries look right, top half left
    stencil = attention_stencil(mixed[None, None], layout)
    assert float(stencil.sel(dy=0, dx=-1)) == pytest.approx(0.5)
    assert float(stencil.spread.sel(dy=0, dx=-1)) == pytest.approx(0.5)
    per_query = attention_stencil(mixed[None, None], layout, per_query=True, radius=1)
    assert per_query.dims == ("sample", "y", "x", "dy", "dx")
    assert float(per_query.isel(sample=0, y=0, x=0).sel(dy=0, dx=-1)) == 1.0
    assert float(per_query.isel(sample=0, y=3, x=0).sel(dy=0, dx=1)) == 1.0


def test_one_dimensional_layout():
    layout = make_layout((10,), dims=("x",))
    stencil = attention_stencil(stencil_attention({(-1,): 0.6, (0,): 0.4}, layout), layout)
    assert stencil.dims == ("dx",)
    assert float(stencil.sel(dx=-1)) == pytest.approx(0.6)


def test_non_periodic_offsets_keep_mass_per_query():
    layout = make_layout((5,), dims=("x",), periodic=False)
    stencil = attention_stencil(torch.full((5, 5), 0.2), layout)
    assert list(stencil.dx.values) == list(range(-4, 5))
    assert float(stencil.sum()) == pytest.approx(1.0)
    assert float(stencil.sel(dx=0)) == pytest.approx(0.2)


def test_errors_name_the_problem():
    layout = make_layout((4, 4))
    with pytest.raises(ValueError, match=r"returned no attention weights \(attention=None\).*"
                                         r"use gridformer\.analysis\.effective_stencil"):
        attention_stencil(None, layout)
    with pytest.raises(ValueError, match=r"attention is an empty sequence.*use "
                                         r"gridformer\.analysis\.effective_stencil"):
        attention_stencil([], layout)
    with pytest.raises(ValueError, match=r"attention has N=9 tokens but layout\.offsets\(\) "
                                         r"has shape \(16, 16, 2\); pass the layout the tokens "
                                         r"were encoded with"):
        attention_stencil(torch.eye(9)[None, None], layout)
    with pytest.raises(ValueError, match=r"heads=3 is out of range: there are 1 heads"):
        stack_attention(torch.eye(16)[None, None], heads=3)
    with pytest.raises(ValueError, match=r"radius=-1 must be a non-negative int or one per "
                                         r"offset dim \('dy', 'dx'\)"):
        attention_stencil(torch.eye(16)[None, None], layout, radius=-1)
