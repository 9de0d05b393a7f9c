"""Part 2 of the suite (spatiotemporal, distillation, linear-probe) in tiny settings: keys,
ranges, one by-construction property each, and bad input refused before any training."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from _checks import check_report, check_summaries

import gridformer.experiments.distillation as distillation
import gridformer.experiments.linear_probe as linear_probe
from gridformer.experiments import get_experiment, run_experiment
from gridformer.experiments.spatiotemporal import (
    PerFrameModel,
    self_past_attention,
    temporal_fraction,
)

SMALL_MODEL = {"dim": 8, "heads": 2, "depth": 1, "batch_size": 16}
TINY_KD = {"grid": [16, 16], "n_train": 48, "n_test": 16, "steps": 3, "teacher_steps": 3,
           "cnn_hidden": 4, "cnn_layers": 2, "student_fraction": 0.5, **SMALL_MODEL}
TINY_PROBE = {"grid": [16, 16], "n_pretrain": 16, "pretrain_steps": 3, "n_train": 24,
              "n_test": 16, "steps": 3, "probe_steps": 5, "label_fractions": [0.5, 1.0],
              **SMALL_MODEL}


def in_unit_interval(summary):
    values = np.ravel(np.asarray(summary["values"], dtype=float))
    return bool(np.all((values >= 0) & (values <= 1)))


def run_tiny(name: str, **overrides):
    return run_experiment(get_experiment(name), mode="quick", seeds=[0, 1], device="cpu",
                          overrides=overrides)


def refuse(*args, **kwargs):
    raise AssertionError("training started")


# ---------------------------------------------------------------- spatiotemporal
def test_spatiotemporal_tiny_keys_and_ranges(tmp_path):
    result = run_tiny("spatiotemporal", n_train=16, n_test=8, steps=2, **SMALL_MODEL)
    check_summaries(result, [
        "temporal_attention_fraction", "temporal_attention_uniform",
        "motion_self_past_correlation", "spacetime_error", "spatial_only_error",
        "temporal_attention_by_layer", "self_past_attention_still", "self_past_attention_fast",
        "still_patch_share", "spacetime_train_loss", "spatial_only_train_loss"], ordered=True)
    m = result.metrics
    assert m["temporal_attention_uniform"]["values"] == [0.75, 0.75]  # 3 of 4 frames
    for key in ("temporal_attention_fraction", "self_past_attention_fast", "still_patch_share"):
        assert in_unit_interval(m[key]), key
    assert all(-1 <= r <= 1 for r in m["motion_self_past_correlation"]["values"])
    assert min(m["spacetime_error"]["values"] + m["spatial_only_error"]["values"]) > 0
    assert "(uniform attention would put 0.75 on other frames)" in result.verdict.text
    check_report(result, tmp_path)


def test_attention_measures_on_planted_maps():
    """Frame-major tokens, 3 frames of 4 patches: the measures read what was planted."""
    T, Ns = 3, 4
    N = T * Ns
    time_index = np.repeat(np.arange(T), Ns)
    self_only = torch.eye(N)[None, None]  # (1, 1, N, N)
    assert torch.all(temporal_fraction(self_only, time_index) == 0)
    past = torch.zeros(1, 1, N, N)
    q = torch.arange(Ns, N)
    past[..., q, q - Ns] = 1.0  # every query of frame >= 1 looks at itself one frame back
    past[..., :Ns, :Ns] = torch.eye(Ns)
    assert self_past_attention(past, Ns).tolist() == [[[1.0] * (N - Ns)]]
    assert temporal_fraction(past, time_index)[0, 0].tolist() == [0.0] * Ns + [1.0] * (N - Ns)
    uniform = torch.full((1, 1, N, N), 1 / N)
    torch.testing.assert_close(temporal_fraction(uniform, time_index),
                               torch.full((1, 1, N), (T - 1) / T))


def test_per_frame_model_never_mixes_frames():
    """The spatial-only baseline: changing frame 0 leaves every other frame's features alone."""
    from gridformer.datasets import moving_blobs

    from gridformer import PatchTokenizer
    from gridformer.model import GridFormer, GridFormerConfig

    clip = moving_blobs(2, n_frames=3, seed=0).field
    x, layout = PatchTokenizer(4, time_patch=1, time_dim="time", dtype=torch.float32).encode(
        clip, periodic=True)
    _, frame_layout = PatchTokenizer(4, dtype=torch.float32).encode(
        clip.isel(time=0).drop_vars("time"), periodic=True)
    torch.manual_seed(0)
    encoder = GridFormer(GridFormerConfig(in_features=16, out_features=1, dim=8, heads=2,
                                          depth=2))
    model = PerFrameModel(encoder, frame_layout, n_frames=3, out_features=16).eval()
    changed = x.clone()
    changed[:, :16] += torch.randn(2, 16, 16)  # frame 0 is the first 16 tokens
    a, b = model(x, layout, return_attention=True), model(changed, layout)
    assert a.prediction.shape == (2, 16, 16)
    assert a.attention[0].shape == (6, 2, 16, 16)  # (B * T, H, Ns, Ns): within frames only
    per_frame = a.features.reshape(2, 16, 3, 8), b.features.reshape(2, 16, 3, 8)
    torch.testing.assert_close(per_frame[0][:, :, 1:], per_frame[1][:, :, 1:])
    assert not torch.allclose(per_frame[0][:, :, 0], per_frame[1][:, :, 0])


