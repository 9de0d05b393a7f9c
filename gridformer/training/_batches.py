"""One batch, one loss: the function that the training step and the evaluation share.

A :class:`Split` bundles what a batch of one dataset needs (the dataset, its layout, the
layout handed to the model, the loss function); :func:`batch_loss` collates the samples of a
batch, builds their per-sample mask, runs the model (bfloat16 autocast when asked) and returns
the scalar loss. :func:`evaluate_split` averages it over a dataset in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset, default_collate

from gridformer.training.losses import get_loss, lat_weighted_mse

__all__ = ["Split", "as_dataset", "batch_loss", "evaluate_split"]


def as_dataset(data: Any, name: str) -> Dataset:
    """Accept a map-style Dataset of (inputs, target) pairs or a pair of arrays/tensors."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, Sequence) and len(data) == 2 and all(hasattr(a, "shape") for a in data):
        inputs, targets = (torch.as_tensor(np.asarray(a)) if not isinstance(a, Tensor) else a
                           for a in data)
        if inputs.shape[0] != targets.shape[0]:
            msg = f"{name}: {inputs.shape[0]} inputs but {targets.shape[0]} targets"
            raise ValueError(msg)
        return TensorDataset(inputs.float(), targets if not targets.is_floating_point()
                             else targets.float())
    msg = (
        f"{name} must be a torch Dataset of (inputs, target) pairs or a tuple (inputs, targets) "
        f"of arrays, not {type(data).__name__}"
    )
    raise TypeError(msg)


def loss_function(loss: str | Callable[..., Tensor], layout: Any) -> Callable[..., Tensor]:
    """The loss by name or callable; ``"lat_weighted_mse"`` takes latitudes from ``layout``."""
    if loss == "lat_weighted_mse":
        if not getattr(layout, "is_geographic", False):
            msg = "loss='lat_weighted_mse' needs a geographic (lat/lon) layout"
            raise ValueError(msg)
        lat = layout.centers()[layout.spatial_dims[0]]
        return lambda pred, target, mask=None: lat_weighted_mse(pred, target, lat, mask)
    return get_loss(loss)


def _batch_mask(layout: Any, index: list[int], n_samples: int) -> Tensor | None:
    """Per-sample valid masks when ``layout.valid`` has one row per dataset sample."""
    valid = getattr(layout, "valid", None)
    if valid is None or valid.ndim != 2 or valid.shape[0] in (1,) or bool(valid.all()):
        return None
    if valid.shape[0] == n_samples:
        return valid[index]
    return None


def _model_layout(layout: Any, n_samples: int) -> Any:
    """The layout to hand the model when every batch brings its own valid rows (``mask=``).

    ``layout.valid`` with one row per dataset sample describes the whole dataset in its order,
    not a shuffled batch; the model would AND those rows with the batch's ``mask`` whenever a
    batch holds as many samples as the dataset. The returned copy has every token valid, so the
    batch's rows alone decide.
    """
    if _batch_mask(layout, [0], n_samples) is None:
        return layout
    return replace(layout, valid=None)


@dataclass
class Split:
    """A dataset with what its batches need.

    Attributes
    ----------
    dataset
        Map-style dataset of ``(inputs (N, D), target)`` pairs.
    layout
        Layout of the inputs; ``valid`` may hold one row per sample (each batch's mask).
    model_layout
        The layout passed to the model (``layout`` with all tokens valid when the batch masks
        come from per-sample rows).
    loss_fn
        ``(prediction, target[, mask]) -> scalar``.
    """

    dataset: Dataset
    layout: Any
    model_layout: Any
    loss_fn: Callable[..., Tensor]

    @classmethod
    def build(cls, data: Any, name: str, layout: Any, loss: str | Callable[..., Tensor]
              ) -> Split:
        """Wrap ``data`` (dataset or ``(inputs, targets)``) named ``name`` in the messages."""
        dataset = as_dataset(data, name)
        return cls(dataset, layout, _model_layout(layout, len(dataset)),
                   loss_function(loss, layout))


def _collate(dataset: Dataset, index: list[int]) -> tuple[Tensor, Tensor]:
    if isinstance(dataset, TensorDataset):
        inputs, targets = dataset.tensors[:2]
        return inputs[index], targets[index]
    batch = default_collate([dataset[i] for i in index])
    return batch[0], batch[1]


def batch_loss(model: nn.Module, split: Split, index: list[int], *, device: torch.device,
               amp: bool) -> Tensor:
    """Loss of ``model`` on the samples ``index`` of ``split`` (a scalar tensor with grad).

    Inputs of any float dtype go to the model as they are (the model casts them to its
    parameters' dtype); float targets are compared in float32, like the prediction.
    """
    inputs, target = (t.to(device) for t in _collate(split.dataset, index))
    if target.is_floating_point():
        target = target.float()
    mask = _batch_mask(split.layout, index, len(split.dataset))
    mask = mask.to(device) if mask is not None else None
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        prediction = model(inputs, split.model_layout, mask=mask).prediction
        if mask is not None and prediction.ndim == 3:
            return split.loss_fn(prediction.float(), target, mask)
        return split.loss_fn(prediction.float(), target)


@torch.no_grad()
def evaluate_split(model: nn.Module, split: Split, *, batch_size: int, device: torch.device,
                   amp: bool) -> float:
    """Mean of :func:`batch_loss` over ``split`` in order, in eval mode, weighted by batch size."""
    was_training = model.training
    model.eval()
    total, count, n = 0.0, 0, len(split.dataset)
    for lo in range(0, n, batch_size):
        index = list(range(lo, min(lo + batch_size, n)))
        total += float(batch_loss(model, split, index, device=device, amp=amp)) * len(index)
        count += len(index)
    model.train(was_training)
    return total / count
