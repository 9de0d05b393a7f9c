"""``GridFormerConfig``: every architectural choice of the transformer, and its presets.

The config is a frozen dataclass (graphcast style): hashable, printable, stored as a plain dict
in checkpoints (:meth:`GridFormerConfig.to_dict` / :meth:`GridFormerConfig.from_dict`), and
checked once in ``__post_init__`` so that a bad value fails where it is written.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

__all__ = ["KERNELS", "POSITIONS", "SMALL", "STENCIL", "TINY", "GridFormerConfig"]

POSITIONS = ("absolute", "sincos", "relative", "geodesic", "none")
HEADS = ("field", "index", "class")
POOLS = ("mean", "cls")
KERNELS = ("auto", "dense", "chunked", "flex")


@dataclass(frozen=True)
class GridFormerConfig:
    """Architecture of a :class:`~gridformer.model.GridFormer`.

    Every field has a comment below; presets: :data:`TINY`, :data:`SMALL`, :data:`STENCIL`.
    Use :func:`dataclasses.replace` to derive a variant, e.g.
    ``dataclasses.replace(TINY, in_features=4, out_features=4)``.
    """

    # Token size D coming from the tokenizer (features per patch: variables * patch cells).
    in_features: int = 1
    # Output size: per token for head="field", per sample for head="index" / "class".
    out_features: int = 1
    # Width C of the residual stream (token embedding size).
    dim: int = 64
    # Number of transformer blocks.
    depth: int = 4
    # Attention heads per block; must divide dim (head size hd = dim // heads).
    heads: int = 4
    # MLP hidden size as a multiple of dim; 0 = no MLP in the blocks (pure attention layers).
    mlp_ratio: float = 4.0
    # Position encoding: "absolute" (learned table on reference_grid, resampled bicubically to
    # other grids), "sincos" (fixed sine-cosine of the patch index), "relative" (learned per-head
    # bias of the integer token offset, any grid size), "geodesic" (per-head bias
    # -distance_bias * d / distance_scale_km only), "none".
    # Space-time tokens (ndim=3): "relative" learns the frame offset as its first axis; the
    # spatial-only "absolute", "sincos" and "geodesic" add a fixed sine-cosine code of the
    # frame index (position.frame_embedding: no parameters, any number of frames), so frames
    # are told apart; "none" leaves the model blind to position and frame.
    position: str = "relative"
    # Distance bias added to the attention logits of any position mode:
    # -distance_bias * d / distance_scale_km per head, d from layout.distances() (great-circle km
    # on lat/lon layouts, grid units otherwise). A float is fixed and shared by the heads
    # (> 0 favours near tokens, < 0 far ones); "learned" learns one value per head (init 0);
    # None = no distance bias (position="geodesic" with None means "learned").
    distance_bias: float | str | None = None
    # Distance that one unit of distance_bias acts over (km on lat/lon, grid units otherwise).
    distance_scale_km: float = 1000.0
    # Output head: "field" (B, N, out_features), "index" (pooled regression, (B, out_features)),
    # "class" (pooled classification logits, (B, out_features)).
    head: str = "field"
    # Pooling for index/class heads: "mean" over valid tokens, or "cls" (a learned class token,
    # prepended, so attention maps are (N + 1) x (N + 1) with the class token first).
    pool: str = "mean"
    # Dropout probability on attention weights and residual branches (training only).
    dropout: float = 0.0
    # Patch-grid shape the "absolute" table is learned on (tokens per spatial dim, e.g. (32, 64));
    # other grids of the same number of dims get a bicubic resample. Unused by other positions.
    reference_grid: tuple[int, ...] = (16, 16)
    # Largest |offset| (in patches, per axis) with its own relative bias; larger offsets share
    # the edge entry (Shaw et al. 2018 clipping). A stencil of radius r needs >= r + 1 so that
    # tokens outside it can be given zero weight.
    max_relative_offset: int = 8
    # Number of axes of the token grid that layout.offsets() has: 1 (x), 2 (y, x or lat, lon),
    # 3 (time, y, x for space-time tokens). Sizes the relative bias table.
    ndim: int = 2
    # Content attention q·k / sqrt(hd). False: logits are the position terms only, so one layer
    # is a fixed (or, with relative_content, state-dependent) stencil.
    content_attention: bool = True
    # Add the query-content term q_i·R[offset_ij] / sqrt(hd) (Shaw et al. 2018) to the logits,
    # with R a learned (heads, offsets, hd) table: stencils that depend on the local state.
    relative_content: bool = False
    # Add the key-content term k_j·S[offset_ij] / sqrt(hd) (DeBERTa's position-to-content), with
    # S a learned (heads, offsets, hd) table: with relative_content, the logit of an offset then
    # depends on the states at both ends (the upwind weight of Burgers ~ u_i + u_j).
    relative_key_content: bool = False
    # Project queries and keys from tanh(W x + b) (a learned C -> C feature layer) instead of x,
    # so that the content and relative-content logits are nonlinear in the token's state.
    nonlinear_qk: bool = False
    # Residual connections around attention and MLP. False: x = attn(x) (stencil form).
    residual: bool = True
    # Pre-norm LayerNorms in the blocks and before the head. False: none (stencil form).
    norm: bool = True
    # How attention is computed; every kernel gives the same outputs (to float tolerance):
    # "dense" builds the (H, N', N') position bias and the (N', N') geometry (the reference);
    # "chunked" runs the fused kernel a block of queries at a time with the bias of each block
    # read from small per-layout tables (memory linear in N; training checkpoints each block);
    # "flex" uses torch's FlexAttention with the bias computed in the kernel (compiled on first
    # use; CUDA); "auto" is "dense" up to DENSE_MAX_TOKENS keys (or when the logits hold no
    # pairwise term) and "chunked" above.
    attention_kernel: str = "auto"
    # Query rows per block of the chunked kernel; 0 sizes blocks to a 128 MiB mask.
    attention_chunk: int = 0
    # Recompute each block's activations in the backward pass instead of keeping them
    # (torch.utils.checkpoint): less memory in training, about one more forward of time.
    checkpoint_blocks: bool = False

    def __post_init__(self) -> None:
        for name in ("in_features", "out_features", "dim", "depth", "heads", "ndim",
                     "max_relative_offset"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                msg = f"{name}={value!r} must be a positive integer"
                raise ValueError(msg)
            object.__setattr__(self, name, int(value))  # numpy ints -> int (plain dict, JSON)
        for name in ("mlp_ratio", "dropout", "distance_scale_km"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                msg = f"{name}={value!r} must be a number"
                raise TypeError(msg)
            object.__setattr__(self, name, float(value))
        for name in ("content_attention", "relative_content", "relative_key_content",
                     "nonlinear_qk", "residual", "norm", "checkpoint_blocks"):
            if not isinstance(getattr(self, name), bool):
                msg = f"{name}={getattr(self, name)!r} must be True or False"
                raise TypeError(msg)
        if self.dim % self.heads:
            msg = (
                f"heads={self.heads} does not divide dim={self.dim}; choose heads among "
                f"{[h for h in range(1, self.dim + 1) if self.dim % h == 0]}"
            )
            raise ValueError(msg)
        _check_choice("position", self.position, POSITIONS)
        _check_choice("head", self.head, HEADS)
        _check_choice("pool", self.pool, POOLS)
        _check_choice("attention_kernel", self.attention_kernel, KERNELS)
        chunk = self.attention_chunk
        if not isinstance(chunk, numbers.Integral) or isinstance(chunk, bool) or chunk < 0:
            msg = f"attention_chunk={chunk!r} must be an integer >= 0 (0 = sized by memory)"
            raise ValueError(msg)
        object.__setattr__(self, "attention_chunk", int(chunk))
        if self.attention_kernel == "flex":
            _check_flex(self)
        if not self.mlp_ratio >= 0:  # also refuses NaN
            msg = f"mlp_ratio={self.mlp_ratio!r} must be >= 0 (0 = no MLP)"
            raise ValueError(msg)
        if not 0.0 <= self.dropout < 1.0:
            msg = f"dropout={self.dropout!r} must be in [0, 1)"
            raise ValueError(msg)
        bias = self.distance_bias
        if isinstance(bias, str) and bias != "learned":
            msg = f"distance_bias={bias!r} must be a number, 'learned' or None"
            raise ValueError(msg)
        if bias is not None and not isinstance(bias, str | int | float):
            msg = f"distance_bias={bias!r} must be a number, 'learned' or None"
            raise TypeError(msg)
        if not 0 < self.distance_scale_km < math.inf:
            msg = f"distance_scale_km={self.distance_scale_km!r} must be > 0 and finite"
            raise ValueError(msg)
        grid = tuple(self.reference_grid)
        if not grid or any(not isinstance(n, int) or n < 1 for n in grid):
            msg = f"reference_grid={self.reference_grid!r} must be positive integers"
            raise ValueError(msg)
        object.__setattr__(self, "reference_grid", grid)
        if not (self.content_attention or self.uses_bias or self.relative_content
                or self.relative_key_content):
            msg = (
                "content_attention=False needs a position bias (position='relative' or "
                "'geodesic', a distance_bias, relative_content=True or "
                "relative_key_content=True); otherwise every "
                "attention row would be uniform"
            )
            raise ValueError(msg)

    @property
    def uses_bias(self) -> bool:
        """Whether the attention logits get a position bias (relative and/or distance)."""
        return self.position in ("relative", "geodesic") or self.distance_bias is not None

    @property
    def learned_distance_bias(self) -> bool:
        """Whether the distance bias is a learned per-head parameter."""
        return self.distance_bias == "learned" or (
            self.position == "geodesic" and self.distance_bias is None
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (what checkpoints and JSON records store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GridFormerConfig:
        """Build a config from :meth:`to_dict` output; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            msg = f"unknown GridFormerConfig fields {unknown}; valid: {sorted(known)}"
            raise ValueError(msg)
        values = dict(values)
        if "reference_grid" in values:
            values["reference_grid"] = tuple(values["reference_grid"])
        return cls(**values)


