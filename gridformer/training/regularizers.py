"""Attention regularisers: loss terms that pull attention towards a local, readable stencil.

Both take what ``GridFormer(..., return_attention=True).attention`` returns (one ``(B, H, N, N)``
tensor per layer, or a single tensor) and return a differentiable scalar, to be added to the
data loss with a weight::

    out = model(tokens, layout, return_attention=True)
    loss = mse(out.prediction, target) + 1e-2 * attention_locality_penalty(out.attention, layout)

- :func:`attention_locality_penalty` — the attention-weighted distance *beyond* a radius,
  ``mean_q sum_k A[q, k] * max(d(q, k) - radius, 0)`` (grid cells, or km on lat/lon layouts):
  zero for any row inside the radius, so it leaves the weights within a stencil free and only
  charges the mass that leaks outside it, by how far it leaks.
- :func:`attention_entropy_penalty` — the mean row entropy ``-sum_k A log A`` (nats), which
  charges diffuse rows: a tail of mass ``eps`` spread evenly over ``n`` keys costs about
  ``eps * log(n / eps)``.

Rows of invalid query tokens (``layout.valid`` False) are left out of the means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["attention_entropy_penalty", "attention_locality_penalty"]


def _layers(attention: Any, layers: int | Sequence[int] | None) -> list[Tensor]:
    """The selected ``(B, H, N, N)`` tensors of ``attention`` (one tensor or one per layer)."""
    if hasattr(attention, "attention") and not isinstance(attention, Tensor):
        attention = attention.attention
    if attention is None:
        msg = ("attention=None: call the model with return_attention=True to regularise its "
               "attention")
        raise ValueError(msg)
    per_layer = [attention] if isinstance(attention, Tensor) else list(attention)
    if not per_layer:
        msg = "attention is an empty sequence: the model has no attention layers"
        raise ValueError(msg)
    for i, t in enumerate(per_layer):
        if not isinstance(t, Tensor) or t.ndim != 4 or t.shape[-1] != t.shape[-2]:
            shape = tuple(getattr(t, "shape", ()))
            msg = f"attention layer {i} must be a (B, H, N, N) tensor; got shape {shape}"
            raise ValueError(msg)
    if layers is None:
        return per_layer
    chosen = [layers] if isinstance(layers, int) else list(layers)
    n = len(per_layer)
    for index in chosen:
        if not -n <= index < n:
            msg = (f"layers={layers!r} is out of range for {n} attention layers (valid "
                   f"indices 0..{n - 1} or negative from the end)")
            raise ValueError(msg)
    if not chosen:
        msg = f"layers={layers!r} selects nothing; give indices in [0, {n - 1}]"
        raise ValueError(msg)
    return [per_layer[i] for i in chosen]


def _query_weights(layout: Any, batch: int, n: int, device: torch.device,
                   dtype: torch.dtype) -> Tensor:
    """``(B, 1, N)`` weights of the query rows: 1 / (number of valid queries) or 0."""
    valid = getattr(layout, "valid", None) if layout is not None else None
    if valid is None:
        keep = torch.ones(batch, n, dtype=dtype, device=device)
    else:
        keep = torch.as_tensor(valid).to(device=device, dtype=dtype).reshape(-1, n)
        keep = keep.expand(batch, n)
    return (keep / keep.sum(-1, keepdim=True).clamp_min(1.0))[:, None, :]  # (B, 1, N)


def attention_locality_penalty(
    attention: Any,
    layout: Any,
    *,
    radius: float = 1.0,
    layers: int | Sequence[int] | None = None,
) -> Tensor:
    """Mean attention-weighted distance beyond ``radius``: ``sum_k A[q,k] max(d(q,k) - r, 0)``.

    Parameters
    ----------
    attention
        ``(B, H, N, N)`` for one layer, a sequence of them, or a model output with
        ``.attention``; rows sum to one.
    layout
        The :class:`~gridformer.tokenize.TokenLayout` of the tokens: ``layout.distances()``
        (``(N, N)``, grid cells; great-circle km on lat/lon layouts) and ``layout.valid``.
    radius
        Distances up to ``radius`` cost nothing (same units as ``layout.distances()``).
        ``radius=1`` on a cell grid frees the 5-point cross (distance 1) and charges the
        diagonal neighbours (distance sqrt 2) by 0.41 per unit of weight.
    layers
        Layer indices to include (``None``: all; ``-1``: the last).

    Returns
    -------
    Tensor
        Scalar, the mean over the selected layers, samples, heads and valid queries; in the
        units of the distances. 0 when every row lies within ``radius``.
    """
    if not radius >= 0:  # also refuses NaN
        msg = f"radius={radius!r} must be >= 0 (same units as layout.distances())"
        raise ValueError(msg)
    chosen = _layers(attention, layers)
    n = chosen[0].shape[-1]
    if int(layout.n_tokens) != n:
        msg = (f"attention has N={n} keys but layout.n_tokens={layout.n_tokens}; pass the "
               f"layout the tokens were encoded with (class tokens are not supported)")
        raise ValueError(msg)
    ref = chosen[0]
    excess = (torch.as_tensor(layout.distances()).to(ref.device, ref.dtype)
              - radius).clamp_min(0.0)  # (N, N)
    total = ref.new_zeros(())
    for layer in chosen:
        per_row = (layer * excess).sum(-1)  # (B, H, N)
        weights = _query_weights(layout, layer.shape[0], n, layer.device, layer.dtype)
        total = total + (per_row * weights).sum(-1).mean()  # mean over B, H
    return total / len(chosen)


def attention_entropy_penalty(
    attention: Any,
    layout: Any = None,
    *,
    layers: int | Sequence[int] | None = None,
) -> Tensor:
    """Mean entropy of the attention rows, ``-sum_k A[q,k] log A[q,k]`` in nats (0 log 0 = 0).

    Parameters
    ----------
    attention
        ``(B, H, N, N)`` for one layer, a sequence of them, or a model output with
        ``.attention``.
    layout
        Optional layout: rows of its invalid tokens are left out of the mean.
    layers
        Layer indices to include (``None``: all; ``-1``: the last).

    Returns
    -------
    Tensor
        Scalar in nats: 0 for one-hot rows, ``log N`` for uniform ones; mean over the selected
        layers, samples, heads and valid queries. Unlike
        :func:`gridformer.analysis.attention_entropy` it is differentiable and not normalised
        (a fixed scale per weight, whatever the number of keys).
    """
    chosen = _layers(attention, layers)
    total = chosen[0].new_zeros(())
    for layer in chosen:
        n = layer.shape[-1]
        if layout is not None and int(layout.n_tokens) != n:
            msg = (f"attention has N={n} keys but layout.n_tokens={layout.n_tokens}; pass the "
                   f"layout the tokens were encoded with")
            raise ValueError(msg)
        # clamp, not xlogy: masked keys have A == 0 exactly, where xlogy's gradient is -inf
        tiny = torch.finfo(layer.dtype).tiny
        per_row = -(layer * torch.log(layer.clamp_min(tiny))).sum(-1)  # (B, H, N)
        weights = _query_weights(layout, layer.shape[0], n, layer.device, layer.dtype)
        total = total + (per_row * weights).sum(-1).mean()
    return total / len(chosen)
