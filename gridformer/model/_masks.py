"""Valid-token masks shared by GridFormer and the baselines.

A token is used when ``layout.valid`` and the caller's ``mask`` both say so. GridFormer uses the
combined ``(B, N)`` mask as its attention key mask; LocalCNN and FNO zero the masked tokens
(inputs and hidden features); every model pools over valid tokens only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["combine_masks", "layout_key_mask", "masked_mean"]


def layout_key_mask(layout: Any, device: torch.device) -> Tensor | None:
    """``layout.valid`` as a (B', N) bool tensor, or None when every token is valid."""
    valid = getattr(layout, "valid", None)
    if valid is None:
        return None
    valid = torch.as_tensor(valid, dtype=torch.bool)
    if valid.ndim == 1:
        valid = valid.unsqueeze(0)  # (1, N)
    if bool(valid.all()):
        return None
    if bool((valid == valid[:1]).all()):
        valid = valid[:1]  # the same mask for every sample: (1, N)
    return valid.to(device)


def combine_masks(layout_mask: Tensor | None, mask: Tensor | None, B: int, N: int,
                  device: torch.device) -> Tensor | None:
    """And the layout's and the caller's masks into one (B, N) mask (or None: all valid).

    Raises
    ------
    ValueError
        ``mask`` not of shape (B, N); ``layout.valid`` rows that fit neither 1 nor B samples
        (without a ``mask`` to replace them); a sample left with no valid token.
    """
    if layout_mask is not None and layout_mask.shape[0] not in (1, B):
        if mask is not None:  # per-sample validity of another batch: the caller's mask rules
            layout_mask = None
        else:
            msg = (
                f"layout.valid has {layout_mask.shape[0]} samples but tokens have B={B}; pass "
                f"a layout for this batch or this batch's (B, N) mask="
            )
            raise ValueError(msg)
    if mask is not None:
        mask = torch.as_tensor(mask, dtype=torch.bool, device=device)
        if mask.shape != (B, N):
            msg = f"mask has shape {tuple(mask.shape)}, expected (B, N) = {(B, N)}"
            raise ValueError(msg)
    if layout_mask is None and mask is None:
        return None
    out = torch.ones(B, N, dtype=torch.bool, device=device)
    if layout_mask is not None:
        out = out & layout_mask
    if mask is not None:
        out = out & mask
    if not bool(out.any(dim=1).all()):
        empty = torch.nonzero(~out.any(dim=1)).flatten().tolist()
        msg = f"samples {empty} have no valid token to attend to"
        raise ValueError(msg)
    return out  # (B, N)


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``x`` (B, N, C) over valid tokens -> (B, C)."""
    if mask is None:
        return x.mean(dim=1)
    w = mask.to(x.dtype).unsqueeze(-1)  # (B, N, 1)
    return (x * w).sum(dim=1) / w.sum(dim=1)