def _check_flex(cfg: GridFormerConfig) -> None:
    """FlexAttention adds a score_mod of the positions only: no q-dependent terms, no dropout."""
    terms = [n for n in ("relative_content", "relative_key_content") if getattr(cfg, n)]
    if terms:
        msg = (
            f"attention_kernel='flex' cannot compute {' and '.join(terms)} (terms that depend "
            f"on the queries' and keys' content at each offset); use attention_kernel="
            f"'chunked' or 'dense'"
        )
        raise ValueError(msg)
    if cfg.dropout > 0:
        msg = (
            f"attention_kernel='flex' has no attention dropout but dropout={cfg.dropout}; use "
            f"attention_kernel='chunked' or dropout=0"
        )
        raise ValueError(msg)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        msg = f"{name}={value!r} is not one of {list(choices)}"
        raise ValueError(msg)


# ---------------------------------------------------------------- presets
#: A few thousand parameters: unit tests, CPU demos.
TINY = GridFormerConfig(dim=16, depth=2, heads=2, mlp_ratio=2.0, max_relative_offset=4)

#: A small model for real experiments on a laptop / single GPU.
SMALL = GridFormerConfig(dim=128, depth=6, heads=4, mlp_ratio=4.0, max_relative_offset=8)

#: One attention layer that IS a finite-difference stencil: scalar in, scalar out, one head,
#: logits from the relative bias only, no residual / norm / MLP. The prediction is
#: ``head(proj(A @ value(embed(u))))``: a chain of 1x1 linear maps around the attention
#: matrix A, whose row i holds the stencil weights around token i. Reaches offsets up to 2
#: (radius-1 stencils with the +-2 entries set to a large negative logit).
STENCIL = GridFormerConfig(
    in_features=1, out_features=1, dim=1, depth=1, heads=1, mlp_ratio=0.0,
    position="relative", max_relative_offset=2, content_attention=False,
    residual=False, norm=False,
)
