"""Pieces the suite's experiments share: seeds, tokens, the two model families, train, predict.

- :func:`derive_seed` — independent, reproducible seeds for each data split of a run.
- :func:`tokenize` — a ``(sample, y, x)`` field to float32 patch tokens and their layout
  (NaN patches become invalid tokens).
- :func:`gridformer_model` / :func:`cnn_model` — the transformer and the local CNN with a stated
  receptive field, built from an experiment's settings.
- :func:`train` — :func:`gridformer.training.fit` with the settings' budget.
- :func:`predict` — batched inference honouring per-sample valid masks, optionally with the
  attention maps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn

__all__ = ["cnn_model", "derive_seed", "gridformer_model", "predict", "tokenize", "train"]


def derive_seed(seed: int, *tags: int) -> int:
    """A 31-bit seed from ``seed`` and integer tags (split, fraction index, ...), independent
    across tags (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(seed), *map(int, tags)]).generate_state(1)[0] >> 1)


def tokenize(field: xr.DataArray, patch_size: int, *, periodic: bool = False
             ) -> tuple[Tensor, Any]:
    """``field`` ``(sample, y, x)`` -> float32 tokens ``(sample, N, patch_size**2)`` + layout.

    NaN cells hold 0 in the tokens; a patch whose cells are all NaN is an invalid token
    (``layout.valid`` has one row per sample).
    """
    from gridformer import PatchTokenizer

    tokenizer = PatchTokenizer(patch_size=patch_size, dtype=torch.float32)
    return tokenizer.encode(field, periodic=periodic)


def gridformer_model(settings: Mapping[str, Any], *, in_features: int, out_features: int,
                     head: str, patch_grid: tuple[int, ...], position: str | None = None
                     ) -> nn.Module:
    """GridFormer from ``settings`` (``dim``, ``depth``, ``heads``, ``mlp_ratio``, ``position``,
    optionally ``max_relative_offset``).

    By default the relative table reaches across the whole patch grid (``max_relative_offset``
    = its largest side), so no pair of tokens shares a clipped entry; ``reference_grid`` is the
    training patch grid (used by ``position="absolute"``).
    """
    from gridformer.model import GridFormer, GridFormerConfig

    position = position or settings.get("position", "relative")
    extra: dict[str, Any] = {}
    if position == "geodesic":
        extra["distance_scale_km"] = 1.0  # grid units on y/x layouts
    config = GridFormerConfig(
        in_features=in_features, out_features=out_features, dim=settings["dim"],
        depth=settings["depth"], heads=settings["heads"], mlp_ratio=settings["mlp_ratio"],
        position=position, head=head, pool="mean",
        max_relative_offset=settings.get("max_relative_offset", max(patch_grid)),
        reference_grid=tuple(patch_grid), **extra)
    return GridFormer(config)


def cnn_model(settings: Mapping[str, Any], *, in_features: int, out_features: int,
              head: str) -> nn.Module:
    """LocalCNN from ``settings`` (``cnn_hidden``, ``cnn_layers``, ``cnn_kernel``); its
    ``receptive_field`` (in patches) is ``1 + cnn_layers * (cnn_kernel - 1)``."""
    from gridformer.model import LocalCNN

    return LocalCNN(in_features, out_features, hidden=settings["cnn_hidden"],
                    layers=settings["cnn_layers"], kernel_size=settings["cnn_kernel"], head=head)


def train(model: nn.Module, tokens: Tensor, targets: Tensor, layout: Any, *,
          settings: Mapping[str, Any], device: Any, seed: int, loss: Any = "cross_entropy"
          ) -> float:
    """Fit ``model`` with the settings' ``steps``, ``lr`` and ``batch_size``; returns the mean
    training loss over the last 10% of the steps."""
    from gridformer.training import fit

    history = fit(model, (tokens, targets), layout=layout, loss=loss, steps=settings["steps"],
                  lr=settings["lr"], batch_size=settings["batch_size"], device=device, seed=seed)
    tail = max(1, len(history.train_loss) // 10)
    return float(np.mean(history.train_loss[-tail:]))


@torch.no_grad()
def predict(model: nn.Module, tokens: Tensor, layout: Any, *, device: Any,
            batch_size: int = 128, attention: bool = False
            ) -> tuple[Tensor, list[tuple[Tensor, ...]] | None]:
    """Predictions ``(S, ...)`` on CPU, in order, in eval mode; with ``attention=True`` also
    every batch's per-layer attention maps (on CPU).

    ``layout.valid`` may have one row per sample (each batch gets its rows as ``mask=``).
    """
    model.eval()
    model.to(device)
    valid = torch.as_tensor(layout.valid)
    per_sample = valid.shape[0] == tokens.shape[0] and valid.shape[0] > 1
    shared = dataclasses.replace(layout, valid=None) if per_sample else layout
    out, maps = [], [] if attention else None
    for lo in range(0, tokens.shape[0], batch_size):
        index = slice(lo, lo + batch_size)
        mask = valid[index].to(device) if per_sample else None
        kwargs = {"return_attention": True} if attention else {}
        result = model(tokens[index].to(device), shared, mask=mask, **kwargs)
        out.append(result.prediction.float().cpu())
        if maps is not None:
            maps.append(tuple(a.float().cpu() for a in result.attention))
    return torch.cat(out), maps
