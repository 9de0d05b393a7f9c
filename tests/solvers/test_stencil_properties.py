"""Hypothesis properties of Stencil and the generic compiled stencil kernel."""

from __future__ import annotations

import numpy as np
import pytest
from gridformer.solvers import Stencil
from gridformer.solvers.backend import ArrayBackend, NumbaBackend
from gridformer.solvers.boundary import GhostFiller, parse_bc
from hypothesis import given, settings
from hypothesis import strategies as st


@st.composite
def stencils(draw, ndim: int = 2, radius: int = 2) -> Stencil:
    offsets = draw(st.sets(st.tuples(*[st.integers(-radius, radius)] * ndim), min_size=1,
                           max_size=8))
    weights = draw(st.lists(st.floats(-2, 2), min_size=len(offsets), max_size=len(offsets)))
    return Stencil.from_dict(dict(zip(sorted(offsets), weights, strict=True)), ndim)


@settings(max_examples=30, deadline=None)
@given(stencils())
def test_dataarray_roundtrip(stencil):
    back = Stencil.from_dataarray(stencil.to_dataarray())
    dense = {k: v for k, v in stencil.as_dict().items() if v != 0.0}
    assert back.as_dict() == dense


@settings(max_examples=30, deadline=None)
@given(stencils(), stencils())
def test_compose_multiplies_symbols(a, b):
    theta = np.linspace(-np.pi, np.pi, 5)
    ty, tx = np.meshgrid(theta, theta, indexing="ij")
    np.testing.assert_allclose(a.compose(b).symbol(ty, tx), a.symbol(ty, tx) * b.symbol(ty, tx),
                               atol=1e-12)


@pytest.mark.parametrize("backend", [NumbaBackend(), ArrayBackend(np)], ids=["numba", "numpy"])
@settings(max_examples=25, deadline=None)
@given(stencil=stencils(), bc=st.sampled_from(["periodic", "neumann", "dirichlet"]),
       seed=st.integers(0, 2**16))
def test_kernel_step_equals_stencil_apply(backend, stencil, bc, seed):
    """The compiled kernel + ghost filling reproduce Stencil.apply for any offsets up to 2."""
    u = np.random.default_rng(seed).normal(size=(2, 5, 6))  # (S, Y, X)
    gy, gx = 2, 2
    src = np.zeros((2, 5 + 2 * gy, 6 + 2 * gx))
    src[:, gy:-gy, gx:-gx] = u
    dst = np.zeros_like(src)
    GhostFiller(parse_bc(bc, ("y", "x")), (gy, gx)).fill(src)
    backend.stencil_step(src, dst, backend.prepare(stencil), (gy, gx))
    np.testing.assert_allclose(dst[:, gy:-gy, gx:-gx], stencil.apply(u, bc), rtol=1e-12,
                               atol=1e-12)
