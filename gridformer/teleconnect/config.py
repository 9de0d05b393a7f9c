"""``TeleconnectConfig``: every choice of a teleconnection run, checked where it is written.

The defaults are the setup measured in ``README.md`` (planted teleconnections on 12 x 24 and
24 x 48 grids): one GridFormer block of width 32 with one head and a fixed sine-cosine position code
of the patch index (the class token must tell places apart to read the source region), patch
tokens of 2 x 2 cells, AdamW at ``3e-3`` for 20 epochs of batches of 32. One block keeps the
map exact: the query's attention row is the only path from the input field to its prediction.
(With two blocks, information can first gather in other tokens, and the last block's row then
need not point at the source: on a 12 x 24 grid, with a learned position table, it put 4% of
its weight there, against 99% with one. One head, because the map is the mean over heads and
one head is enough to read one region: with two, one head found the source and the other
stayed diffuse, halving the map's mass there.)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["COMBINE", "SEASONAL", "TeleconnectConfig"]

#: How the attention of the query becomes one map: the last block's row (mean over heads), or
#: the mean over blocks and heads.
COMBINE = ("last", "mean")
#: Seasonal cycle removed before standardising: "auto" is "month" on datetime / cftime axes
#: and "none" on other (e.g. integer) time axes.
SEASONAL = ("auto", "month", "dayofyear", "none")


def _positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        msg = f"{name}={value!r} must be an integer >= {minimum}"
        raise ValueError(msg)
    return int(value)


def _float_tuple(name: str, value: Any, size: int, example: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    values = tuple(value) if isinstance(value, list | tuple) else (value,)
    if len(values) != size or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
        for v in values
    ):
        msg = f"{name}={value!r} must be {size} finite numbers, e.g. {example}"
        raise ValueError(msg)
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class TeleconnectConfig:
    """What :func:`~gridformer.teleconnect.run_teleconnect` trains and maps.

    Attributes
    ----------
    inputs
        Predictor variables ``(time, lat, lon)``; they become the token channels.
    target
        The variable to predict: a series ``(time,)`` (an index: the model gets a class token
        and an index head, and the map is the class token's attention) or a field
        ``(time, lat, lon)`` on the inputs' grid (a field head; the map is the attention of the
        ``query`` region).
    query
        ``(lat, lon)`` in degrees: the token holding this point is the query of a gridded target.
    query_box
        ``(lat0, lat1, lon0, lon1)`` in degrees: every token whose centre lies in the box (a
        longitude range may cross the seam, ``(.., .., 340, 20)``).
    lead
        Steps from input to target: ``x(t)`` predicts ``target(t + lead)`` (0: simultaneous).
    distance_bias
        Attention-logit bias ``-B d / 1000 km`` on every head (``> 0`` favours near tokens,
        ``< 0`` far ones, 0 none), or ``"learned"`` (one value per head, from 0). The class token
        has no place, so the bias does not act on its row.
    patch_size
        Grid cells per token side.
    epochs, lr, batch_size
        Training length and AdamW settings (warmup + cosine schedule of
        :func:`gridformer.training.fit`).
    seed
        Seeds the model initialisation and the batch order.
    align_time
        Use only the time steps that the inputs and the target share (otherwise different time
        axes are an error that says how they differ).
    seasonal_cycle
        One of :data:`SEASONAL`: the climatology (from the training split only) removed before
        standardising.
    combine
        One of :data:`COMBINE`.
    split
        Fractions of the time steps for training, validation and test, in this order, contiguous
        and without overlap.
    dim, depth, heads
        Width, number of blocks and heads of the GridFormer.
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    """

    inputs: tuple[str, ...]
    target: str
    query: tuple[float, float] | None = None
    query_box: tuple[float, float, float, float] | None = None
    lead: int = 0
    distance_bias: float | str = 0.0
    patch_size: int = 2
    epochs: int = 20
    lr: float = 3e-3
    batch_size: int = 32
    seed: int = 0
    align_time: bool = False
    seasonal_cycle: str = "auto"
    combine: str = "last"
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    dim: int = 32
    depth: int = 1
    heads: int = 1
    device: str = "auto"

    def __post_init__(self) -> None:
        inputs = (self.inputs,) if isinstance(self.inputs, str) else tuple(self.inputs)
        if not inputs or not all(isinstance(v, str) and v for v in inputs):
            msg = f"inputs={self.inputs!r} must name at least one input variable"
            raise ValueError(msg)
        if len(set(inputs)) != len(inputs):
            msg = f"inputs={list(inputs)} names a variable twice"
            raise ValueError(msg)
        if not isinstance(self.target, str) or not self.target:
            msg = f"target={self.target!r} must name the variable to predict"
            raise ValueError(msg)
        if self.target in inputs:
            msg = (f"target={self.target!r} is also an input; a teleconnection map needs a "
                   f"target other than the inputs {list(inputs)}")
            raise ValueError(msg)
        object.__setattr__(self, "inputs", inputs)
        self._check_query()
        for name in ("patch_size", "epochs", "batch_size", "dim", "depth", "heads"):
            object.__setattr__(self, name, _positive_int(name, getattr(self, name)))
        object.__setattr__(self, "lead", _positive_int("lead", self.lead, minimum=0))
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            msg = f"seed={self.seed!r} must be an integer"
            raise TypeError(msg)
        if self.dim % self.heads:
            msg = f"heads={self.heads} must divide dim={self.dim}"
            raise ValueError(msg)
        bias = self.distance_bias
        if bias != "learned" and not (isinstance(bias, numbers.Real) and not isinstance(bias, bool)
                                      and math.isfinite(bias)):
            msg = f"distance_bias={bias!r} must be a finite number or 'learned'"
            raise ValueError(msg)
        if not (isinstance(self.lr, numbers.Real) and math.isfinite(self.lr) and self.lr > 0):
            msg = f"lr={self.lr!r} must be a positive number"
            raise ValueError(msg)
        for name, choices in (("seasonal_cycle", SEASONAL), ("combine", COMBINE)):
            if getattr(self, name) not in choices:
                msg = f"{name}={getattr(self, name)!r} is not one of {list(choices)}"
                raise ValueError(msg)
        split = _float_tuple("split", self.split, 3, "(0.7, 0.15, 0.15)")
        if split is None or min(split) <= 0 or sum(split) > 1.0 + 1e-9:
            msg = f"split={self.split!r} must be 3 positive fractions summing to at most 1"
            raise ValueError(msg)
        object.__setattr__(self, "split", split)

    def _check_query(self) -> None:
        if self.query is not None and self.query_box is not None:
            msg = "give a query point or a query box, not both (--query or --query-box)"
            raise ValueError(msg)
        query = _float_tuple("query", self.query, 2, "(45.0, 300.0) as (lat, lon)")
        box = _float_tuple("query_box", self.query_box, 4,
                           "(30, 60, 280, 320) as (lat0, lat1, lon0, lon1)")
        lats = [query[0]] if query else list(box[:2]) if box else []
        if any(abs(lat) > 90.0 for lat in lats):
            what = f"query={query}" if query else f"query_box={box}"
            msg = f"{what}: latitudes must lie in [-90, 90] degrees"
            raise ValueError(msg)
        object.__setattr__(self, "query", query)
        object.__setattr__(self, "query_box", box)

    @property
    def has_query(self) -> bool:
        """Whether a query point or box was given."""
        return self.query is not None or self.query_box is not None

    def query_spec(self) -> dict[str, Any] | None:
        """The query as :func:`gridformer.analysis.teleconnection_map` reads it (by dim name)."""
        if self.query is not None:
            return {"lat": self.query[0], "lon": self.query[1]}
        if self.query_box is not None:
            lat0, lat1, lon0, lon1 = self.query_box
            return {"lat": (min(lat0, lat1), max(lat0, lat1)), "lon": (lon0, lon1)}
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (what the JSON record stores)."""
        return asdict(self)
