"""Synthetic generators: reproducible with seed, ground truth recorded and recoverable."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gridformer.datasets import planted_teleconnection, random_field

from gridformer import PatchTokenizer
from gridformer.tokenize import haversine_km


def fitted_slope(field: np.ndarray) -> float:
    """Least-squares slope of log power vs log |k| over the samples of a periodic 2-D field."""
    power = (np.abs(np.fft.fft2(field)) ** 2).mean(axis=0)
    ky, kx = np.meshgrid(
        np.fft.fftfreq(field.shape[-2]), np.fft.fftfreq(field.shape[-1]), indexing="ij"
    )
    k = np.hypot(ky, kx)
    keep = (k > 0) & (k < 0.5)
    return float(np.polyfit(np.log(k[keep]), np.log(power[keep]), 1)[0])


@pytest.mark.parametrize("slope", [-3.0, -1.5])
def test_random_field_spectrum(slope):
    field = random_field((32, 32), spectral_slope=slope, n_samples=8, seed=3)
    assert field.dims == ("sample", "y", "x")
    assert field.attrs["spectral_slope"] == slope
    assert field.attrs["bc"] == "periodic"
    np.testing.assert_allclose(field.std(("y", "x")), 1.0)
    assert fitted_slope(field.values) == pytest.approx(slope, abs=0.05)


def test_random_field_seed_and_geographic():
    a, b = random_field((8, 16), seed=1), random_field((8, 16), seed=1)
    xr.testing.assert_identical(a, b)
    assert not np.allclose(a, random_field((8, 16), seed=2))
    geo = random_field((8, 16), geographic=True, seed=0)
    assert geo.dims == ("lat", "lon")
    assert np.all(np.diff(geo["lat"]) > 0)
    _, layout = PatchTokenizer(2).encode(geo)
    assert layout.periodic == (False, True)
    one_d = random_field(20, seed=0)
    assert one_d.dims == ("x",)
    with pytest.raises(ValueError, match=r"shape=\(1, 8\) must be 1 or 2 sizes >= 2"):
        random_field((1, 8))


def test_planted_teleconnection_truth():
    tele = planted_teleconnection(128, shape=(16, 32), lag=1, seed=5)
    xr.testing.assert_identical(tele, planted_teleconnection(128, shape=(16, 32), lag=1, seed=5))
    assert tele["x"].dims == ("time", "lat", "lon")
    src, tgt = tele["source_mask"], tele["target_mask"]
    assert bool(src.any())
    assert bool(tgt.any())
    assert not bool((src & tgt).any())
    attrs = tele.attrs
    expected = haversine_km(
        attrs["source_lat"], attrs["source_lon"], attrs["target_lat"], attrs["target_lon"]
    )
    assert attrs["distance_km"] == pytest.approx(float(expected))
    assert attrs["distance_km"] > 5 * attrs["radius_km"]
    target_series = tele["y"].where(tgt).mean(("lat", "lon"))
    source_series = tele["x"].where(src).mean(("lat", "lon"))
    # y(t) follows the source index lag steps earlier, and nothing else
    assert np.corrcoef(target_series, tele["index"])[0, 1] > 0.9
    assert np.corrcoef(target_series[1:], source_series[:-1])[0, 1] > 0.9
    assert abs(np.corrcoef(target_series, source_series)[0, 1]) < 0.3
    outside = tele["y"].where(~tgt).mean(("lat", "lon"))
    assert abs(np.corrcoef(outside, tele["index"])[0, 1]) < 0.3


def test_planted_teleconnection_overlap_refused():
    with pytest.raises(
        ValueError,
        match=r"source \(0\.0, 100\.0\) and target \(5\.0, 105\.0\) regions overlap with "
        r"radius_km=1500\.0",
    ):
        planted_teleconnection(16, source=(0.0, 100.0), target=(5.0, 105.0))
