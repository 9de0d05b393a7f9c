"""From checked variables to model-ready tensors: anomalies, standardisation, time split, tokens.

Leakage is avoided by construction: the time axis is cut into contiguous train / validation /
test parts first; the climatology (seasonal cycle) and the mean and standard deviation of every
cell come from the training part alone; an input at step ``t`` and its target at ``t + lead``
always lie in the same part, so no target step serves two parts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from gridformer.datasets import Standardizer, anomalies, climatology
from gridformer.teleconnect.config import TeleconnectConfig
from gridformer.teleconnect.data import Loaded
from gridformer.tokenize import PatchTokenizer

__all__ = ["MIN_PAIRS", "PARTS", "Prepared", "prepare", "split_pairs"]

#: Fewest (input, target) pairs each of train / validation / test must hold.
MIN_PAIRS = 10
PARTS = ("train", "val", "test")


@dataclass
class Prepared:
    """Everything training and mapping need, on the standardised-anomaly scale.

    Attributes
    ----------
    inputs
        ``(time, lat, lon)`` standardised input anomalies (training-split statistics).
    target
        Standardised target anomalies, ``(time,)`` or ``(time, lat, lon)``.
    tokens
        ``(T, N, D)`` float32 input tokens, one per time step.
    target_tokens
        ``(T, 1)`` (index) or ``(T, N, P)`` (field; NaN where the target is missing) float32.
    layout
        The inputs' ``TokenLayout``; ``valid`` holds one row when every step has the same valid
        tokens, else one row per time step.
    pairs
        ``{part: (input steps, target steps)}`` int arrays; target steps = input steps + lead,
        pairs with a missing (NaN) index target left out.
    scale
        Standard deviation of the target anomalies (per cell for a field): predictions times
        ``scale`` are anomalies in the target's units.
    seasonal
        The seasonal cycle removed ("month", "dayofyear" or "none").
    """

    inputs: xr.Dataset
    target: xr.DataArray
    tokens: torch.Tensor
    target_tokens: torch.Tensor
    layout: Any
    tokenizer: PatchTokenizer
    pairs: dict[str, tuple[np.ndarray, np.ndarray]]
    scale: xr.DataArray
    seasonal: str
    kind: str

    def part_layout(self, steps: np.ndarray) -> Any:
        """The layout of the input tokens at ``steps`` (their own ``valid`` rows)."""
        if self.layout.valid.shape[0] == 1:
            return self.layout
        return dataclasses.replace(self.layout, valid=self.layout.valid[torch.as_tensor(steps)])

    def data(self, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs (S, N, D), targets)`` of one part."""
        steps, goals = self.pairs[part]
        return self.tokens[torch.as_tensor(steps)], self.target_tokens[torch.as_tensor(goals)]


