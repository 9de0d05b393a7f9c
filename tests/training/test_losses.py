"""Losses against numpy/scipy references."""

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, softmax
from scipy.stats import entropy

from gridformer.training import (
    cross_entropy,
    distillation_loss,
    get_loss,
    lat_weighted_mse,
    latitude_weights,
    mse,
)


def test_mse_with_mask_ignores_nan_targets():
    pred = torch.zeros(2, 3, 1)
    target = torch.tensor([[[1.0], [np.nan], [3.0]], [[2.0], [2.0], [2.0]]])
    mask = torch.tensor([[True, False, True], [True, True, True]])
    assert mse(pred, target, mask).item() == pytest.approx((1 + 9 + 4 * 3) / 5)


def test_shape_mismatch_names_the_head():
    with pytest.raises(ValueError, match=r"prediction shape \(2, 3\) does not fit target shape "
                                         r"\(2, 4\); check the head"):
        mse(torch.zeros(2, 3), torch.zeros(2, 4))


def test_latitude_weights_mean_one_and_cosine():
    lat = np.array([-60.0, 0.0, 30.0, 60.0])
    w = latitude_weights(lat).numpy()
    assert w.mean() == pytest.approx(1.0)
    expected = np.cos(np.deg2rad(lat)) / np.cos(np.deg2rad(lat)).mean()
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    with pytest.raises(ValueError, match=r"lie in \[-90, 90\]"):
        latitude_weights(np.array([100.0]))


def test_lat_weighted_mse_matches_numpy():
    rng = np.random.default_rng(0)
    lat = np.array([-45.0, 0.0, 45.0, 80.0])
    pred, target = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))
    w = np.cos(np.deg2rad(lat))
    w = w / w.mean()
    expected = np.mean(w[None, :, None] * (pred - target) ** 2)
    got = lat_weighted_mse(torch.tensor(pred), torch.tensor(target), lat)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_class_and_per_token():
    logits = torch.randn(4, 5)
    labels = torch.tensor([0, 4, 2, 1])
    expected = -np.mean(log_softmax(logits.numpy(), -1)[np.arange(4), labels.numpy()])
    assert cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    assert cross_entropy(torch.randn(2, 6, 3), torch.zeros(2, 6)).ndim == 0
    with pytest.raises(ValueError, match=r"logits \(4, 5\) do not fit labels \(4, 2\)"):
        cross_entropy(logits, torch.zeros(4, 2))


@pytest.mark.parametrize("temperature", [1.0, 2.5])
@pytest.mark.parametrize("direction", ["student_teacher", "teacher_student"])
def test_distillation_matches_hand_computation(temperature, direction):
    rng = np.random.default_rng(3)
    s, t = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)) * 2
    labels = np.array([1, 0, 3])
    lam = 0.3
    ps, pt = softmax(s / temperature, -1), softmax(t / temperature, -1)
    if direction == "student_teacher":  # the reference text: KL(p_student || p_teacher)
        kl = np.mean([entropy(ps[i], pt[i]) for i in range(3)])
    else:  # Hinton / DeiT: KL(p_teacher || p_student)
        kl = np.mean([entropy(pt[i], ps[i]) for i in range(3)])
    ce = -np.mean(log_softmax(s, -1)[np.arange(3), labels])
    expected = lam * temperature**2 * kl + (1 - lam) * ce
    got = distillation_loss(torch.tensor(s), torch.tensor(t), torch.tensor(labels), lam,
                            temperature=temperature, kl_direction=direction)
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_distillation_default_is_reference_order_and_directions_differ():
    s, t = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.5]])
    labels = torch.tensor([0])
    ref = distillation_loss(s, t, labels, lam=1.0)
    ps, pt = torch.softmax(s, -1), torch.softmax(t, -1)
    assert ref.item() == pytest.approx((ps * (ps / pt).log()).sum().item(), rel=1e-6)
    rev = distillation_loss(s, t, labels, lam=1.0, kl_direction="teacher_student")
    assert rev.item() != pytest.approx(ref.item())


def test_distillation_bad_arguments():
    s = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"lam=1.5 must be in \[0, 1\]"):
        distillation_loss(s, s, torch.zeros(2), 1.5)
    with pytest.raises(ValueError, match=r"temperature=0 must be > 0"):
        distillation_loss(s, s, torch.zeros(2), 0.5, temperature=0)
    with pytest.raises(ValueError, match=r"kl_direction='forward' is not one of"):
        distillation_loss(s, s, torch.zeros(2), 0.5, kl_direction="forward")


def test_get_loss():
    assert get_loss("mse") is mse
    with pytest.raises(ValueError, match=r"loss='mae' is not one of"):
        get_loss("mae")
