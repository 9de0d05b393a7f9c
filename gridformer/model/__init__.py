"""The transformer core: ``GridFormer`` and its config, attention, position encodings, baselines.

::

    from gridformer.model import GridFormer, GridFormerConfig, TINY
    model = GridFormer(dataclasses.replace(TINY, in_features=D, out_features=D))
    out = model(tokens, layout, return_attention=True)   # .prediction, .attention, .features

Presets: ``TINY`` (tests, demos), ``SMALL`` (experiments), ``STENCIL`` (one attention layer that
is a finite-difference stencil: relative bias only, no residual / norm / MLP).
Baselines with the same call signature: ``LocalCNN``, ``FNO``.

``gridformer.model.attention`` is the attention *function* (re-exported over its module's name,
the one function the model and the analysis share); the module itself is
``importlib.import_module("gridformer.model.attention")``.
"""

from gridformer.model.attention import attention
from gridformer.model.baselines import FNO, LocalCNN
from gridformer.model.config import POSITIONS, SMALL, STENCIL, TINY, GridFormerConfig
from gridformer.model.gridformer import GridFormer, GridFormerOutput
from gridformer.model.position import (
    DistanceBias,
    RelativePositionBias,
    frame_embedding,
    relative_index,
    resample_absolute,
    sincos_embedding,
)

__all__ = [
    "FNO",
    "POSITIONS",
    "SMALL",
    "STENCIL",
    "TINY",
    "DistanceBias",
    "GridFormer",
    "GridFormerConfig",
    "GridFormerOutput",
    "LocalCNN",
    "RelativePositionBias",
    "attention",
    "frame_embedding",
    "relative_index",
    "resample_absolute",
    "sincos_embedding",
]