def _pairs(n_time: int, lead: int, fractions: tuple[float, ...]
           ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    edges = np.floor(np.cumsum([0.0, *fractions]) * n_time + 1e-9).astype(int)
    pairs = {}
    for part, lo, hi in zip(PARTS, edges[:-1], edges[1:], strict=True):
        steps = np.arange(lo, max(lo, hi - lead))
        pairs[part] = (steps, steps + lead)
    return pairs


def split_pairs(n_time: int, lead: int, fractions: tuple[float, ...]
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Contiguous parts of ``range(n_time)`` and their ``(t, t + lead)`` pairs.

    Raises ``ValueError`` when a part would hold fewer than :data:`MIN_PAIRS` pairs, saying
    how many steps it takes.
    """
    pairs = _pairs(n_time, lead, fractions)
    counts = [len(pairs[part][0]) for part in PARTS]
    if min(counts) < MIN_PAIRS:
        need = n_time + 1
        while min(len(p[0]) for p in _pairs(need, lead, fractions).values()) < MIN_PAIRS:
            need += 1
        msg = (f"too few time steps for the split: {n_time} steps with lead={lead} give "
               f"{counts[0]}/{counts[1]}/{counts[2]} train/validation/test pairs (fractions "
               f"{list(fractions)}); each part needs at least {MIN_PAIRS} pairs, which takes "
               f"at least {need} time steps")
        raise ValueError(msg)
    return pairs


def _seasonal(choice: str, time: xr.DataArray) -> str:
    if choice != "auto":
        return choice
    kind = time.dtype.kind
    datetime_like = kind == "M" or (kind == "O" and hasattr(time.values[0], "month"))
    return "month" if datetime_like else "none"


def _anomalies(obj: Any, seasonal: str, train_steps: np.ndarray) -> Any:
    """Remove the seasonal cycle of the training steps (nothing for ``"none"``)."""
    if seasonal == "none":
        return obj
    if obj["time"].dtype.kind not in "MO":
        msg = (f"seasonal_cycle={seasonal!r} needs a datetime time axis; this one holds "
               f"{obj['time'].dtype} values (use seasonal_cycle='none')")
        raise ValueError(msg)
    clim = climatology(obj.isel(time=train_steps), freq=seasonal)
    present = set(np.unique(getattr(obj["time"].dt, seasonal).values).tolist())
    missing = sorted(present - set(clim[seasonal].values.tolist()))
    if missing:
        msg = (f"the training split has no time step in {seasonal} {missing[:12]}, so their "
               f"{seasonal} climatology is unknown; use a longer record or "
               f"seasonal_cycle='none'")
        raise ValueError(msg)
    return anomalies(obj, freq=seasonal, clim=clim)


def _standardise(obj: Any, train_steps: np.ndarray) -> tuple[Any, Any]:
    stats = Standardizer.fit(obj.isel(time=train_steps), dims=("time",))
    scaled = stats.transform(obj)
    std = stats.std if isinstance(obj, xr.Dataset) else stats.std[obj.name or "data"]
    return scaled, std


def _collapse_valid(layout: Any) -> Any:
    valid = layout.valid
    if valid.shape[0] > 1 and bool((valid == valid[:1]).all()):
        layout = dataclasses.replace(layout, valid=valid[:1].clone())
    return layout


def prepare(loaded: Loaded, config: TeleconnectConfig) -> Prepared:
    """Split, remove the seasonal cycle, standardise and tokenize (statistics from training)."""
    n_time = loaded.inputs.sizes["time"]
    pairs = split_pairs(n_time, config.lead, config.split)
    train_steps = np.union1d(*pairs["train"])  # every step the training pairs touch
    seasonal = _seasonal(config.seasonal_cycle, loaded.inputs["time"])
    inputs, _ = _standardise(_anomalies(loaded.inputs, seasonal, train_steps), train_steps)
    target = loaded.target.rename(loaded.target.name or "target")
    target, scale = _standardise(_anomalies(target, seasonal, train_steps), train_steps)
    tokenizer = PatchTokenizer(config.patch_size, dtype=torch.float32)
    tokens, layout = tokenizer.encode(inputs[list(config.inputs)])  # (T, N, D)
    if loaded.kind == "index":
        values = np.asarray(target.values, dtype=np.float32)
        target_tokens = torch.from_numpy(values).reshape(-1, 1)  # (T, 1)
        finite = np.isfinite(values)
        pairs = {part: (s[finite[g]], g[finite[g]]) for part, (s, g) in pairs.items()}
        short = {part: len(p[0]) for part, p in pairs.items() if len(p[0]) < MIN_PAIRS}
        if short:
            msg = (f"target {target.name!r} is missing (NaN) at so many steps that the parts "
                   f"{short} keep fewer than {MIN_PAIRS} pairs")
            raise ValueError(msg)
    else:
        nan_tokenizer = PatchTokenizer(config.patch_size, dtype=torch.float32,
                                       fill_value=float("nan"))
        target_tokens, _ = nan_tokenizer.encode(target)  # (T, N, P), NaN where missing
    return Prepared(inputs, target, tokens, target_tokens, _collapse_valid(layout), tokenizer,
                    pairs, scale, seasonal, loaded.kind)
