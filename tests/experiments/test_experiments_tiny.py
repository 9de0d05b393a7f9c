"""Every experiment of the suite in a tiny setting (seconds each): keys, ranges, and one
property per experiment that holds by construction."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from _checks import check_report, check_summaries
from scipy import stats

from gridformer.experiments import get_experiment, run_experiment
from gridformer.experiments._common import cnn_model, gridformer_model, tokenize
from gridformer.experiments.counting import pairing_share
from gridformer.experiments.segmentation import boundary_f1, mean_iou, rank_correlation

SMALL_MODEL = {"dim": 8, "heads": 2, "depth": 1, "batch_size": 16}


def run_tiny(name: str, **overrides):
    return run_experiment(get_experiment(name), mode="quick", seeds=[0, 1], device="cpu",
                          overrides=overrides)


def in_unit_interval(summary):
    values = np.ravel(np.asarray(summary["values"], dtype=float))
    return bool(np.all((values >= 0) & (values <= 1)))


# ---------------------------------------------------------------- occlusion
def test_occlusion_tiny_keys_and_ranges(tmp_path):
    result = run_tiny("occlusion", grid=[16, 32], occlusion_fractions=[0.25, 0.5],
                      n_train=48, n_test=16, steps=3, cnn_hidden=4, **SMALL_MODEL)
    models = ("vit", "cnn", "cnn_zero_fill")
    check_summaries(result, ["occlusion_fractions", "cnn_receptive_field",
                             *(f"{m}_{k}" for m in models
                               for k in ("accuracy", "accuracy_occluded", "train_loss"))])
    assert result.metrics["occlusion_fractions"]["mean"] == [0.25, 0.5]
    for m in models:
        assert in_unit_interval(result.metrics[f"{m}_accuracy"])
        assert len(result.metrics[f"{m}_accuracy_occluded"]["mean"]) == 2
        assert in_unit_interval(result.metrics[f"{m}_accuracy_occluded"])
    assert result.metrics["cnn_receptive_field"]["values"] == [13.0, 13.0]  # 1 + 6 * (3 - 1)
    assert "(50% of patches missing)" in result.verdict.text
    check_report(result, tmp_path)


def test_occluded_tokens_are_never_read_by_either_model():
    """What the occlusion experiment rests on: the values behind missing cells do not matter."""
    from gridformer.datasets import occlusion_task

    settings = {**get_experiment("occlusion").quick, **SMALL_MODEL, "cnn_hidden": 4}
    data = occlusion_task(8, grid=(16, 32), fraction=0.5, seed=0)
    tokens, layout = tokenize(data.field, 4)
    invalid = ~layout.valid  # (S, N)
    assert invalid.sum(1).tolist() == [16] * 8
    assert torch.all(tokens[invalid] == 0)  # NaN cells hold the fill value
    noisy = tokens.clone()
    noisy[invalid] = torch.randn(int(invalid.sum()), tokens.shape[-1]) * 5
    shared = dataclasses.replace(layout, valid=None)
    torch.manual_seed(0)
    for model in (gridformer_model(settings, in_features=16, out_features=2, head="class",
                                   patch_grid=(4, 8)),
                  cnn_model(settings, in_features=16, out_features=2, head="class")):
        model.eval()
        a = model(tokens, shared, mask=layout.valid).prediction
        b = model(noisy, shared, mask=layout.valid).prediction
        torch.testing.assert_close(a, b)
        c = model(noisy, shared).prediction  # zero fill: the gaps are read as data
        assert not torch.allclose(a, c)


# ---------------------------------------------------------------- counting
def test_counting_tiny_keys_chance_and_receptive_field(tmp_path):
    result = run_tiny("counting", n_train=48, n_test=16, steps=3, cnn_hidden=4, **SMALL_MODEL)
    check_summaries(result, ["vit_accuracy", "cnn_accuracy", "chance_accuracy",
                             "pairing_attention", "vit_train_loss", "cnn_train_loss",
                             "cnn_receptive_field", "min_half_distance"])
    m = result.metrics
    assert m["chance_accuracy"]["values"] == [0.25, 0.25]  # 1 / (n_pairs + 1) classes
    # no CNN window (receptive_field patches wide) holds both halves of an object
    assert m["cnn_receptive_field"]["mean"] - 1 < m["min_half_distance"]["mean"]
    assert (m["cnn_receptive_field"]["mean"], m["min_half_distance"]["mean"]) == (9.0, 9.0)
    for key in ("vit_accuracy", "cnn_accuracy", "pairing_attention"):
        assert in_unit_interval(m[key])
    check_report(result, tmp_path)


def test_pairing_share_counts_the_partner_as_the_strongest_other_key():
    from gridformer.datasets import counting_task

    data = counting_task(3, seed=5)
    n, heads = 64, 2
    attention = torch.full((3, heads, n, n), 0.1)
    tokens, partner = data.half_token.values, data.partner.values
    for s in range(3):
        for h in np.flatnonzero(partner[s] >= 0):
            q, k = tokens[s, h], tokens[s, partner[s, h]]
            attention[s, :, q, q] = 0.9  # the query itself is strongest: left out
            attention[s, 0, q, k] = 0.5  # head 0 pairs
            attention[s, 1, q, (k + 1) % n] = 0.5  # head 1 looks next door
    shares = pairing_share((attention,), data)
    assert shares.shape == (1, 2)
    assert shares[0].tolist() == [1.0, 0.0]


# ---------------------------------------------------------------- segmentation
def test_segmentation_tiny_keys_and_interval(tmp_path):
    result = run_tiny("segmentation", grid=[16, 16], n_train=32, n_test=70, steps=3,
                      bootstrap=40, **SMALL_MODEL)
    check_summaries(result, ["mean_iou", "boundary_f1", "sharpness_boundary_correlation",
                             "sharpness_boundary_correlation_low",
                             "sharpness_boundary_correlation_high", "boundary_token_share",
                             "train_loss"])
    m = result.metrics
    for key in ("mean_iou", "boundary_f1", "boundary_token_share"):
        assert in_unit_interval(m[key])
    for r, lo, hi in zip(m["sharpness_boundary_correlation"]["values"],
                         m["sharpness_boundary_correlation_low"]["values"],
                         m["sharpness_boundary_correlation_high"]["values"], strict=True):
        assert -1 <= lo <= hi <= 1
        assert -1 <= r <= 1
    check_report(result, tmp_path)


def test_segmentation_scores_by_hand():
    truth = np.zeros((1, 8, 16), dtype=int)
    truth[0, :, 8:] = 1  # fronts between x = 7, 8 and (periodic) x = 15, 0
    assert mean_iou(truth, truth, 2) == 1.0
    assert boundary_f1(truth, truth) == 1.0
    shifted = np.roll(truth, 1, axis=-1)  # fronts one cell off: within the tolerance
    assert boundary_f1(shifted, truth) == 1.0
    assert mean_iou(shifted, truth, 2) == pytest.approx(7 / 9)  # 7 of 9 columns per class
    # two cells off: boundary columns {1, 2, 9, 10} vs {0, 7, 8, 15}, half within one cell
    assert boundary_f1(np.roll(truth, 2, axis=-1), truth) == pytest.approx(0.5)
    assert boundary_f1(np.roll(truth, 3, axis=-1), truth) == 0.0
    flat = np.zeros_like(truth)
    assert boundary_f1(flat, truth) == 0.0
    assert mean_iou(flat, truth, 2) == pytest.approx((0.5 + 0.0) / 2)
    x, y = np.array([0.1, 0.4, 0.2, 0.9]), np.array([1.0, 0.5, 0.75, 0.25])
    assert rank_correlation(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert math.isnan(rank_correlation(x, np.ones(4)))


# ---------------------------------------------------------------- resolution
def test_resolution_ratio_on_the_training_grid_is_one():
    result = run_tiny("resolution", train_grid=[8, 8], eval_grids=[[8, 8]], n_train=16,
                      n_test=4, steps=3, **SMALL_MODEL)
    names = ("absolute", "relative", "geodesic")
    check_summaries(result, [f"{n}_{k}" for n in names for k in
                             ("error_ratio", "error_train_grid", "error_ratio_by_grid",
                              "train_loss")])
    for name in names:
        assert result.metrics[f"{name}_error_ratio"]["values"] == [1.0, 1.0]
        assert result.metrics[f"{name}_error_train_grid"]["mean"] > 0


def test_resolution_tiny_on_new_grids(tmp_path):
    result = run_tiny("resolution", train_grid=[8, 8], eval_grids=[[16, 8], [8, 12]],
                      encodings=["absolute", "relative"], n_train=16, n_test=4, steps=3,
                      **SMALL_MODEL)
    ratio = result.metrics["relative_error_ratio"]
    by_grid = result.metrics["relative_error_ratio_by_grid"]
    assert len(by_grid["mean"]) == 2
    assert ratio["values"] == pytest.approx([np.mean(v) for v in by_grid["values"]])
    assert "relative" in result.verdict.text
    assert "absolute (interpolated)" in result.verdict.text
    check_report(result, tmp_path)


# ---------------------------------------------------------------- stencil
def test_stencil_in_the_harness_learns_the_heat_stencil(tmp_path):
    result = run_tiny("stencil", grid=[8, 8], rollout_steps=5, n_rollout=1, steps=30)
    check_summaries(result, ["max_abs_error", "mass_in_support", "effective_max_abs_error",
                             "rollout_rel_l2", "train_seconds"])
    m = result.metrics
    assert max(m["max_abs_error"]["values"]) < 1e-2
    assert min(m["mass_in_support"]["values"]) > 0.99
    assert result.verdict.outcome == "holds"
    check_report(result, tmp_path)
