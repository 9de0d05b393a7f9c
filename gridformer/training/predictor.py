"""Use a trained model again: ``load_model(checkpoint) -> Predictor``, ``predict(ds) -> ds``.

A checkpoint written by :func:`~gridformer.training.fit` with ``metadata=`` (``gridformer
train`` does this) records, as plain JSON data, what it takes to feed the model new data::

    {"format": "gridformer-data-1",
     "variables": ["t2m"],                    # data variables, in token-channel order
     "time_dim": "time", "lead": 1,           # the model maps u(t) to u(t + lead steps)
     "tokenizer": {"patch_size": [2, 2], "time_patch": null, "fill_value": 0.0,
                   "pad": "end", "spatial_dims": ["lat", "lon"], "time_dim": "time"},
     "grid": {"dims": ["lat", "lon"], "shape": [32, 64], "periodic": [false, true],
              "geographic": true},
     "normalization": {"mean": {"t2m": 278.1}, "std": {"t2m": 21.3}}}   # or null

::

    from gridformer.training import load_model
    predictor = load_model("gridformer-out/train/checkpoint.pt")
    forecast = predictor.predict(ds)          # xr.Dataset in, xr.Dataset out (same grid)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import xarray as xr
from torch import nn

from gridformer.training.checkpoint import build_model, read_checkpoint

__all__ = ["DATA_FORMAT", "Predictor", "data_metadata", "load_model"]

DATA_FORMAT = "gridformer-data-1"


def data_metadata(*, layout: Any, tokenizer: Any, variables: list[str], lead: int,
                  time_dim: str = "time", normalization: Any = None) -> dict[str, Any]:
    """The ``metadata`` that :func:`load_model` needs, as plain JSON data.

    Parameters
    ----------
    layout
        ``TokenLayout`` of the training inputs (grid dims, shape, patch size, periodicity).
    tokenizer
        The ``PatchTokenizer`` that made the tokens (fill value, padding, time patch).
    variables
        Data variables in token-channel order.
    lead
        Saved time steps from input to target.
    time_dim
        Name of the time dim of the data.
    normalization
        A ``gridformer.datasets.Standardizer`` with one scalar mean and std per variable (as
        ``load_pairs`` fits it), or None when the data were not normalised.
    """
    norm = None
    if normalization is not None:
        norm = {"mean": {v: float(normalization.mean[v]) for v in variables},
                "std": {v: float(normalization.std[v]) for v in variables}}
    dims = [str(d) for d in layout.spatial_dims]
    return {
        "format": DATA_FORMAT,
        "variables": [str(v) for v in variables],
        "time_dim": str(time_dim),
        "lead": int(lead),
        "tokenizer": {"patch_size": [int(p) for p in layout.patch_size],
                      "time_patch": tokenizer.time_patch, "fill_value": tokenizer.fill_value,
                      "pad": tokenizer.pad, "spatial_dims": dims, "time_dim": tokenizer.time_dim},
        "grid": {"dims": dims, "shape": [int(n) for n in layout.grid_shape],
                 "periodic": [bool(p) for p in layout.periodic],
                 "geographic": bool(layout.is_geographic)},
        "normalization": norm,
    }


@dataclass
class Predictor:
    """A trained model with what it needs to take and return ``xr.Dataset``.

    Attributes
    ----------
    model
        The rebuilt model (GridFormer, LocalCNN or FNO), in eval mode.
    config
        Its config as a plain dict.
    metadata
        The checkpoint's data description (see the module docstring), or None for checkpoints
        written without one (then only :attr:`model` can be used).
    path
        The checkpoint file.
    step
        Optimiser steps the model was trained for.
    """

    model: nn.Module
    config: dict[str, Any] | None
    metadata: dict[str, Any] | None
    path: Path
    step: int = 0
    _tokenizer: Any = field(default=None, init=False, repr=False)

    @property
    def variables(self) -> list[str]:
        """Data variables the model reads and predicts, in token-channel order."""
        return list(self._meta()["variables"])

    @property
    def lead(self) -> int:
        """Saved time steps between an input and its prediction."""
        return int(self._meta()["lead"])

    @property
    def tokenizer(self) -> Any:
        """A ``PatchTokenizer`` with the training settings."""
        if self._tokenizer is None:
            from gridformer.tokenize import PatchTokenizer

            t = self._meta()["tokenizer"]
            self._tokenizer = PatchTokenizer(
                tuple(t["patch_size"]), time_patch=t["time_patch"], fill_value=t["fill_value"],
                spatial_dims=tuple(t["spatial_dims"]), time_dim=t["time_dim"], pad=t["pad"])
        return self._tokenizer

    @property
    def normalization(self) -> Any:
        """The training normalisation as a ``gridformer.datasets.Standardizer`` (or None)."""
        norm = self._meta()["normalization"]
        if norm is None:
            return None
        from gridformer.datasets import Standardizer

        def stats(key: str) -> xr.Dataset:
            return xr.Dataset({v: ((), float(norm[key][v])) for v in self.variables})

        return Standardizer(mean=stats("mean"), std=stats("std"))

    def _meta(self) -> dict[str, Any]:
        if self.metadata is None:
            msg = (
                f"checkpoint {str(self.path)!r} holds no data metadata (it was written by fit() "
                f"without metadata=); use predictor.model with tokens directly, or retrain with "
                f"`gridformer train`, which records it"
            )
            raise ValueError(msg)
        return self.metadata

    def predict(self, data: xr.Dataset, *, batch_size: int = 64) -> xr.Dataset:
        """Predict the state ``lead`` steps after each time of ``data``.

        Parameters
        ----------
        data
            An ``xr.Dataset`` with the model's :attr:`variables` on the training grid dims
            (other dims, such as time or ensemble members, form the batch; other variables
            are ignored). NaN cells (land, missing data) are not read, and stay NaN.
        batch_size
            Samples per model call.

        Returns
        -------
        xr.Dataset
            The predicted :attr:`variables` with the input's dims, coordinates, attrs and
            dtypes (the normalisation undone): entry ``t`` is the forecast for ``lead`` saved
            steps after input time ``t``. ``attrs["lead_steps"]`` records the lead.
        """
        meta = self._meta()
        grid = meta["grid"]
        ds = self._check_data(data, grid["dims"])
        norm = self.normalization
        if norm is not None:
            ds = norm.transform(ds)
        tokens, layout = self.tokenizer.encode(ds, periodic=tuple(grid["periodic"]))
        prediction = self._run(tokens, layout, batch_size)  # (B, N, D)
        out = self.tokenizer.decode(prediction.to(tokens.dtype), layout)
        if norm is not None:
            out = norm.inverse_transform(out)
        out.attrs = {**data.attrs, "lead_steps": self.lead}
        return out

    def _check_data(self, data: Any, dims: list[str]) -> xr.Dataset:
        if not isinstance(data, xr.Dataset):
            msg = (
                f"data must be an xr.Dataset with variables {self.variables}, not "
                f"{type(data).__name__} (a DataArray: da.to_dataset(name=...))"
            )
            raise TypeError(msg)
        missing = [v for v in self.variables if v not in data.data_vars]
        if missing:
            msg = (
                f"data lacks the variables {missing} that the model was trained on; it has "
                f"{sorted(map(str, data.data_vars))}"
            )
            raise ValueError(msg)
        ds = data[self.variables]
        absent = [d for d in dims if d not in ds.dims]
        if absent:
            msg = (
                f"data lacks the grid dims {absent} that the model was trained on "
                f"({dims}); it has dims {tuple(ds.dims)}"
            )
            raise ValueError(msg)
        return ds

    @torch.no_grad()
    def _run(self, tokens: torch.Tensor, layout: Any, batch_size: int) -> torch.Tensor:
        """The model on ``tokens`` (B, N, D) in batches, each masked by its valid rows."""
        device = next(self.model.parameters()).device
        geometry = replace(layout, valid=None)  # every batch brings its own rows as mask=
        valid = layout.valid.expand(tokens.shape[0], -1)  # (B, N)
        self.model.eval()
        parts = []
        for lo in range(0, tokens.shape[0], batch_size):
            chunk = tokens[lo:lo + batch_size].to(device)  # (b, N, D)
            mask = valid[lo:lo + batch_size].to(device)  # (b, N)
            parts.append(self.model(chunk, geometry, mask=mask).prediction.cpu())
        prediction = torch.cat(parts)  # (B, N, out)
        if prediction.shape != tokens.shape:
            msg = (
                f"the model predicts {tuple(prediction.shape[1:])} per sample but its input "
                f"tokens are {tuple(tokens.shape[1:])}: predict() needs a next-state model "
                f"(head='field', out_features == in_features)"
            )
            raise ValueError(msg)
        return prediction


def load_model(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
               ) -> Predictor:
    """Rebuild the model in a checkpoint, with what it needs to take ``xr.Dataset`` data.

    Parameters
    ----------
    path
        A checkpoint from :func:`~gridformer.training.fit` / ``gridformer train``.
    map_location
        Device for the weights (``torch.load``'s argument); the model is placed there.

    Returns
    -------
    Predictor
        ``.model`` (eval mode), ``.config``, ``.metadata``, ``.tokenizer``, ``.variables``,
        ``.normalization``, ``.lead`` and ``.predict(ds) -> xr.Dataset``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not a gridformer checkpoint, or one holding a model class that cannot be rebuilt.
    """
    state = read_checkpoint(path, map_location)
    model = build_model(state, where=f"checkpoint {str(path)!r}")
    metadata = state.get("metadata")
    if metadata is not None and metadata.get("format") != DATA_FORMAT:
        msg = (
            f"checkpoint {str(path)!r} has data metadata of format {metadata.get('format')!r}; "
            f"this gridformer reads {DATA_FORMAT!r}"
        )
        raise ValueError(msg)
    return Predictor(model=model.to(map_location), config=state["config"], metadata=metadata,
                     path=Path(path), step=int(state["step"]))
