"""Attention regularisers on hand-made attention maps."""

from __future__ import annotations

import math

import pytest
import torch

from gridformer.tokenize import TokenLayout
from gridformer.training.regularizers import (
    attention_entropy_penalty,
    attention_locality_penalty,
)


def _rows(n: int, weights: dict[int, float]) -> torch.Tensor:
    """(1, 1, n, n) attention: row q puts weights[o] on key (q + o) mod n."""
    a = torch.zeros(1, 1, n, n, dtype=torch.float64)
    for q in range(n):
        for o, w in weights.items():
            a[0, 0, q, (q + o) % n] += w
    return a


def test_locality_penalty_charges_only_mass_beyond_the_radius():
    layout = TokenLayout.for_grid((16,), periodic=True)
    inside = _rows(16, {-1: 0.25, 0: 0.5, 1: 0.25})
    assert float(attention_locality_penalty(inside, layout, radius=1.0)) == 0.0
    leaky = _rows(16, {0: 0.9, 3: 0.1})  # 0.1 of the mass at distance 3: 0.1 * (3 - 1)
    assert float(attention_locality_penalty(leaky, layout, radius=1.0)) == pytest.approx(0.2)
    # the mean over layers
    both = attention_locality_penalty([inside, leaky], layout, radius=1.0)
    assert float(both) == pytest.approx(0.1)


def test_entropy_penalty_is_zero_for_one_hot_and_log_n_for_uniform_rows():
    n = 8
    assert float(attention_entropy_penalty(_rows(n, {0: 1.0}))) == 0.0
    uniform = torch.full((2, 3, n, n), 1.0 / n, dtype=torch.float64, requires_grad=True)
    value = attention_entropy_penalty(uniform)
    assert float(value.detach()) == pytest.approx(math.log(n))
    value.backward()
    assert torch.isfinite(uniform.grad).all()


def test_bad_arguments_are_named():
    layout = TokenLayout.for_grid((8,), periodic=True)
    with pytest.raises(ValueError, match="return_attention=True"):
        attention_entropy_penalty(None)
    with pytest.raises(ValueError, match=r"layers=5 is out of range for 1 attention layers"):
        attention_entropy_penalty(_rows(8, {0: 1.0}), layers=5)
    with pytest.raises(ValueError, match=r"radius=-1\.0 must be >= 0"):
        attention_locality_penalty(_rows(8, {0: 1.0}), layout, radius=-1.0)
    with pytest.raises(ValueError, match=r"N=8 keys but layout\.n_tokens=16"):
        attention_locality_penalty(_rows(8, {0: 1.0}), TokenLayout.for_grid((16,)))
