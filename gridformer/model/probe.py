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

__all__ = ["ROW_LIMIT", "AttentionProbe"]

#: Up to this many query positions a product is formed from their rows, above it blockwise.
ROW_LIMIT = 1024


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
    def mean(self, r: Tensor, *, layers: Sequence[int] | None = None,
             heads: Sequence[int] | None = None) -> Tensor:
        """``r @ mean_l mean_h A_l`` for weight vectors ``r`` ``(B, P, N')`` over queries."""
        chosen = list(range(self.n_layers)) if layers is None else [int(i) for i in layers]
        return torch.stack([self._apply(i, r, heads) for i in chosen]).mean(0)

    @torch.no_grad()
    def rollout(self, positions: Sequence[int] | Tensor, *, residual: float = 0.5,
                layers: Sequence[int] | None = None, heads: Sequence[int] | None = None
                ) -> Tensor:
        """Rollout rows ``(B, Q, N')`` float64 of the queries at ``positions`` (rows sum to 1).

        ``layers`` (in order, default all) are rolled through from the last down; ``heads``
        (default all) are averaged. Equal to
        :func:`gridformer.analysis.attention_rollout` on the full maps.
        """
        index = self._positions(positions)
        r = torch.zeros(self.layers[0].batch, len(index), self.n_keys, dtype=torch.float64,
                        device=index.device)
        r[:, torch.arange(len(index)), index] = 1.0
        return self.rollout_vectors(r, residual=residual, layers=layers, heads=heads)

    @torch.no_grad()
    def rollout_vectors(self, r: Tensor, *, residual: float = 0.5,
                        layers: Sequence[int] | None = None,
                        heads: Sequence[int] | None = None) -> Tensor:
        """Rollout of weight vectors over the queries, ``r`` ``(B, P, N')`` -> ``(B, P, N')``.

        Rollout is linear in the starting vector, so a weighted set of queries (a box, the
        mean over all tokens) costs one vector per sample, not one row per query.
        """
        if not 0.0 <= residual < 1.0:
            msg = f"residual={residual!r} must lie in [0, 1) (0.5 in Abnar & Zuidema 2020)"
            raise ValueError(msg)
        chosen = list(range(self.n_layers)) if layers is None else [int(i) for i in layers]
        r = r.to(torch.float64)
        for layer in reversed(chosen):
            r = (1.0 - residual) * self._apply(layer, r, heads) + residual * r  # (B, P, N')
            r = r / r.sum(-1, keepdim=True)
        return r

    def _apply(self, layer: int, r: Tensor, heads: Sequence[int] | None) -> Tensor:
        """``r @ mean_h A_layer``: from the rows ``r`` touches when they are few, else blockwise."""
        heads = list(range(self.n_heads)) if heads is None else [int(h) for h in heads]
        support = torch.nonzero(r.abs().sum(dim=(0, 1))).flatten()  # (S,) positions with weight
        if len(support) <= ROW_LIMIT:
            rows = self.rows(layer, support)[:, heads].mean(1).to(r.dtype)  # (B, S, N')
            return r.index_select(2, support) @ rows  # (B, P, N')
        return self.product(layer, r, heads)
