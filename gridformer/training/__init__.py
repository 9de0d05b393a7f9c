"""Training: ``fit`` (AdamW, warmup + cosine, AMP on CUDA, DDP under torchrun), losses,
checkpoints, and ``load_model`` to use a trained model on new data.

::

    from gridformer.training import fit, load_model
    history = fit(model, (inputs, targets), layout=layout, loss="mse", steps=500, lr=1e-3,
                  checkpoint_path="ckpt.pt", metadata=pairs.metadata)
    forecast = load_model("ckpt.pt").predict(ds)       # xr.Dataset in, xr.Dataset out
"""

from gridformer.training.allocator import tune_cpu_malloc
from gridformer.training.checkpoint import (
    load_checkpoint,
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
from gridformer.training.predictor import Predictor, data_metadata, load_model

__all__ = [
    "LOSSES",
    "History",
    "NonFiniteLossError",
    "Predictor",
    "cross_entropy",
    "data_metadata",
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
    "tune_cpu_malloc",
    "warmup_cosine",
]