# ---------------------------------------------------------------- distillation
def test_distillation_tiny_keys_and_ranges(tmp_path):
    result = run_tiny("distillation", **TINY_KD)
    check_summaries(result, [
        "teacher_accuracy", "student_accuracy", "student_kd_accuracy", "kd_gain",
        "student_kd_accuracy_hinton", "kd_gain_hinton", "chance_accuracy", "student_samples",
        "sweep_lambda", "sweep_temperature", "sweep_accuracy_student_teacher",
        "sweep_accuracy_teacher_student"], ordered=True)
    m = result.metrics
    for key in ("teacher_accuracy", "student_accuracy", "student_kd_accuracy",
                "student_kd_accuracy_hinton", "sweep_accuracy_student_teacher"):
        assert in_unit_interval(m[key]), key
    assert m["chance_accuracy"]["values"] == [1 / 6, 1 / 6]
    assert m["student_samples"]["values"] == [24.0, 24.0]  # half of 48
    assert m["kd_gain"]["values"] == pytest.approx(
        np.subtract(m["student_kd_accuracy"]["values"], m["student_accuracy"]["values"]))
    assert m["sweep_temperature"]["values"][0] == [1.0, 4.0]
    assert "Hinton's KL(p_teacher||p_student)" in result.verdict.text
    check_report(result, tmp_path)


def test_lambda_zero_student_is_the_plain_student():
    """With lam = 0 the distillation loss is the cross-entropy: the same weights, bit for bit."""
    settings = {**distillation.QUICK, **TINY_KD}
    x, labels, layout = distillation._data(settings, 24, seed=3)
    teacher_logits = torch.randn(24, 6) * 3
    plain = distillation.train_student(settings, x, labels, layout, seed=0, device="cpu")
    kd0 = distillation.train_student(settings, x, labels, layout, seed=0, device="cpu",
                                     teacher_logits=teacher_logits, lam=0.0, temperature=4.0,
                                     direction="teacher_student")
    kd = distillation.train_student(settings, x, labels, layout, seed=0, device="cpu",
                                    teacher_logits=teacher_logits, lam=0.5)
    for (name, a), b in zip(plain.state_dict().items(), kd0.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, c) for a, c in zip(plain.state_dict().values(),
                                                      kd.state_dict().values(), strict=True))


def test_teacher_checkpoint_that_does_not_fit_is_refused_before_training(tmp_path,
                                                                         monkeypatch):
    from gridformer.model import LocalCNN
    from gridformer.training import save_checkpoint

    monkeypatch.setattr(distillation, "train", refuse)
    wrong = save_checkpoint(tmp_path / "wrong.pt", LocalCNN(16, 3, head="class"))
    message = (
        f"teacher_checkpoint={str(wrong)!r} holds a LocalCNN with in_features=16, "
        f"out_features=3, head='class'; this task needs a GridFormer or LocalCNN with "
        f"in_features=16, out_features=6, head='class' (4 x 4 patches of one field, 6 slope "
        f"classes)")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        run_tiny("distillation", **TINY_KD, teacher_checkpoint=str(wrong))
    good = LocalCNN(16, 6, hidden=4, layers=2, head="class")
    path = save_checkpoint(tmp_path / "good.pt", good)
    settings = {**distillation.QUICK, **TINY_KD, "teacher_checkpoint": str(path)}
    distillation.check_settings(settings)  # fits the task
    loaded = distillation.load_teacher(settings)
    for a, b in zip(good.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("fraction", [0, 1.5, -0.1])
def test_student_fraction_outside_unit_interval_is_refused(monkeypatch, fraction):
    monkeypatch.setattr(distillation, "train", refuse)
    with pytest.raises(ValueError, match=rf"student_fraction={fraction!r} must be a fraction "
                                         r"of the training samples in \(0, 1\]"):
        run_tiny("distillation", **{**TINY_KD, "student_fraction": fraction})


# ---------------------------------------------------------------- linear-probe
def test_linear_probe_tiny_keys_and_ranges(tmp_path):
    result = run_tiny("linear-probe", **TINY_PROBE)
    check_summaries(result, ["linear_probe_score", "finetune_score", "scratch_score",
                             "probe_gap", "label_fractions", "pretrain_error",
                             "chance_accuracy"], ordered=True)
    m = result.metrics
    assert m["label_fractions"]["values"] == [[0.5, 1.0], [0.5, 1.0]]
    for key in ("linear_probe_score", "finetune_score", "scratch_score"):
        assert in_unit_interval(m[key]), key
        assert len(m[key]["mean"]) == 2
    gap = np.subtract(m["finetune_score"]["values"], m["linear_probe_score"]["values"])
    assert np.asarray(m["probe_gap"]["values"]) == pytest.approx(gap)
    assert min(m["pretrain_error"]["values"]) > 0
    assert "with 100% of the labels" in result.verdict.text
    check_report(result, tmp_path)


def test_linear_probe_leaves_the_frozen_encoder_unchanged():
    settings = {**linear_probe.QUICK, **TINY_PROBE}
    x, layout = _slope_tokens(settings, 24, seed=0)
    labels = torch.arange(24) % 6
    torch.manual_seed(0)
    encoder = linear_probe.finetune_model(settings, None, 16, (4, 4), seed=0)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    score = linear_probe.linear_probe(encoder, x, labels, layout, (x, labels, layout),
                                      n_classes=6, steps=20, lr=1e-2, seed=0, device="cpu")
    assert 0 <= score <= 1
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, before[key]), key
    tuned = linear_probe.finetune_model(settings, encoder, 16, (4, 4), seed=1)
    for key, value in tuned.state_dict().items():  # pretrained weights, new head
        if not key.startswith("head."):
            assert torch.equal(value, before[key]), key


