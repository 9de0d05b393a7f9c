"""The transformer core: ``GridFormer`` and its config, attention, position encodings, baselines.

::

    from gridformer.model import GridFormer, GridFormerConfig, TINY
    model = GridFormer(dataclasses.replace(TINY, in_features=D, out_features=D))
    out = model(tokens, layout, return_attention=True)   # .prediction, .attention, .features

Presets: ``TINY`` (tests, demos), ``SMALL`` (experiments), ``STENCIL`` (one attention layer that
is a finite-difference stencil: relative bias only, no residual / norm / MLP).

Large grids (a 0.25° field in patches of 8 is 16,200 tokens): ``attention_kernel="auto"`` builds
the position bias a block of queries at a time from small per-layout tables
(:mod:`gridformer.model.bias_tables`, :mod:`gridformer.model.blockwise`), so memory grows with
N, not N²; ``return_attention=[tokens] | (lat, lon) | box | "cls"`` returns ``(B, H, Q, N)``
rows per layer and an :class:`AttentionProbe` from which ``analysis.attention_rollout`` and
``analysis.teleconnection_map`` form rollouts block by block.
Baselines with the same call signature: ``LocalCNN``, ``FNO``, ``UNet``.

``gridformer.model.attention`` is the attention *function* (re-exported over its module's name,
the one function the model and the analysis share); the module itself is
``importlib.import_module("gridformer.model.attention")``.
"""

from gridformer.model.attention import attention
from gridformer.model.baselines import FNO, LocalCNN
from gridformer.model.config import KERNELS, POSITIONS, SMALL, STENCIL, TINY, GridFormerConfig
from gridformer.model.gridformer import DENSE_MAX_TOKENS, GridFormer, GridFormerOutput
from gridformer.model.position import (
    DistanceBias,
    RelativePositionBias,
    frame_embedding,
    relative_index,
    resample_absolute,
    sincos_embedding,
)
from gridformer.model.probe import AttentionProbe
from gridformer.model.unet import UNet

__all__ = [
    "DENSE_MAX_TOKENS",
    "FNO",
    "KERNELS",
    "POSITIONS",
    "SMALL",
    "STENCIL",
    "TINY",
    "AttentionProbe",
    "DistanceBias",
    "GridFormer",
    "GridFormerConfig",
    "GridFormerOutput",
    "LocalCNN",
    "RelativePositionBias",
    "UNet",
    "attention",
    "frame_embedding",
    "relative_index",
    "resample_absolute",
    "sincos_embedding",
]
