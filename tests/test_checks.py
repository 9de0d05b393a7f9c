"""The one monotonic-coordinate check, as the solvers, the datasets and the tokenizer use it."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gridformer import PatchTokenizer, solvers
from gridformer._checks import check_monotonic


@pytest.mark.parametrize(
    ("values", "direction"), [([0.0, 1.0, 5.0], 1), ([3, 2, 1], -1), ([7.0], 1), ([], 1)]
)
def test_direction(values, direction):
    assert check_monotonic(np.asarray(values), "x") == direction


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ([0.0, 1.0, 1.0, 2.0], r"index 2: 1\.0 -> 1\.0"),  # repeated
        ([0.0, 2.0, 1.0, 3.0], r"index 2: 2\.0 -> 1\.0"),  # zig-zag
        ([3.0, 2.0, np.nan, 1.0], r"index 2: 2\.0 -> nan"),  # NaN
    ],
)
def test_breaks_are_located(values, where):
    with pytest.raises(ValueError, match=rf"coordinate 'x' is not strictly monotonic \(first "
                                         rf"break at {where}\); sort it first"):
        check_monotonic(np.asarray(values), "x")


def test_increasing_required_and_types():
    with pytest.raises(ValueError, match=r"u0 coordinate 'x' must increase, but it decreases"):
        check_monotonic(np.array([2.0, 1.0]), "x", increasing=True, what="u0 coordinate")
    with pytest.raises(TypeError, match=r"coordinate 'x' has dtype <U1; it must be real numbers"):
        check_monotonic(np.array(["a", "b"]), "x")
    with pytest.raises(TypeError, match=r"has dtype complex128"):
        check_monotonic(np.array([1j, 2j]), "x")


def test_solvers_and_tokenizer_share_it():
    zigzag = xr.DataArray(np.zeros(4), dims="x", coords={"x": [0.0, 2.0, 1.0, 3.0]})
    message = r"coordinate 'x' is not strictly monotonic \(first break at index 2: 2\.0 -> 1\.0\)"
    with pytest.raises(ValueError, match=f"u0 {message}"):
        solvers.solve("heat", zigzag, steps=1)
    with pytest.raises(ValueError, match=message):
        PatchTokenizer(1).encode(zigzag)
