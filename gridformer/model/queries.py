"""What ``GridFormer(...)(tokens, layout, return_attention=...)`` asks for, checked.

``return_attention`` is one of:

- ``False``: no attention; ``True``: every layer's full ``(B, H, N', N')`` maps;
- token indices: an ``int``, or a ``list`` / ``range`` / numpy or torch integer array of
  indices ``0 .. N - 1`` (the rows of those tokens, in the order given);
- a place: a ``tuple`` or mapping, a point ``(lat, lon)`` or a box ``((lat0, lat1), (lon0,
  lon1))`` (``{"lat": ..., "lon": ...}``), resolved with
  :func:`gridformer.analysis.query_tokens` (the same rules as ``teleconnection_map``);
- ``"cls"``: the class token's row (``pool="cls"`` models).

A tuple is always a place and a list always indices, so ``(3, 5)`` on a ``("y", "x")`` grid is
the cell at y=3, x=5, and ``[3, 5]`` are tokens 3 and 5.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["check_full_maps_fit", "query_positions"]


def query_positions(spec: Any, layout: Any, n_cls: int, key_mask: Tensor | None
                    ) -> np.ndarray | None:
    """Key-axis positions ``(Q,)`` of the requested rows (None for ``True`` / ``False``).

    Raises
    ------
    TypeError
        ``spec`` of no recognised kind, or indices that are not integers.
    ValueError
        Indices outside ``0 .. N - 1``, an empty set, ``"cls"`` without a class token, a place
        outside the grid, or a query token that is masked in every sample.
    """
    if isinstance(spec, bool | np.bool_):
        return None
    n = int(layout.n_tokens)
    if isinstance(spec, str):
        if spec != "cls":
            msg = (f"return_attention={spec!r} is not a query; use True, False, token indices, "
                   f"a point / box, or 'cls'")
            raise ValueError(msg)
        if not n_cls:
            msg = ("return_attention='cls' needs a class token (head='index' or 'class' with "
                   "pool='cls'); this model has none: pass token indices or a place")
            raise ValueError(msg)
        return np.zeros(1, dtype=np.int64)
    if isinstance(spec, tuple | Mapping):
        from gridformer.analysis.teleconnection import query_tokens

        tokens = query_tokens(layout, spec)
    else:
        tokens = _indices(spec, n)
    _check_valid(tokens, key_mask, n_cls)
    return tokens + n_cls


def _indices(spec: Any, n: int) -> np.ndarray:
    if isinstance(spec, numbers.Integral):
        spec = [spec]
    if not isinstance(spec, list | range | np.ndarray | Tensor):
        msg = (
            f"return_attention={spec!r} ({type(spec).__name__}) is not understood; give True, "
            f"False, token indices (int, list, range, integer array), a place (tuple or "
            f"mapping: a point or a box) or 'cls'"
        )
        raise TypeError(msg)
    index = spec.detach().cpu().numpy() if isinstance(spec, Tensor) else np.asarray(spec)
    index = index.reshape(-1)
    if index.size == 0:
        msg = "return_attention=[] selects no query; give at least one token index"
        raise ValueError(msg)
    if not np.issubdtype(index.dtype, np.integer):
        msg = (
            f"return_attention indices must be integers, got dtype {index.dtype}; a place "
            f"(lat, lon) is given as a tuple or a mapping, not a list"
        )
        raise TypeError(msg)
    bad = index[(index < 0) | (index >= n)]
    if bad.size:
        msg = (f"return_attention indices {bad.tolist()} lie outside the grid's tokens "
               f"0..{n - 1}")
        raise ValueError(msg)
    return index.astype(np.int64)


def _check_valid(tokens: np.ndarray, key_mask: Tensor | None, n_cls: int) -> None:
    if key_mask is None:
        return
    valid = key_mask[:, n_cls:].any(0).cpu().numpy()  # (N,) valid in some sample
    masked = tokens[~valid[tokens]]
    if masked.size:
        msg = (
            f"query tokens {sorted(set(masked.tolist()))} are masked in every sample (no data, "
            f"e.g. land or padding); choose tokens that hold data"
        )
        raise ValueError(msg)


def check_full_maps_fit(batch: int, heads: int, depth: int, n_keys: int,
                        device: torch.device) -> None:
    """Refuse ``return_attention=True`` when the maps alone would not fit in free memory."""
    need = depth * batch * heads * n_keys**2 * 4 + 2 * batch * heads * n_keys**2 * 4
    free = _free_bytes(device)
    if free is not None and need > free:
        msg = (
            f"return_attention=True at N'={n_keys} keys needs ~{_size(need)} for the full "
            f"(B, H, N', N') maps of {depth} layers but ~{_size(free)} is free; "
            f"pass the query tokens or a place instead (return_attention=[...], (lat, lon) or "
            f"a box) for (B, H, Q, N') rows, and attention_rollout / teleconnection_map on "
            f"that output"
        )
        raise ValueError(msg)


def _size(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 2**10:.1f} KiB"


def _free_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (CUDA: the driver's count; CPU: Linux MemAvailable)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
