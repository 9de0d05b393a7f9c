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


def shell_power(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean power per integer mode-number shell |k| = 1, 2, ... of periodic 2-D samples."""
    power = (np.abs(np.fft.fft2(field)) ** 2).mean(axis=0)
    my, mx = np.meshgrid(
        np.fft.fftfreq(field.shape[-2], 1 / field.shape[-2]),
        np.fft.fftfreq(field.shape[-1], 1 / field.shape[-1]),
        indexing="ij",
    )
    shell = np.rint(np.hypot(my, mx)).astype(int)
    ks = np.arange(1, field.shape[-1] // 2)
    return ks, np.array([power[shell == k].mean() for k in ks])


def test_broadband_and_smooth_spectra():
    broad = random_field((32, 32), spectrum="broadband", n_samples=64, seed=0).values
    ks, power = shell_power(broad)
    expected = (1.0 + ks / 4.0) ** -2.0  # amplitude (1 + |k|/4)^-1 -> power squared
    ratio = power / expected
    assert ratio.std() / ratio.mean() < 0.1  # the shape of the spectrum, not just its decay
    smooth = random_field((32, 32), spectrum="smooth", n_samples=16, seed=0).values
    ks, power = shell_power(smooth)
    assert power[ks >= 10].sum() < 1e-10 * power.sum()  # exp(-(k/2.5)^2): a few low modes
    assert "spectral_slope" not in random_field(8, spectrum="smooth").attrs


def test_amplitude_mean_and_spacing_options():
    zero = random_field((16, 16), n_samples=4, seed=1)
    np.testing.assert_allclose(zero.mean(("y", "x")), 0.0, atol=1e-12)
    scaled = random_field((16, 16), n_samples=4, amplitude=2.5, seed=1)
    np.testing.assert_allclose(abs(scaled).max(("y", "x")), 2.5)
    shifted = random_field((8, 8), n_samples=2000, mean_sd=0.5, seed=2)
    means = shifted.mean(("y", "x")).values
    assert means.std() == pytest.approx(0.5, rel=0.05)  # N(0, 0.5^2) per sample
    assert abs(means.mean()) < 0.05
    spaced = random_field((4, 6), spacing=(0.5, 2.0), seed=0)
    np.testing.assert_array_equal(spaced["y"], np.arange(4) * 0.5)
    np.testing.assert_array_equal(spaced["x"], np.arange(6) * 2.0)
    with pytest.raises(ValueError, match=r"spectrum='pink' is not one of \['power_law', "):
        random_field(8, spectrum="pink")
    with pytest.raises(ValueError, match=r"amplitude=0 must be positive"):
        random_field(8, amplitude=0)
    with pytest.raises(ValueError, match=r"mean_sd=-1 must be >= 0"):
        random_field(8, mean_sd=-1)


def test_one_d_samples_are_independent():
    """Across samples the spectrum is flat (white): the filter acts along x only."""
    fields = random_field(64, n_samples=64, seed=0).values  # (64, 64): sample, x
    power = (np.abs(np.fft.fft(fields, axis=0)) ** 2).mean(axis=1)  # (64,) over sample freqs
    assert power[1:4].mean() / power[16:33].mean() < 3.0  # a red spectrum would give ~300


def test_stencil_fields_and_cli_states_come_from_random_field():
    from gridformer.cli.solve import random_initial_state
    from gridformer.experiments.stencil_data import random_fields

    np.testing.assert_array_equal(
        random_fields(3, (16, 12), seed=4, kind="smooth", amplitude=1.5),
        random_field((16, 12), spectrum="smooth", n_samples=3, amplitude=1.5, mean_sd=0.5,
                     seed=4).values,
    )
    state = random_initial_state("heat", (12, 16), (0.5,), 2, 7)
    np.testing.assert_array_equal(
        state["u"].values,
        random_field((12, 16), spectrum="smooth", n_samples=2, amplitude=1.0, seed=7).values,
    )
    np.testing.assert_array_equal(state["x"], np.arange(16) * 0.5)