def _slope_tokens(settings, n, seed):
    from gridformer.experiments._common import tokenize

    return tokenize(linear_probe._task(settings, n, seed).field, 4, periodic=True)


@pytest.mark.parametrize("fractions", [[0.0, 0.5], [0.5, 1.2], []])
def test_label_fraction_outside_unit_interval_is_refused(monkeypatch, fractions):
    monkeypatch.setattr(linear_probe, "_pretrain", refuse)
    monkeypatch.setattr(linear_probe, "train", refuse)
    with pytest.raises(ValueError, match=r"every label fraction must be in \(0, 1\]"):
        run_tiny("linear-probe", **{**TINY_PROBE, "label_fractions": fractions})


# ---------------------------------------------------------------- generators
def test_moving_blobs_sit_where_planted():
    from gridformer.datasets import moving_blobs

    clips = moving_blobs(6, grid=(16, 20), n_frames=4, n_blobs=1, max_speed=2, seed=1)
    signal = (clips.field - clips.background).values  # (S, T, y, x): the blob alone
    for s in range(6):
        start, v = clips.start.values[s, 0], clips.velocity.values[s, 0]
        for t in range(4):
            peak = np.unravel_index(signal[s, t].argmax(), (16, 20))
            centre = (start + v * t) % (16, 20)
            distance = np.abs((np.asarray(peak) - centre + (8, 10)) % (16, 20) - (8, 10))
            assert np.all(distance <= 0.5), (s, t)
    still = clips.speed.values[:, 0] == 0
    frames = clips.field.values
    assert np.array_equal(still, [np.array_equal(f[0], f[-1]) for f in frames])


def test_advection_clips_shift_exactly_at_courant_one():
    from gridformer.datasets import advection_clips

    clips = advection_clips(4, n_frames=3, courant=(1.0, -1.0), steps_per_frame=2, seed=0)
    for s in range(4):
        v = clips.velocity.values[s].astype(int)  # +-2 cells per frame per axis
        for t in range(2):
            shifted = np.roll(clips.field.values[s, t], tuple(v), axis=(0, 1))
            np.testing.assert_allclose(clips.field.values[s, t + 1], shifted, atol=1e-12)


def test_spectral_slopes_order_the_roughness():
    from gridformer.datasets import spectral_slope_task

    task = spectral_slope_task(240, noise_sd=0.0, seed=0)
    rough = (np.diff(task.field.values, axis=-1) ** 2).mean(axis=(1, 2))  # (S,)
    per_class = [rough[task.label.values == k].mean() for k in range(6)]
    assert np.all(np.diff(per_class) < 0)  # slopes -1 ... -3.5: ever smoother
    with pytest.raises(ValueError, match=r"slopes=\(-1.0,\) must be at least two different"):
        spectral_slope_task(4, slopes=(-1.0,))


def test_spatiotemporal_unknown_task_is_refused_before_training(monkeypatch):
    import gridformer.experiments.spatiotemporal as spatiotemporal

    monkeypatch.setattr(spatiotemporal, "train", refuse)
    with pytest.raises(ValueError, match=r"tasks=\['blobs', 'waves'\] must be a non-empty list "
                                         r"of 'blobs' and / or 'advection'"):
        run_tiny("spatiotemporal", tasks=["blobs", "waves"])


def test_gridformer_teacher_is_the_larger_transformer():
    from gridformer.model import GridFormer

    settings = {**distillation.QUICK, **TINY_KD, "teacher": "gridformer", "teacher_dim": 16,
                "teacher_depth": 2}
    x, labels, layout = distillation._data(settings, 16, seed=0)
    teacher = distillation._teacher(settings, x, labels, layout, seed=0, device="cpu")
    assert isinstance(teacher, GridFormer)
    assert (teacher.config.dim, teacher.config.depth, teacher.config.out_features) == (16, 2, 6)
    with pytest.raises(ValueError, match=r"teacher='resnet' is not one of \['cnn', "
                                         r"'gridformer'\]"):
        distillation.check_settings({**settings, "teacher": "resnet"})
