"""Training losses: MSE, latitude-weighted MSE, cross-entropy, knowledge distillation.

All return a scalar tensor (mean over the batch). Field losses take an optional ``(B, N)`` bool
``mask`` of valid tokens; masked tokens contribute nothing (NaN targets there are ignored).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "LOSSES",
    "cross_entropy",
    "distillation_loss",
    "get_loss",
    "lat_weighted_mse",
    "latitude_weights",
    "mse",
]


def _check_same_shape(prediction: Tensor, target: Tensor, name: str) -> None:
    if prediction.shape != target.shape:
        msg = (
            f"{name}: prediction shape {tuple(prediction.shape)} does not fit target shape "
            f"{tuple(target.shape)}; check the head ('field' gives (B, N, out_features), "
            f"'index'/'class' give (B, out_features)) and out_features"
        )
        raise ValueError(msg)


def _weighted_mean_sq(prediction: Tensor, target: Tensor, weight: Tensor | None,
                      mask: Tensor | None) -> Tensor:
    diff = prediction - target
    if mask is not None:
        keep = mask.reshape(*mask.shape, *(1,) * (diff.ndim - mask.ndim))  # (B, N, 1...)
        diff = torch.where(keep, diff, torch.zeros_like(diff))
    sq = diff.square()
    if weight is not None:
        sq = sq * weight.reshape(-1, *(1,) * (diff.ndim - 2))  # (N, 1...) over (B, N, ...)
    if mask is None:
        return sq.mean()
    keep = keep.expand_as(sq)
    return sq.sum() / keep.sum().clamp(min=1)


def mse(prediction: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error over all entries (valid tokens only when ``mask`` is given)."""
    _check_same_shape(prediction, target, "mse")
    return _weighted_mean_sq(prediction, target, None, mask)


def latitude_weights(lat: Tensor | np.ndarray) -> Tensor:
    """``cos(lat)`` weights from latitudes in degrees, normalised to mean 1 (graphcast style).

    A float32 tensor view of :func:`gridformer.datasets.lat_weights`, shape ``(N,)`` for
    ``lat`` ``(N,)`` (e.g. token-centre latitudes, which may repeat).
    """
    from gridformer.datasets import lat_weights

    values = lat.detach().cpu().numpy() if isinstance(lat, Tensor) else np.asarray(lat)
    return torch.from_numpy(lat_weights(values).values).float()


def lat_weighted_mse(prediction: Tensor, target: Tensor, lat: Tensor | np.ndarray,
                     mask: Tensor | None = None) -> Tensor:
    """MSE over ``(B, N, ...)`` with token ``n`` weighted by ``latitude_weights(lat)[n]``.

    ``lat`` holds the token-centre latitude in degrees, ``(N,)`` (``layout.centers()["lat"]``).
    """
    _check_same_shape(prediction, target, "lat_weighted_mse")
    w = latitude_weights(lat).to(prediction.device, prediction.dtype)
    if prediction.ndim < 2 or prediction.shape[1] != w.shape[0]:
        msg = (
            f"lat_weighted_mse: prediction {tuple(prediction.shape)} needs (B, N={w.shape[0]}, "
            f"...) tokens to match the {w.shape[0]} latitudes (use head='field')"
        )
        raise ValueError(msg)
    return _weighted_mean_sq(prediction, target, w, mask)


def cross_entropy(logits: Tensor, labels: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cross-entropy of logits ``(B, C)`` with labels ``(B,)``, or per token ``(B, N, C)`` with
    ``(B, N)`` (segmentation; ``mask`` drops invalid tokens)."""
    if labels.shape != logits.shape[:-1]:
        msg = (
            f"cross_entropy: logits {tuple(logits.shape)} do not fit labels "
            f"{tuple(labels.shape)}; labels must have the logits' shape without the class axis"
        )
        raise ValueError(msg)
    labels = labels.long()
    if mask is not None and logits.ndim == 3:
        return F.cross_entropy(logits[mask], labels[mask])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor,
                      lam: float, temperature: float = 1.0,
                      kl_direction: str = "student_teacher") -> Tensor:
    """Knowledge-distillation loss, by default exactly as the project's reference text writes it::

        L = lam * KL(p_student || p_teacher) + (1 - lam) * CE(student_logits, labels)

    with ``p = softmax(logits / temperature)`` and ``KL(p || q) = sum_c p_c log(p_c / q_c)``,
    averaged over the batch.

    ``kl_direction="teacher_student"`` uses ``KL(p_teacher || p_student)`` instead, the order of
    Hinton et al. (2015) and DeiT (Touvron et al. 2021): the student must cover every class the
    teacher gives mass to (mass-covering), whereas ``KL(p_student || p_teacher)`` is
    mode-seeking (the student is punished only where it puts mass the teacher does not).

    Temperature: the KL term is multiplied by ``temperature**2`` (Hinton et al.), because the
    gradients of softened softmaxes shrink as ``1 / T**2``; this keeps the balance set by
    ``lam`` independent of ``T``. At ``temperature=1`` the factor is 1 and the formula above holds
    exactly. The cross-entropy always uses the unscaled student logits and hard labels.

    Parameters
    ----------
    student_logits, teacher_logits
        ``(B, C)`` logits (the teacher's are detached).
    labels
        ``(B,)`` integer class labels.
    lam
        Weight of the KL term, in [0, 1].
    temperature
        Softmax temperature T > 0 for the KL term.
    kl_direction
        ``"student_teacher"`` (reference text) or ``"teacher_student"`` (Hinton / DeiT).
    """
    if not 0.0 <= lam <= 1.0:
        msg = f"lam={lam!r} must be in [0, 1]"
        raise ValueError(msg)
    if not temperature > 0:
        msg = f"temperature={temperature!r} must be > 0"
        raise ValueError(msg)
    if kl_direction not in ("student_teacher", "teacher_student"):
        msg = f"kl_direction={kl_direction!r} is not one of ['student_teacher', 'teacher_student']"
        raise ValueError(msg)
    if student_logits.shape != teacher_logits.shape:
        msg = (
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} must have the same shape"
        )
        raise ValueError(msg)
    log_s = F.log_softmax(student_logits / temperature, dim=-1)  # (B, C)
    log_t = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)  # (B, C)
    if kl_direction == "student_teacher":
        kl = (log_s.exp() * (log_s - log_t)).sum(-1).mean()
    else:
        kl = (log_t.exp() * (log_t - log_s)).sum(-1).mean()
    ce = F.cross_entropy(student_logits, labels.long())
    return lam * temperature**2 * kl + (1.0 - lam) * ce


#: Losses that ``fit(loss=...)`` accepts by name.
LOSSES: dict[str, Callable[..., Tensor]] = {
    "mse": mse,
    "lat_weighted_mse": lat_weighted_mse,
    "cross_entropy": cross_entropy,
}


def get_loss(name: str | Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Resolve a loss by name (``LOSSES``) or return a callable unchanged."""
    if callable(name):
        return name
    if name not in LOSSES:
        msg = f"loss={name!r} is not one of {sorted(LOSSES)} (or pass a callable)"
        raise ValueError(msg)
    return LOSSES[name]
