"""Fixtures of the teleconnect tests."""

from __future__ import annotations

import pytest

from gridformer import datasets

from ._helpers import planted


@pytest.fixture
def planted_file(tmp_path):
    """A written planted dataset (no mask coordinates: what a user's file looks like)."""
    path = tmp_path / "planted.nc"
    datasets.write_netcdf(planted().drop_vars(["source_mask", "target_mask"]), path)
    return path
