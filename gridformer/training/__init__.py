"""Training: ``fit`` (AdamW, warmup + cosine, AMP on CUDA, DDP under torchrun), losses,
checkpoints.

::

    from gridformer.training import fit, save_checkpoint, load_checkpoint
    history = fit(model, (inputs, targets), layout=layout, loss="mse", steps=500, lr=1e-3)
"""

from gridformer.training.checkpoint import (
    load_checkpoint,
    load_model,
    model_config,
    save_checkpoint,
)
from gridformer.training.fit import (
    History,
    NonFiniteLossError,
    evaluate,
    fit,
    resolve_device,
    warmup_cosine,
)
from gridformer.training.losses import (
    LOSSES,
    cross_entropy,
    distillation_loss,
    get_loss,
    lat_weighted_mse,
    latitude_weights,
    mse,
)

__all__ = [
    "LOSSES",
    "History",
    "NonFiniteLossError",
    "cross_entropy",
    "distillation_loss",
    "evaluate",
    "fit",
    "get_loss",
    "lat_weighted_mse",
    "latitude_weights",
    "load_checkpoint",
    "load_model",
    "model_config",
    "mse",
    "resolve_device",
    "save_checkpoint",
    "warmup_cosine",
]
