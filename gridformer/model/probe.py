"""Attention rows and rollout after the forward pass, a block of queries at a time.

A forward pass with ``return_attention=<query set>`` keeps each layer's
:class:`~gridformer.model.blockwise.LayerLogits` (queries, keys and position terms: ``O(N)``
memory) in an :class:`AttentionProbe` on the output. From it any layer's rows, and products of
row vectors with a layer's attention, are formed without an ``N x N`` matrix; that is what
attention rollout needs from a few queries (Abnar & Zuidema 2020)::

    r_L     = (1 - a) e_q^T W_L + a e_q^T                    W_l = mean over heads of A_l
    r_(l-1) = (1 - a) r_l W_(l-1) + a r_l                    a = residual (0.5)

Each step ``r_l W_(l-1)`` runs over the blocks of layer ``l - 1``'s rows
(:func:`~gridformer.model.blockwise.attention_product`): one more pass of explicit attention
per layer, never more than one block of rows at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from gridformer.model.blockwise import LayerLogits, attention_product, attention_rows

__all__ = ["AttentionProbe"]


class AttentionProbe:
    """Every layer's attention of one forward pass, formed on demand (see module docstring).

    Key-axis positions count a class token first (token ``n`` at ``n + 1`` with ``pool="cls"``).
    """

    def __init__(self, layers: Sequence[LayerLogits]) -> None:
        self.layers = list(layers)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def n_heads(self) -> int:
        return self.layers[0].heads

    @property
    def n_keys(self) -> int:
        return self.layers[0].n_keys

    def _positions(self, positions: Sequence[int] | Tensor) -> Tensor:
        index = torch.as_tensor(positions, dtype=torch.int64).reshape(-1)
        if index.numel() == 0 or int(index.min()) < 0 or int(index.max()) >= self.n_keys:
            msg = (
                f"positions={index.tolist()} must be key-axis positions in 0..{self.n_keys - 1}"
            )
            raise ValueError(msg)
        return index.to(self.layers[0]._device())

    def _layer(self, layer: int) -> LayerLogits:
        if not -self.n_layers <= layer < self.n_layers:
            msg = f"layer={layer} must be in 0..{self.n_layers - 1} (or negative from the end)"
            raise ValueError(msg)
        return self.layers[layer]

    @torch.no_grad()
    def rows(self, layer: int, positions: Sequence[int] | Tensor) -> Tensor:
        """Attention weights ``(B, H, Q, N')`` of layer ``layer`` for the query ``positions``."""
        return attention_rows(self._layer(layer), self._positions(positions))

    @torch.no_grad()
    def product(self, layer: int, r: Tensor, heads: Sequence[int] | None = None) -> Tensor:
        """``r @ mean_{h in heads} A_layer`` for row vectors ``r`` ``(B, P, N')``."""
        return attention_product(self._layer(layer), r, None if heads is None else list(heads))

    @torch.no_grad()
    def rollout(self, positions: Sequence[int] | Tensor, *, residual: float = 0.5,
                layers: Sequence[int] | None = None, heads: Sequence[int] | None = None
                ) -> Tensor:
        """Rollout rows ``(B, Q, N')`` float64 of the queries at ``positions`` (rows sum to 1).

        ``layers`` (in order, default all) are rolled through from the last down; ``heads``
        (default all) are averaged. Equal to
        :func:`gridformer.analysis.attention_rollout` on the full maps.
        """
        if not 0.0 <= residual < 1.0:
            msg = f"residual={residual!r} must lie in [0, 1) (0.5 in Abnar & Zuidema 2020)"
            raise ValueError(msg)
        index = self._positions(positions)
        chosen = list(range(self.n_layers)) if layers is None else [int(i) for i in layers]
        heads = list(range(self.n_heads)) if heads is None else [int(h) for h in heads]
        top = self.rows(chosen[-1], index)[:, heads].mean(1).to(torch.float64)  # (B, Q, N')
        eye = torch.zeros_like(top)
        eye[:, torch.arange(len(index)), index] = 1.0
        r = (1.0 - residual) * top + residual * eye
        r = r / r.sum(-1, keepdim=True)
        for layer in reversed(chosen[:-1]):
            r = (1.0 - residual) * self.product(layer, r, heads) + residual * r  # (B, Q, N')
            r = r / r.sum(-1, keepdim=True)
        return r
