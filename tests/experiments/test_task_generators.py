"""The experiment tasks (gridformer.datasets.vision_tasks): the planted truth is what it says."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gridformer.datasets import counting_task, occlusion_task, segmentation_task

from gridformer import PatchTokenizer


def patch(values: np.ndarray, row: int, col: int, p: int) -> np.ndarray:
    return values[row * p:(row + 1) * p, col * p:(col + 1) * p]


# ---------------------------------------------------------------- occlusion
@pytest.mark.parametrize("pattern", ["blocks", "stripes"])
def test_occluded_cells_are_nan_and_become_invalid_tokens(pattern):
    data = occlusion_task(6, grid=(16, 32), patch_size=4, fraction=0.25, pattern=pattern,
                          seed=3)
    field, occluded = data.field.values, data.occluded.values
    np.testing.assert_array_equal(np.isnan(field), occluded)
    # whole patches, round(0.25 * 4 * 8) = 8 of them per sample
    per_patch = occluded.reshape(6, 4, 4, 8, 4).transpose(0, 1, 3, 2, 4).reshape(6, 4, 8, 16)
    assert np.all(per_patch.all(-1) == per_patch.any(-1))
    assert per_patch.any(-1).sum(axis=(1, 2)).tolist() == [8] * 6
    _tokens, layout = PatchTokenizer(patch_size=4).encode(data.field)
    np.testing.assert_array_equal(layout.valid.numpy(), ~per_patch.any(-1).reshape(6, 32))
    if pattern == "stripes":  # full-height patch columns, none in the evidence bands
        cols = per_patch.any(-1).all(axis=1)  # (S, px)
        assert cols.sum(-1).tolist() == [2] * 6
        assert not cols[:, :2].any()
        assert not cols[:, -2:].any()


def test_occlusion_label_is_the_xor_of_the_evidence_signs():
    data = occlusion_task(64, grid=(32, 32), patch_size=4, fraction=0.5, background_sd=0.0,
                          evidence_amplitude=2.0, seed=0)
    for s in range(64):
        signs = []
        for side in range(2):
            r, c = int(data.evidence_row[s, side]), int(data.evidence_col[s, side])
            values = patch(data.field.values[s], r, c, 4)
            assert np.all(values == 2.0 * int(data.evidence_sign[s, side]))  # never occluded
            signs.append(np.sign(values[0, 0]))
        assert int(data.label[s]) == int(signs[0] != signs[1])
    assert (data.evidence_col.sel(side="left") < 2).all()
    assert (data.evidence_col.sel(side="right") >= 6).all()
    assert data.attrs["min_evidence_distance"] == 5
    assert 20 < int(data.label.sum()) < 44  # both classes, p = 1/2 each


def test_occlusion_is_reproducible_and_pairs_fractions():
    a = occlusion_task(4, fraction=0.5, seed=7)
    xr.testing.assert_identical(a, occlusion_task(4, fraction=0.5, seed=7))
    clean = occlusion_task(4, fraction=0.0, seed=7)  # same evidence and background
    np.testing.assert_array_equal(a.label, clean.label)
    visible = ~a.occluded.values
    np.testing.assert_array_equal(a.field.values[visible], clean.field.values[visible])
    assert not clean.occluded.any()


def test_occlusion_bad_input():
    with pytest.raises(ValueError, match=r"fraction=1\.0 must be a number in \[0, 1\)"):
        occlusion_task(2, fraction=1.0)
    with pytest.raises(ValueError, match=r"pattern='clouds' is not one of \['blocks', "
                                         r"'stripes'\]"):
        occlusion_task(2, pattern="clouds")
    with pytest.raises(ValueError, match=r"grid=\(30, 32\) must be two sizes \(ny, nx\) that "
                                         r"patch_size=4 divides"):
        occlusion_task(2, grid=(30, 32))
    with pytest.raises(ValueError, match=r"evidence_columns=4 leaves no patch column between "
                                         r"the two evidence bands of a grid 8 patches wide"):
        occlusion_task(2, evidence_columns=4)
    with pytest.raises(ValueError, match=r"fraction=0\.75 asks for 48 missing patches but "
                                         r"stripes between the evidence bands hold at most 32"):
        occlusion_task(2, fraction=0.75, pattern="stripes")
    with pytest.raises(ValueError, match=r"n_samples=0 must be an integer >= 1"):
        occlusion_task(0)


# ---------------------------------------------------------------- counting
def test_counting_label_counts_types_present_on_both_sides():
    data = counting_task(200, patch_grid=(4, 16), n_types=8, n_pairs=3, background_sd=0.0,
                         seed=2)
    pairs = 3
    for s in range(200):
        types = data.half_type.values[s]
        left, right = set(types[:pairs]), set(types[pairs:])
        assert len(left) == len(right) == pairs  # distinct types on each side
        assert int(data.label[s]) == len(left & right)
        partner = data.partner.values[s]
        assert int((partner >= 0).sum()) == 2 * int(data.label[s])
        for h in np.flatnonzero(partner >= 0):
            assert types[partner[h]] == types[h]
            assert partner[partner[h]] == h
        for h in range(2 * pairs):  # the halves are the bank's halves, in their patches
            r, c = int(data.half_row[s, h]), int(data.half_col[s, h])
            bank = data.patterns.values[types[h]]
            expected = bank[:, :4] if h < pairs else bank[:, 4:]
            np.testing.assert_array_equal(patch(data.field.values[s], r, c, 4), expected)
            assert int(data.half_token[s, h]) == r * 16 + c
    assert (data.half_col.values[:, :pairs] < 4).all()
    assert (data.half_col.values[:, pairs:] >= 12).all()
    assert data.attrs["min_half_distance"] == 9
    assert data.attrs["n_classes"] == 4
    counts = np.bincount(data.label.values, minlength=4)
    assert counts.min() > 30  # uniform over 0..3 (expected 50 each)


def test_counting_patterns_do_not_depend_on_the_sample_seed():
    a, b = counting_task(3, seed=0), counting_task(3, seed=1)
    np.testing.assert_array_equal(a.patterns, b.patterns)
    assert not np.array_equal(a.field, b.field)


def test_counting_bad_input():
    with pytest.raises(ValueError, match=r"n_types=5 is too few for n_pairs=3: a sample with no "
                                         r"complete object needs 6 distinct types"):
        counting_task(2, n_types=5, n_pairs=3)
    with pytest.raises(ValueError, match=r"region_columns=8 must leave a gap between the "
                                         r"regions of a grid 16 patches wide"):
        counting_task(2, region_columns=8)


# ---------------------------------------------------------------- segmentation
def test_fronts_label_is_the_sign_of_the_noiseless_field():
    data = segmentation_task(4, grid=(16, 24), kind="fronts", noise=0.0, seed=1)
    np.testing.assert_array_equal(data.label.values, (data.field.values > 0).astype(int))
    assert data.attrs["n_classes"] == 2
    labels = data.label.values
    manual = np.zeros(labels.shape, dtype=bool)
    for s in range(4):
        for y in range(16):
            for x in range(24):
                neighbours = [labels[s, (y + 1) % 16, x], labels[s, y - 1, x],
                              labels[s, y, (x + 1) % 24], labels[s, y, x - 1]]
                manual[s, y, x] = any(n != labels[s, y, x] for n in neighbours)
    np.testing.assert_array_equal(data.boundary.values, manual)


def test_blobs_have_three_classes_and_noise_is_seeded():
    data = segmentation_task(8, kind="blobs", noise=0.3, seed=4)
    assert set(np.unique(data.label.values)) == {0, 1, 2}
    assert data.attrs["n_classes"] == 3
    xr.testing.assert_identical(data, segmentation_task(8, kind="blobs", noise=0.3, seed=4))
    with pytest.raises(ValueError, match=r"kind='waves' is not one of \['fronts', 'blobs'\]"):
        segmentation_task(2, kind="waves")
